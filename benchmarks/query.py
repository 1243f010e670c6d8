"""Question latency, stage by stage, and how soon the app serves its page.

A diplomat waits for every answer, so each stage of a question's path is timed on the bundled
corpus with default settings (extractive answers, no LLM), over the questions of the shipped QA set
after a few warm-up questions:

    condense   `Assistant.standalone` with a one-question history (the previous question of the set)
    dense      query embedding + Chroma search         } from a `HybridRetriever` built as `ask`
    keyword    BM25 search and fetching its passages    } builds it (same filters), run beside `ask`
    fuse       article/annex search + rank fusion       }
    retrieve   `ask`'s retrieve stage: the three above and the sentence rerank (`timings_ms["retrieve"]`)
    answer     sentence ranking, the answer, citation checks (`timings_ms["answer"]`)
    total      `ask` end to end (`timings_ms["total"]`); the goal is p50 < 60 ms and p95 < 150 ms

Then the questions of the cross-document set (briefings, which documents, comparisons), each
document searched on its own, `ask` end to end; the goal is p50 < 300 ms and p95 < 800 ms warm.

The questions are asked twice. First "cold": each question's passages have their sentences embedded
as the rerank and the answer stage need them, as a one-shot `python -m assistant ask` does. Then "warm": after
`Assistant.warm_up()` has embedded every indexed answer sentence once, as the app does in the
background as soon as it serves; the goal applies to this pass, which is what a diplomat meets.

Then `python app.py` is started on a free loopback port against the index built here, and the time
from launching it to the first 200 on its page is printed (goal < 10 s).

    .venv/bin/python benchmarks/query.py               # 50 questions spread over the set, a fresh temporary index
    .venv/bin/python benchmarks/query.py --limit 0     # every question of the set
    .venv/bin/python benchmarks/query.py --index-dir /tmp/bench-index   # build once, reuse next time
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant, Settings
from assistant.retrieval import HybridRetriever
from benchmarks.figures import machine, percentile, table, use_torch_threads, verdict
from benchmarks.served_app import REPO, served_app, shown
from benchmarks.workspace import workspace

P50_GOAL_MS = 60.0
P95_GOAL_MS = 150.0
BRIEFING_P50_GOAL_MS = 300.0  # an answer across documents searches each document on its own
BRIEFING_P95_GOAL_MS = 800.0
APP_START_GOAL_S = 10.0
STAGES = ("condense", "dense", "keyword", "fuse", "retrieve", "answer", "total")


def questions(qa_set: Path, limit: int) -> list[str]:
    """`limit` questions spread evenly over the set (it is grouped by document), or all of them for 0.

    >>> len(questions(REPO / "evals" / "governance_qa.jsonl", 10))
    10
    """
    every = [json.loads(line)["question"] for line in qa_set.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not 0 < limit < len(every):
        return every
    return [every[i * len(every) // limit] for i in range(limit)]


def stage_times(assistant: Assistant, asked: list[str]) -> tuple[dict[str, list[float]], int]:
    """Milliseconds per stage for each question, and how many the condense step rewrote."""
    manifest = assistant.store.check_ready()
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    rewritten = 0
    for number, question in enumerate(asked):
        began = time.perf_counter()
        standalone = assistant.standalone(question, [asked[number - 1]])
        times["condense"].append((time.perf_counter() - began) * 1000)
        rewritten += standalone != question.strip()

        assistant.embed_model.forget(question)  # each question is embedded as a new one, in both timings
        record = assistant.ask(question)
        for stage in ("retrieve", "answer", "total"):
            times[stage].append(float(record["timings_ms"][stage]))

        filters = assistant.scoped(assistant.plan(question, None, manifest), None)
        retriever = HybridRetriever(assistant.store, assistant.embed_model, assistant.settings.retrieval, filters)
        assistant.embed_model.forget(question)
        retriever.retrieve(question)
        times["dense"].append(retriever.timings.dense_ms)
        times["keyword"].append(retriever.timings.keyword_ms)
        times["fuse"].append(retriever.timings.fuse_ms)
    return times, rewritten


def briefing_times(assistant: Assistant, asked: list[str]) -> list[float]:
    """`ask`'s total milliseconds for each question answered across documents (a new question each time)."""
    manifest, totals = assistant.store.check_ready(), []
    for question in asked:
        assistant.embed_model.forget(assistant.plan(question, None, manifest).topic)  # what each document is searched with
        totals.append(float(assistant.ask(question)["timings_ms"]["total"]))
    return totals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa-set", type=Path, default=REPO / "evals" / "governance_qa.jsonl",
                        help="JSONL QA set whose questions are asked (default: the shipped one)")
    parser.add_argument("--limit", type=int, default=50,
                        help="ask N questions spread evenly over the set; 0 for all of them (default 50)")
    parser.add_argument("--briefing-set", type=Path, default=REPO / "evals" / "briefing_qa.jsonl",
                        help="JSONL QA set of questions answered across documents (default: the shipped one)")
    parser.add_argument("--briefing-limit", type=int, default=20, help="of those, ask N spread over the set (default 20)")
    parser.add_argument("--warm-up", type=int, default=3, help="questions asked first and not timed (default 3)")
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus", help="corpus folder (default: the bundled one)")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="build (or reuse, if up to date) the index here instead of a fresh temporary folder")
    parser.add_argument("--app", type=Path, default=REPO / "app.py",
                        help="the app script whose start is timed, e.g. another revision's app.py (default: this checkout's)")
    parser.add_argument("--app-timeout", type=float, default=60.0, help="seconds to wait for the app's page (default 60)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads for the embedding model (default: torch's own choice)")
    args = parser.parse_args(argv)

    print(f"{machine()}; torch threads {use_torch_threads(args.torch_threads)}")
    asked = questions(args.qa_set, args.limit)
    briefings = questions(args.briefing_set, args.briefing_limit)
    with workspace(args.index_dir, "bench-query-") as (index_dir, scratch):
        assistant = Assistant(Settings(corpus_dir=args.corpus.resolve(), index_dir=index_dir))
        began = time.perf_counter()
        built = assistant.ingest()
        print(f"index: {index_dir} ({built.chunks} chunks, {built.embedded} embedded now, "
              f"{time.perf_counter() - began:.1f} s); {len(asked)} questions from {args.qa_set.name}, "
              f"{args.warm_up} warm-up")
        for question in (asked * args.warm_up)[: args.warm_up]:
            assistant.ask(question)
        for when in ("cold", "warm"):
            if when == "warm":
                began = time.perf_counter()
                embedded = assistant.warm_up()
                print(f"\nwarm_up: {embedded} answer sentences and words embedded in {time.perf_counter() - began:.1f} s\n")
            times, rewritten = stage_times(assistant, asked)
            print(f"{when}: condense rewrote {rewritten} of {len(asked)} questions (the rest are not follow-ups)")
            rows = []
            for stage in STAGES:
                p50, p95 = percentile(times[stage], 50), percentile(times[stage], 95)
                goal = (f"p50 < {P50_GOAL_MS:.0f} {verdict(p50 < P50_GOAL_MS)}, p95 < {P95_GOAL_MS:.0f} "
                        f"{verdict(p95 < P95_GOAL_MS)}") if stage == "total" and when == "warm" else ""
                rows.append([stage, f"{p50:.1f}", f"{p95:.1f}", f"{max(times[stage]):.1f}", goal])
            print(table([f"stage ({when})", "p50 ms", "p95 ms", "max ms", "goal"], rows))
            spanning = briefing_times(assistant, briefings)
            p50, p95 = percentile(spanning, 50), percentile(spanning, 95)
            goal = (f"p50 < {BRIEFING_P50_GOAL_MS:.0f} {verdict(p50 < BRIEFING_P50_GOAL_MS)}, p95 < {BRIEFING_P95_GOAL_MS:.0f} "
                    f"{verdict(p95 < BRIEFING_P95_GOAL_MS)}") if when == "warm" else ""
            print(table([f"answers across documents ({when})", "p50 ms", "p95 ms", "max ms", "goal"],
                        [[f"total, {len(spanning)} questions", f"{p50:.1f}", f"{p95:.1f}", f"{max(spanning):.1f}", goal]]))
        threads = {"OMP_NUM_THREADS": str(args.torch_threads)} if args.torch_threads else None
        with served_app(index_dir, args.corpus.resolve(), scratch, args.app_timeout, threads, args.app.resolve()) as app:
            started_s = app.started_s
    print(f"\napp start ({shown(args.app)}) to first served page: {started_s:.2f} s   goal < {APP_START_GOAL_S:.0f} s: "
          f"{verdict(started_s < APP_START_GOAL_S)}")


if __name__ == "__main__":
    main()
