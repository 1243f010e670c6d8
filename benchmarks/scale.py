"""Retrieval as the index grows to 100,000 chunks, and the app's memory at that size.

A synthetic corpus is made from the real documents: their cleaned sentences, shuffled and
recombined three at a time into numbered paragraphs (each a chunk of its own), 100 to a file, so
that no two chunks read the same. The corpus grows by steps (1,000, then 10,000, then 100,000
chunks by default) and after each step the ordinary incremental `ingest` embeds only the new files,
so the index is built once. At each size, the shipped QA set's questions are asked through a
`HybridRetriever` built as `ask` builds it (dense, keyword and fused timings) and through `ask`
itself. At the last size `python app.py` is started on that index, asked some questions, and its
resident memory read from /proc.

The build embeds about 111,000 chunks, so it uses the `onnx-int8` backend by default (about twice
as fast as torch on CPU; `--backend torch` for fp32): about 25 minutes on 2 cores. Goals at
100,000 chunks: retrieval p50 < 40 ms, app memory < 2 GB.

    .venv/bin/python benchmarks/scale.py                          # 1k, 10k, 100k
    .venv/bin/python benchmarks/scale.py --sizes 1000 5000        # a quick look
    .venv/bin/python benchmarks/scale.py --index-dir /tmp/scale   # keep corpus and index for another run
    .venv/bin/python benchmarks/scale.py --index-dir /tmp/scale --sizes 100000   # re-measure it, nothing embedded

The corpus folder always holds exactly the files of the size being measured, so a smaller size
given for a kept index shrinks it (the ingest removes the files' chunks).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant, Settings
from assistant.cleaning import clean_text
from assistant.ingestion import SUPPORTED, corpus_files
from assistant.loaders import LoadError, load_text
from assistant.retrieval import HybridRetriever
from assistant.sentences import split_sentences
from benchmarks.figures import machine, percentile, table, verdict
from benchmarks.load import ask_when_ready, client
from benchmarks.query import questions
from benchmarks.served_app import REPO, served_app
from benchmarks.workspace import workspace

PER_FILE = 100
PER_CHUNK = 3
RETRIEVE_GOAL_MS = 40.0
MEMORY_GOAL_MIB = 2048.0


def sentence_pool(corpus: Path) -> list[str]:
    """The distinct sentences of the real documents, cleaned as the ingest cleans them."""
    pool: dict[str, None] = {}
    for path in corpus_files(corpus):
        if path.suffix.lower() not in SUPPORTED:
            continue
        try:
            text = clean_text(load_text(path))
        except LoadError:
            continue
        for sentence in split_sentences(text):
            flat = " ".join(sentence.split())
            if 5 <= len(flat.split()) <= 60 and not flat.startswith("#"):
                pool[flat] = None
    return list(pool)


def write_files(folder: Path, count: int, pool: list[str], seed: int) -> None:
    """Make the folder hold exactly synthetic files 0 to `count - 1`, and their catalog.

    A file's text depends only on its number and the seed, so files kept from an earlier run are
    left as they are (and not embedded again), and files beyond `count` are removed.
    """
    for path in folder.glob("synthetic-*.txt"):
        if int(path.stem.split("-")[1]) >= count:
            path.unlink()
    catalog = []
    for number in range(count):
        path = folder / f"synthetic-{number:05d}.txt"
        title = f"Synthetic governance digest {number:05d}"
        if not path.exists():
            rng = random.Random(seed * 1_000_003 + number)
            paragraphs = [f"{n}. {' '.join(rng.sample(pool, PER_CHUNK))}" for n in range(1, PER_FILE + 1)]
            path.write_text(title + "\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
        catalog.append(f'[[document]]\nid = "synthetic-{number:05d}"\nfile = "{path.name}"\n'
                       f'title = "{title}"\nissuer = "benchmarks/scale.py"\ndate = "2026-01-01"\nkind = "article"\n'
                       'source = "Recombined sentences of the bundled corpus"\nreuse = "Synthetic; benchmark only."\n')
    (folder / "catalog.toml").write_text("\n".join(catalog), encoding="utf-8")


def retrieval_times(assistant: Assistant, asked: list[str]) -> dict[str, list[float]]:
    """Milliseconds per question: the retriever's stages, and `ask` end to end."""
    times: dict[str, list[float]] = {"dense": [], "keyword": [], "fuse": [], "retrieve": [], "ask": []}
    for question in asked:
        retriever = HybridRetriever(assistant.store, assistant.embed_model, assistant.settings.retrieval, None)
        began = time.perf_counter()
        retriever.retrieve(question)
        times["retrieve"].append((time.perf_counter() - began) * 1000)
        times["dense"].append(retriever.timings.dense_ms)
        times["keyword"].append(retriever.timings.keyword_ms)
        times["fuse"].append(retriever.timings.fuse_ms)
        times["ask"].append(float(assistant.ask(question)["timings_ms"]["total"]))
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000],
                        help="chunk counts to measure at, ascending (default 1000 10000 100000)")
    parser.add_argument("--backend", choices=["onnx-int8", "torch"], default="onnx-int8",
                        help="embedding backend for the build and the app (default onnx-int8)")
    parser.add_argument("--limit", type=int, default=50, help="questions asked at each size (default 50)")
    parser.add_argument("--app-questions", type=int, default=20, help="questions asked of the app (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the shuffling (default 7)")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="keep the index here, and the synthetic corpus beside it in DIR-corpus/")
    args = parser.parse_args(argv)
    print(machine())

    pool = sentence_pool(REPO / "corpus")
    asked = questions(REPO / "evals" / "governance_qa.jsonl", args.limit)
    print(f"{len(pool)} distinct sentences from the bundled corpus; {PER_CHUNK} per chunk, {PER_FILE} chunks per file; "
          f"backend {args.backend}; {len(asked)} questions at each size\n")
    rows = []
    with workspace(args.index_dir, "bench-scale-") as (index_dir, scratch):
        corpus = index_dir.with_name(index_dir.name + "-corpus") if args.index_dir else scratch / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        settings = Settings(corpus_dir=corpus, index_dir=index_dir, embedding={"backend": args.backend})
        for size in args.sizes:
            write_files(corpus, -(-size // PER_FILE), pool, args.seed)
            began = time.perf_counter()
            built = Assistant(settings).ingest()
            build_s = time.perf_counter() - began
            assistant = Assistant(settings)  # a fresh handle, as the app opens the index
            assistant.ask(asked[0])  # loads the model and the keyword index
            times = retrieval_times(assistant, asked)
            p50 = percentile(times["retrieve"], 50)
            print(f"{built.chunks} chunks: {built.embedded} embedded in {build_s:.0f} s "
                  f"({built.embedded / max(build_s, 1e-9):.1f} chunks/s); retrieve p50 {p50:.1f} ms", flush=True)
            rows.append([f"{built.chunks:,}", *(f"{percentile(times[s], 50):.1f} / {percentile(times[s], 95):.1f}"
                                                for s in ("dense", "keyword", "fuse", "retrieve", "ask"))])
            del assistant
        print("\n" + table(["chunks", "dense ms p50/p95", "keyword", "fuse", "retrieve", "ask (cold)"], rows))
        print(f"\nretrieve p50 at {built.chunks:,} chunks: {p50:.1f} ms   goal < {RETRIEVE_GOAL_MS:.0f} ms: "
              f"{verdict(p50 < RETRIEVE_GOAL_MS)}")

        env = {"ASSISTANT_EMBEDDING__BACKEND": args.backend}
        with served_app(index_dir, corpus, scratch, timeout_s=120, extra_env=env) as app:
            ready_s = ask_when_ready(app, asked[0], timeout_s=600)
            rss_first = app.rss_mib()
            settled_s = app.wait_idle(timeout_s=1200)  # the answer sentences embedded ahead, up to the cache's size
            asker = client(app.url)
            for question in (asked * args.app_questions)[: args.app_questions]:
                asker.predict(question, api_name="/ask")
            rss, peak = app.rss_mib(), app.peak_rss_mib()
    print(f"app on {built.chunks:,} chunks: first answer {ready_s:.1f} s after launch; RSS {rss_first:.0f} MiB then; "
          f"background warm-up done {settled_s:.0f} s later; {rss:.0f} MiB after {args.app_questions} more questions, "
          f"peak {peak:.0f} MiB   "
          f"goal < {MEMORY_GOAL_MIB:.0f} MiB: {verdict(peak < MEMORY_GOAL_MIB)}")


if __name__ == "__main__":
    main()
