"""Question latency, cold and warm side by side, from the command line, and how soon the app answers.

A diplomat waits for every answer, so each stage of a question's path is timed on the bundled
corpus with default settings (extractive answers, no LLM), over the questions of the shipped QA set:

    condense   `Assistant.standalone` with a one-question history (the previous question of the set)
    dense      query embedding + Chroma search         } from a `HybridRetriever` built as `ask`
    keyword    BM25 search and fetching its passages    } builds it (same filters), run beside `ask`
    fuse       article/annex search + rank fusion       }
    retrieve   `ask`'s retrieve stage: the three above and the sentence rerank (`timings_ms["retrieve"]`)
    answer     sentence ranking, the answer, citation checks (`timings_ms["answer"]`)
    total      `ask` end to end (`timings_ms["total"]`)

then the questions of the cross-document set (briefings, which documents, comparisons), each
document searched on its own, `ask` end to end.

The questions are timed in a fresh process (this script run with `--worker`), after it has answered
one question of its own (start-up: the question encoder and the index open). "Cold" is the first
time that process meets each question and its passages, as every question of an `eval` run and a
staff member's first question are; "warm" is the same questions again. The passages' sentences and
words are embedded at ingest (`assistant.sentence_vectors`), so a cold question should cost what a
warm one does; the goal is p50 <= 100 ms and p95 <= 300 ms cold, and for answers across documents
p50 <= 300 ms and p95 <= 800 ms.

Then, each from its own process start: `python -m assistant ask "..."` to the printed answer (goal
<= 5 s, the median of three questions), and `python app.py` on a free loopback port to its first
answer through `/ask` (goal <= 10 s: the app answers at full speed once it answers at all).

    .venv/bin/python benchmarks/query.py               # 50 questions spread over the set, a fresh temporary index
    .venv/bin/python benchmarks/query.py --limit 0     # every question of the set
    .venv/bin/python benchmarks/query.py --index-dir /tmp/bench-index   # build once, reuse next time
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant, Settings
from assistant.retrieval import HybridRetriever
from benchmarks.figures import machine, percentile, table, use_torch_threads, verdict
from benchmarks.load import ask_when_ready
from benchmarks.served_app import REPO, served_app, shown
from benchmarks.workspace import workspace

P50_GOAL_MS = 100.0
P95_GOAL_MS = 300.0
BRIEFING_P50_GOAL_MS = 300.0  # an answer across documents searches each document on its own
BRIEFING_P95_GOAL_MS = 800.0
ASK_GOAL_S = 5.0
APP_READY_GOAL_S = 10.0
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


def worker(index_dir: Path, corpus: Path, asked: list[str], briefings: list[str]) -> dict[str, object]:
    """The timings of one fresh process: its start-up question, then each question cold and warm."""
    assistant = Assistant(Settings(corpus_dir=corpus, index_dir=index_dir))
    began = time.perf_counter()
    assistant.ask("Who adopted the Recommendation of the Council on Artificial Intelligence?")
    startup_s = time.perf_counter() - began
    passes = {}
    for when in ("cold", "warm"):
        times, rewritten = stage_times(assistant, asked)
        passes[when] = {"stages": times, "rewritten": rewritten, "across": briefing_times(assistant, briefings)}
    return {"startup_s": startup_s, "torch": "torch" in sys.modules, "passes": passes}


def ask_from_start(index_dir: Path, corpus: Path, asked: list[str]) -> list[float]:
    """Seconds from starting `python -m assistant ask QUESTION` to its printed answer, per question."""
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_CORPUS_DIR": str(corpus)}
    seconds = []
    for question in asked:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "assistant", "ask", question], cwd=REPO, env=env, check=True,
                       capture_output=True)
        seconds.append(time.perf_counter() - began)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa-set", type=Path, default=REPO / "evals" / "governance_qa.jsonl",
                        help="JSONL QA set whose questions are asked (default: the shipped one)")
    parser.add_argument("--limit", type=int, default=50,
                        help="ask N questions spread evenly over the set; 0 for all of them (default 50)")
    parser.add_argument("--briefing-set", type=Path, default=REPO / "evals" / "briefing_qa.jsonl",
                        help="JSONL QA set of questions answered across documents (default: the shipped one)")
    parser.add_argument("--briefing-limit", type=int, default=20, help="of those, ask N spread over the set (default 20)")
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus", help="corpus folder (default: the bundled one)")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="build (or reuse, if up to date) the index here instead of a fresh temporary folder")
    parser.add_argument("--app", type=Path, default=REPO / "app.py",
                        help="the app script whose start is timed, e.g. another revision's app.py (default: this checkout's)")
    parser.add_argument("--app-timeout", type=float, default=120.0, help="seconds to wait for the app's answer (default 120)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads for the embedding model (default: torch's own choice)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # the fresh process timed
    args = parser.parse_args(argv)

    asked = questions(args.qa_set, args.limit)
    briefings = questions(args.briefing_set, args.briefing_limit)
    corpus = args.corpus.resolve()
    if args.worker:
        print(json.dumps(worker(args.index_dir, corpus, asked, briefings)))
        return
    print(f"{machine()}; torch threads {use_torch_threads(args.torch_threads)}")
    with workspace(args.index_dir, "bench-query-") as (index_dir, scratch):
        began = time.perf_counter()
        built = Assistant(Settings(corpus_dir=corpus, index_dir=index_dir)).ingest()
        print(f"index: {index_dir} ({built.chunks} chunks, {built.embedded} embedded now, {built.readings} sentences "
              f"and words, {time.perf_counter() - began:.1f} s); {len(asked)} questions from {args.qa_set.name}, "
              f"{len(briefings)} from {args.briefing_set.name}")
        command = [sys.executable, __file__, "--worker", "--index-dir", str(index_dir), "--corpus", str(corpus),
                   "--qa-set", str(args.qa_set), "--limit", str(args.limit),
                   "--briefing-set", str(args.briefing_set), "--briefing-limit", str(args.briefing_limit)]
        timed = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        cold, warm = timed["passes"]["cold"], timed["passes"]["warm"]
        print(f"\nfresh process: start-up question {timed['startup_s']:.2f} s; torch loaded: {timed['torch']}; "
              f"condense rewrote {cold['rewritten']} of {len(asked)} questions (the rest are not follow-ups)")
        rows = []
        for stage in STAGES:
            figures = [percentile(run["stages"][stage], pct) for run in (cold, warm) for pct in (50, 95)]
            goal = (f"cold p50 <= {P50_GOAL_MS:.0f} {verdict(figures[0] <= P50_GOAL_MS)}, p95 <= {P95_GOAL_MS:.0f} "
                    f"{verdict(figures[1] <= P95_GOAL_MS)}") if stage == "total" else ""
            rows.append([stage, *(f"{f:.1f}" for f in figures), goal])
        print(table(["stage", "cold p50 ms", "cold p95 ms", "warm p50 ms", "warm p95 ms", "goal"], rows))
        figures = [percentile(run["across"], pct) for run in (cold, warm) for pct in (50, 95)]
        goal = (f"cold p50 <= {BRIEFING_P50_GOAL_MS:.0f} {verdict(figures[0] <= BRIEFING_P50_GOAL_MS)}, "
                f"p95 <= {BRIEFING_P95_GOAL_MS:.0f} {verdict(figures[1] <= BRIEFING_P95_GOAL_MS)}")
        print(table(["answers across documents", "cold p50 ms", "cold p95 ms", "warm p50 ms", "warm p95 ms", "goal"],
                    [[f"total, {len(briefings)} questions", *(f"{f:.1f}" for f in figures), goal]]))

        seconds = ask_from_start(index_dir, corpus, asked[:3])
        median = statistics.median(seconds)
        print(f"\n`python -m assistant ask` from process start to printed answer: median {median:.2f} s, "
              f"max {max(seconds):.2f} s over {len(seconds)} questions   goal <= {ASK_GOAL_S:.0f} s: {verdict(median <= ASK_GOAL_S)}")
        threads = {"OMP_NUM_THREADS": str(args.torch_threads)} if args.torch_threads else None
        with served_app(index_dir, corpus, scratch, args.app_timeout, threads, args.app.resolve()) as app:
            ready_s = ask_when_ready(app, asked[0], args.app_timeout)
    print(f"app ({shown(args.app)}) start to first served page {app.started_s:.2f} s, to first answer {ready_s:.2f} s   "
          f"goal <= {APP_READY_GOAL_S:.0f} s: {verdict(ready_s <= APP_READY_GOAL_S)}")


if __name__ == "__main__":
    main()
