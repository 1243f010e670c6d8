"""Time to the first streamed token with the bundled GGUF (SmolLM2-135M-Instruct) through llama.cpp.

The seconds from calling `ask` to the first token handed to `on_token`: retrieval, the answer
stage's sentence ranking, building the prompt from the top passages, and llama.cpp reading that
prompt before it writes. Only questions that the evidence lets through are timed: a refused one
never reaches the LLM. Measured over questions of the shipped QA set after one warm-up question
(which loads both models), next to the same questions answered extractively, whose answer arrives
whole. Needs the `llm` extra (`pip install -e '.[llm]'`). Goal: p50 under 1.5 s.

    .venv/bin/python benchmarks/first_token.py              # 20 questions, a fresh temporary index
    .venv/bin/python benchmarks/first_token.py --index-dir /tmp/bench-dev-index
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant, Settings
from benchmarks.figures import machine, percentile, table, use_torch_threads, verdict
from benchmarks.query import questions
from benchmarks.served_app import REPO
from benchmarks.workspace import workspace

GOAL_S = 1.5


def first_token_s(assistant: Assistant, question: str) -> tuple[float, float]:
    """(seconds to the first streamed token, seconds to the whole record)."""
    began = time.perf_counter()
    first: list[float] = []

    def on_token(_: str) -> None:
        if not first:
            first.append(time.perf_counter() - began)

    assistant.ask(question, on_token=on_token)
    total = time.perf_counter() - began
    return (first[0] if first else total), total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="questions spread over the shipped set (default 20)")
    parser.add_argument("--index-dir", type=Path, default=None, help="build (or reuse) the index here")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    print(f"{machine()}; torch threads {use_torch_threads(args.torch_threads)}")
    asked = questions(REPO / "evals" / "governance_qa.jsonl", args.limit)
    with workspace(args.index_dir, "bench-first-token-") as (index_dir, _):
        extractive = Assistant(Settings(corpus_dir=REPO / "corpus", index_dir=index_dir))
        extractive.ingest()
        llm = Assistant(extractive.settings.model_copy(update={"llm": extractive.settings.llm.model_copy(
            update={"backend": "llama-cpp"})}))
        llm.embed_model = extractive.embed_model  # one loaded embedding model, one sentence cache
        for assistant in (extractive, llm):
            first_token_s(assistant, asked[0])  # loads the models
        # A refused question never reaches the LLM (the evidence is judged first), so it is left out.
        answered = [q for q in asked if not extractive.ask(q)["refused"]]
        timings = {name: [first_token_s(a, q) for q in answered]
                   for name, a in (("extractive", extractive), ("llama.cpp", llm))}
    print(f"{len(answered)} of {len(asked)} questions answered (the rest are refused before any LLM call), "
          "after one warm-up; the answer sentences embedded at ingest\n")
    print(table(["answer", "first token p50 s", "p95 s", "whole answer p50 s", "p95 s"], [
        [name, f"{percentile([f for f, _ in t], 50):.2f}", f"{percentile([f for f, _ in t], 95):.2f}",
         f"{percentile([w for _, w in t], 50):.2f}", f"{percentile([w for _, w in t], 95):.2f}"]
        for name, t in timings.items()
    ]))
    p50 = percentile([f for f, _ in timings["llama.cpp"]], 50)
    print(f"\nfirst token with llama.cpp, p50: {p50:.2f} s   goal < {GOAL_S} s: {verdict(p50 < GOAL_S)}")


if __name__ == "__main__":
    main()
