"""Ingest throughput: the full pipeline against the bare encoder it wraps, measured in one run.

Embedding is the one costly step of ingestion, so a full ingest (load, clean, chunk, embed, store in
Chroma, build BM25, embed and store the sentence vectors) should run close to the speed of
`SentenceTransformer.encode` on the same texts with the same model and batch size: the goal is a
ratio of at least 0.9. The chunk texts encoded are read back from Chroma after the ingest, each as
it was embedded (its "context" line, a newline, its text), and the vectors are checked against the
stored ones; the sentences and words are read back from the index's `sentences/` folder; so both
sides do the same work. The sentence vectors' share of the time and their disk are printed too.
Measuring both in the same process, one after the other, keeps the ratio meaningful on a busy machine
where either figure alone moves from run to run.

Then the unchanged corpus is ingested again, which should embed nothing and take under 3 s once
the process has started (the model is already loaded, as it is in the app).

    .venv/bin/python benchmarks/ingest.py               # the bundled corpus, default batch size
    .venv/bin/python benchmarks/ingest.py --repeat 3    # medians of three alternating rounds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant, Settings
from benchmarks.figures import machine, table, use_torch_threads, verdict
from benchmarks.served_app import REPO

RATIO_GOAL = 0.9
REINGEST_GOAL_S = 3.0


@dataclass
class Timing:
    """Wall-clock seconds (`time.perf_counter`) and this process's CPU seconds (`time.process_time`).

    On a shared machine the wall clock counts time spent waiting for a core; CPU seconds do not, so
    the two ratios together tell a slow step from a busy machine.
    """

    wall_s: float
    cpu_s: float


@contextmanager
def timing(into: list[Timing]) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append(Timing(time.perf_counter() - wall, time.process_time() - cpu))


def median(timings: Sequence[Timing]) -> Timing:
    return Timing(statistics.median(t.wall_s for t in timings), statistics.median(t.cpu_s for t in timings))


def embedded_texts(assistant: Assistant) -> tuple[list[str], np.ndarray]:
    """Every stored chunk as the ingest embedded it, in ingest order, with its stored vector."""
    stored: dict[str, Any] = assistant.store.collection.get(include=["documents", "metadatas", "embeddings"])
    rows = sorted(zip(stored["ids"], stored["documents"], stored["metadatas"], stored["embeddings"]),
                  key=lambda row: (row[2]["file"], row[0]))
    texts = [f"{meta['context']}\n{text}" for _, text, meta, _ in rows]
    return texts, np.array([vector for *_, vector in rows])


def reading_texts(assistant: Assistant) -> list[str]:
    """The sentences and words the ingest embedded for the question path, as `sentences/` stores them."""
    files = sorted(assistant.store.sentences.folder.glob("*.json"))
    return list(dict.fromkeys(text for file in files for text in json.loads(file.read_text())["texts"]))


def encode(model: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """The bare encoder, called as the embedding wrapper calls it (normalised numpy vectors)."""
    return np.asarray(model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False))


def reingest_in_new_process(settings: Settings) -> tuple[float, dict[str, Any]]:
    """`python -m assistant ingest --json` on the built index: wall seconds, interpreter start-up included."""
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(settings.index_dir), "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
           "ASSISTANT_EMBEDDING__BATCH_SIZE": str(settings.embedding.batch_size)}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "assistant", "ingest", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - began, json.loads(done.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus", help="corpus folder (default: the bundled one)")
    parser.add_argument("--batch-size", type=int, default=Settings().embedding.batch_size,
                        help="chunks per embedding batch, for both sides (default: the setting, %(default)s)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternating rounds of full ingest and bare encode; medians are printed (default 1)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads for the embedding model (default: torch's own choice)")
    args = parser.parse_args(argv)

    print(f"{machine()}; torch threads {use_torch_threads(args.torch_threads)}")
    ingests: list[Timing] = []
    raws: list[Timing] = []
    sentence_raws: list[Timing] = []  # the share of `raws` spent on the sentences and words
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        settings = Settings(corpus_dir=args.corpus.resolve(), index_dir=Path(tmp) / "index",
                            embedding={"batch_size": args.batch_size})
        assistant = Assistant(settings)
        began = time.perf_counter()
        model = assistant.embed_model.model
        encode(model, ["warm-up"], args.batch_size)  # start-up: outside both sides
        startup_s = time.perf_counter() - began

        closest = 1.0
        for _ in range(args.repeat):
            with timing(ingests):
                summary = assistant.ingest(rebuild=True)
            texts, stored = embedded_texts(assistant)
            if summary.embedded != len(texts):
                raise RuntimeError(f"the ingest embedded {summary.embedded} chunks but Chroma holds {len(texts)}")
            readings = reading_texts(assistant)
            with timing(raws):
                vectors = encode(model, texts, args.batch_size)
                with timing(sentence_raws):
                    encode(model, readings, args.batch_size)
            closest = min(closest, float(np.min(np.sum(vectors * stored, axis=1))))  # cosine of unit vectors

        again: list[Timing] = []
        with timing(again):
            same = assistant.ingest()
        with timing(again):
            fresh = Assistant(settings).ingest()  # a new store handle, as a new `ingest` command opens one
        cli_s, cli = reingest_in_new_process(settings)

        disk_mb = sum(f.stat().st_size for f in assistant.store.sentences.folder.iterdir()) / 2**20

    chunks = len(texts)
    ingest, raw, sentence_raw = median(ingests), median(raws), median(sentence_raws)
    print(f"corpus: {args.corpus} ({summary.documents} documents, {chunks} chunks); batch size {args.batch_size}; "
          f"{args.repeat} round(s), medians; model load + first encode {startup_s:.1f} s (outside both)")
    print(f"stored vectors against a fresh encode of the same texts: lowest cosine {closest:.6f}")
    print(f"sentence vectors: {len(readings)} sentences and words, {sentence_raw.wall_s:.1f} s of the bare encode "
          f"({sentence_raw.wall_s / raw.wall_s:.0%}), {disk_mb:.1f} MB on disk\n")
    rows: list[tuple[str, Timing]] = [("full ingest (rebuild)", ingest), ("SentenceTransformer.encode, two calls", raw)]
    print(table(["full ingest vs bare encode", "wall s", "chunks/s", "CPU s", "chunks/CPU s"], [
        [name, f"{t.wall_s:.2f}", f"{chunks / t.wall_s:.1f}", f"{t.cpu_s:.2f}", f"{chunks / t.cpu_s:.1f}"]
        for name, t in rows
    ]))
    ratio = raw.wall_s / ingest.wall_s
    print(f"\nratio ingest/encode, chunks/s:     {ratio:.2f}   goal >= {RATIO_GOAL}: {verdict(ratio >= RATIO_GOAL)}")
    print(f"ratio ingest/encode, chunks/CPU s: {raw.cpu_s / ingest.cpu_s:.2f}")
    print()
    print(table(["re-ingest, corpus unchanged", "wall s", "embedded", f"goal < {REINGEST_GOAL_S:.0f} s, 0 embedded"], [
        ["same process, same Assistant", f"{again[0].wall_s:.2f}", str(same.embedded),
         verdict(again[0].wall_s < REINGEST_GOAL_S and same.embedded == 0)],
        ["same process, new Assistant", f"{again[1].wall_s:.2f}", str(fresh.embedded),
         verdict(again[1].wall_s < REINGEST_GOAL_S and fresh.embedded == 0)],
        ["new process (python -m assistant ingest)", f"{cli_s:.2f}", str(cli["embedded"]),
         f"start-up included; ingest itself {cli['seconds']:.2f} s"],
    ]))


if __name__ == "__main__":
    main()
