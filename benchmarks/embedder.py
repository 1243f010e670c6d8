"""The `onnx-int8` embedding backend against torch fp32: speed, closeness of vectors, retrieval.

Three comparisons, each measured side by side in one run:

1. Bare encoders on the same texts (every chunk of the bundled corpus as the ingest embeds it):
   `SentenceTransformer.encode` in fp32 against the cached int8 ONNX model, in alternating rounds.
   Goal: at least 2 times the chunks per second. The cosine between the two vectors of each text
   shows how far quantization moved them.
2. Full ingests (rebuild) with each backend.
3. The shipped QA set run against both indexes: hit@5 must stay within 0.01 of fp32's.

    .venv/bin/python benchmarks/embedder.py             # everything (about 8 minutes on 2 cores)
    .venv/bin/python benchmarks/embedder.py --no-eval   # speed and closeness only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant, Settings
from assistant.evaluation import run_eval
from benchmarks.figures import machine, table, use_torch_threads, verdict
from benchmarks.served_app import REPO

SPEED_GOAL = 2.0
HIT5_TOLERANCE = 0.01
BACKENDS = ("torch", "onnx-int8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of bare encoding (default 3)")
    parser.add_argument("--no-eval", action="store_true", help="skip the QA-set comparison")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    print(f"{machine()}; torch threads {use_torch_threads(args.torch_threads)}")

    with tempfile.TemporaryDirectory(prefix="bench-embedder-") as tmp:
        assistants = {
            backend: Assistant(Settings(corpus_dir=REPO / "corpus", index_dir=Path(tmp) / backend,
                                        embedding={"backend": backend}))
            for backend in BACKENDS
        }
        began = time.perf_counter()
        encoders = {backend: a.embed_model for backend, a in assistants.items()}
        for encoder in encoders.values():
            encoder.encode(["warm-up"])  # loads torch; exports and quantizes the int8 model on a first run
        print(f"model load, and the int8 export where not cached: {time.perf_counter() - began:.1f} s (outside all timings)")

        ingest_s = {}
        for backend, assistant in assistants.items():
            began = time.perf_counter()
            summary = assistant.ingest(rebuild=True)
            ingest_s[backend] = time.perf_counter() - began
        stored = assistants["torch"].store.collection.get(include=["documents", "metadatas"])
        texts = [f"{meta['context']}\n{text}" for text, meta in zip(stored["documents"], stored["metadatas"])]

        seconds: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for backend, encoder in encoders.items():
                began = time.perf_counter()
                vectors[backend] = encoder.encode(texts)
                seconds[backend].append(time.perf_counter() - began)
        cosines = np.sum(vectors["torch"] * vectors["onnx-int8"], axis=1)

        chunks = len(texts)
        print(f"corpus: {summary.documents} documents, {chunks} chunks; {args.rounds} alternating round(s), medians\n")
        speed = {backend: chunks / statistics.median(s) for backend, s in seconds.items()}
        print(table(["encoder", "chunks/s (bare)", "full ingest s", "ingest chunks/s"], [
            [backend, f"{speed[backend]:.1f}", f"{ingest_s[backend]:.1f}", f"{chunks / ingest_s[backend]:.1f}"]
            for backend in BACKENDS
        ]))
        ratio = speed["onnx-int8"] / speed["torch"]
        print(f"\nratio int8/fp32, bare chunks/s: {ratio:.2f}   goal >= {SPEED_GOAL}: {verdict(ratio >= SPEED_GOAL)}")
        print(f"ratio int8/fp32, full ingest:   {ingest_s['torch'] / ingest_s['onnx-int8']:.2f}")
        print(f"cosine int8 to fp32 vectors: mean {cosines.mean():.4f}, lowest {cosines.min():.4f}, "
              f"5th percentile {np.percentile(cosines, 5):.4f}")
        if args.no_eval:
            return

        metrics = {}
        for backend, assistant in assistants.items():
            run = run_eval(assistant, REPO / "evals" / "governance_qa.jsonl", Path(tmp) / f"eval-{backend}")
            metrics[backend] = run["metrics"]
            questions = run["questions"]
    names = ["hit@1", "hit@5", "hit@10", "mrr", "answer_accuracy", "refusal_recall"]
    print("\n" + table([f"QA set ({questions} questions)", *BACKENDS, "change"], [
        [name, *(f"{metrics[b][name]:.4f}" for b in BACKENDS), f"{metrics['onnx-int8'][name] - metrics['torch'][name]:+.4f}"]
        for name in names
    ]))
    drop = metrics["torch"]["hit@5"] - metrics["onnx-int8"]["hit@5"]
    print(f"\nhit@5 drop: {drop:+.4f}   goal <= {HIT5_TOLERANCE}: {verdict(drop <= HIT5_TOLERANCE + 1e-9)}")


if __name__ == "__main__":
    main()
