"""The served app under load: many people asking at once through the `/ask` API, and its memory.

The chat is one process serving a delegation at a time, so it is measured as it runs: `python app.py`
on a free loopback port, against an index built beforehand in a temporary folder. N clients (threads,
each with its own `gradio_client.Client`, as N people each with their own browser session) ask M
questions each through `/ask`, all starting together, under one overall time limit. Printed: errors
(a failed call, a time-out, or an answer to another question than the one asked; goal 0), latency
as each client sees it (p50, p95; Gradio's queue answers `serve.concurrency` questions at a time,
so most of it is waiting), the server's own `ask` time from the records, throughput, and the
server process's resident memory (VmRSS) before and after, with samples along the way; the goal is
less than 10 % growth over about 1,000 questions.

    .venv/bin/python benchmarks/load.py                           # 40 clients x 10 questions = 400
    .venv/bin/python benchmarks/load.py --questions-total 1000 --timeout 1500   # memory growth over 1,000
    .venv/bin/python benchmarks/load.py --server-env MALLOC_ARENA_MAX=2          # the server under another allocator setting
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradio_client import Client

from benchmarks.figures import machine, percentile, table, verdict
from benchmarks.served_app import REPO, ServedApp, served_app, shown
from benchmarks.workspace import workspace

ERRORS_GOAL = 0
GROWTH_GOAL = 0.10


@dataclass
class Outcome:
    """What the clients saw, shared by their threads (appends to lists are atomic in CPython)."""

    latencies_s: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)
    not_asked: int = 0
    released: float = 0.0  # when the clients started asking


def build_index(corpus: Path, index_dir: Path) -> dict[str, Any]:
    """Ingest in a separate process, so that this one holds only the clients (no model, no Chroma)."""
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_CORPUS_DIR": str(corpus)}
    done = subprocess.run([sys.executable, "-m", "assistant", "ingest", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def client(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def ask_when_ready(app: ServedApp, question: str, timeout_s: float) -> float:
    """Ask until the app answers (it opens the index and loads the model after serving its page).

    Returns the seconds from launching the app to its first answer.
    """
    began = time.perf_counter()
    asker = client(app.url)
    while True:
        try:
            asker.predict(question, api_name="/ask")
            return app.started_s + time.perf_counter() - began
        except Exception as exc:  # gradio_client re-raises the app's gr.Error as AppError, among others
            if "loading" not in str(exc) or time.perf_counter() - began > timeout_s:
                raise
            time.sleep(0.2)


def run_client(url: str, asked: list[str], start: threading.Barrier, deadline: float, outcome: Outcome) -> None:
    """One person: a session of their own, their questions one after another, until the deadline."""
    try:
        session = client(url)
    except Exception as exc:  # noqa: BLE001 -- counted, as any failure a person would see
        outcome.errors.append(f"connect: {exc.__class__.__name__}: {exc}")
        outcome.not_asked += len(asked)
        start.abort()  # the others start at once rather than wait for this one
        return
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass  # a client could not connect, or connecting took too long: the rest go ahead
    for number, question in enumerate(asked):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            outcome.not_asked += len(asked) - number
            return
        began = time.perf_counter()
        try:
            record = session.submit(question, api_name="/ask").result(timeout=remaining)
        except Exception as exc:  # noqa: BLE001 -- a time-out or an error: both are what a person would see
            outcome.errors.append(f"{exc.__class__.__name__}: {str(exc)[:200]}")
            continue
        finished = time.perf_counter()
        if record.get("question") != question.strip():
            outcome.errors.append(f"answer to {record.get('question')!r} returned for {question!r}")
            continue
        outcome.latencies_s.append(finished - began)
        outcome.server_ms.append(float(record["timings_ms"]["total"]))
        outcome.finished_at.append(finished)


def sample_memory(app: ServedApp, outcome: Outcome, every_s: float, stop: threading.Event,
                  samples: list[tuple[int, float]]) -> None:
    """(questions answered, VmRSS MiB) every `every_s` seconds while the clients run."""
    while not stop.wait(every_s):
        samples.append((len(outcome.latencies_s), app.rss_mib()))


def run_clients(app: ServedApp, pool: list[str], clients: int, per_client: int, timeout_s: float,
                sample_every_s: float) -> tuple[Outcome, list[tuple[int, float]]]:
    """The clients' questions, all starting together, and the server's memory sampled meanwhile.

    Client `c` asks questions `c * per_client` onwards of the pool, wrapping around. A client still
    waiting when the time is up counts its remaining questions as not asked.
    """
    outcome = Outcome()
    start = threading.Barrier(clients + 1, timeout=120)
    deadline = time.perf_counter() + timeout_s
    threads = [
        threading.Thread(target=run_client, daemon=True, args=(
            app.url, [pool[(c * per_client + q) % len(pool)] for q in range(per_client)], start, deadline, outcome))
        for c in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    outcome.released = time.perf_counter()
    stop, samples = threading.Event(), [(0, app.rss_mib())]
    sampler = threading.Thread(target=sample_memory, args=(app, outcome, sample_every_s, stop, samples), daemon=True)
    sampler.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.perf_counter()) + 5)
    stop.set()
    sampler.join()
    asked = len(outcome.latencies_s) + len(outcome.errors) + outcome.not_asked
    outcome.not_asked += clients * per_client - asked  # clients still waiting on a reply at the deadline
    return outcome, samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40, help="clients asking at once (default 40)")
    parser.add_argument("--questions", type=int, default=10, help="questions each client asks (default 10)")
    parser.add_argument("--questions-total", type=int, default=None,
                        help="ask about this many in all, split over the clients (overrides --questions)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds the clients have in all; questions not asked by then count as errors (default 600)")
    parser.add_argument("--qa-set", type=Path, default=REPO / "evals" / "governance_qa.jsonl",
                        help="JSONL QA set whose questions are asked in turn (default: the shipped one)")
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus", help="corpus folder (default: the bundled one)")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="build (or reuse, if up to date) the index here instead of a fresh temporary folder")
    parser.add_argument("--warm-up", type=int, default=8,
                        help="questions asked at once before the memory baseline, not timed (default 8)")
    parser.add_argument("--app", type=Path, default=REPO / "app.py",
                        help="the app script to serve, e.g. another revision's app.py (default: this checkout's)")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between memory samples (default 2)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads in the server (OMP_NUM_THREADS; default: torch's own choice)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server, e.g. MALLOC_ARENA_MAX=2 (repeatable)")
    args = parser.parse_args(argv)
    per_client = math.ceil(args.questions_total / args.clients) if args.questions_total else args.questions

    server_env = dict(pair.split("=", 1) for pair in args.server_env)
    if args.torch_threads:
        server_env["OMP_NUM_THREADS"] = str(args.torch_threads)
    print(f"{machine()}; server {shown(args.app)} with torch threads {args.torch_threads or 'default'}"
          + "".join(f"; {name}={value}" for name, value in server_env.items() if name != "OMP_NUM_THREADS"))
    pool = [json.loads(line)["question"] for line in args.qa_set.read_text(encoding="utf-8").splitlines() if line.strip()]
    corpus = args.corpus.resolve()
    with workspace(args.index_dir, "bench-load-") as (index_dir, scratch):
        began = time.perf_counter()
        built = build_index(corpus, index_dir)
        print(f"index: {index_dir} ({built['chunks']} chunks, {built['embedded']} embedded now, "
              f"{time.perf_counter() - began:.1f} s); {args.clients} clients x {per_client} questions = "
              f"{args.clients * per_client}, time limit {args.timeout:.0f} s")
        with served_app(index_dir, corpus, scratch, extra_env=server_env, script=args.app.resolve()) as app:
            ready_s = ask_when_ready(app, pool[0], timeout_s=120)
            rss_cold = app.rss_mib()
            settled_s = app.wait_idle()
            warmer = client(app.url)  # questions at once, so the baseline includes what concurrency allocates
            for job in [warmer.submit(q, api_name="/ask") for q in pool[1 : 1 + args.warm_up]]:
                job.result(timeout=300)
            rss_before = app.rss_mib()
            log_seen = len((scratch / "app.log").read_bytes())  # refusals while loading are logged as tracebacks

            outcome, samples = run_clients(app, pool, args.clients, per_client, args.timeout, args.sample_every)
            time.sleep(1)  # let the server finish any bookkeeping after the last reply
            rss_after, rss_peak = app.rss_mib(), app.peak_rss_mib()
            tracebacks = (scratch / "app.log").read_bytes()[log_seen:].count(b"Traceback")

    answered = len(outcome.latencies_s)
    errors = len(outcome.errors) + outcome.not_asked
    span_s = (max(outcome.finished_at) - outcome.released) if outcome.finished_at else float("nan")
    growth = rss_after / rss_before - 1
    print(f"page served {app.started_s:.1f} s and first answer {ready_s:.1f} s after launch; RSS {rss_cold:.0f} MiB "
          f"after the first answer; background warm-up done {settled_s:.0f} s later; {rss_before:.0f} MiB after "
          f"{args.warm_up} warm-up questions at once; "
          f"{tracebacks} tracebacks in the app's log during the run\n")
    latency_ms = [s * 1000 for s in outcome.latencies_s]
    print(table(["figure", "value", "goal"], [
        ["questions answered", f"{answered} of {args.clients * per_client}", ""],
        ["errors (failed, timed out, mixed up, not asked)",
         f"{len(outcome.errors)}, {outcome.not_asked} not asked", f"{ERRORS_GOAL}: {verdict(errors == ERRORS_GOAL)}"],
        ["latency p50 / p95 / max, client side (ms)",
         f"{percentile(latency_ms, 50):.0f} / {percentile(latency_ms, 95):.0f} / {max(latency_ms, default=0):.0f}", ""],
        ["ask p50 / p95, server side (ms, timings_ms.total)",
         f"{percentile(outcome.server_ms, 50):.0f} / {percentile(outcome.server_ms, 95):.0f}", ""],
        ["throughput (questions/s)", f"{answered / span_s:.2f} over {span_s:.1f} s", ""],
        ["server RSS before / after / peak (MiB)", f"{rss_before:.0f} / {rss_after:.0f} / {rss_peak:.0f}", ""],
        ["server RSS growth", f"{growth:+.1%}", f"< {GROWTH_GOAL:.0%}: {verdict(growth < GROWTH_GOAL)}"],
    ]))
    nearest = {min(range(len(samples)), key=lambda i: abs(samples[i][0] - answered * k / 8)) for k in range(8)}
    trail = ", ".join(f"{samples[i][1]:.0f} at {samples[i][0]}" for i in sorted(nearest)) + f", {rss_after:.0f} at {answered}"
    print(f"\nserver RSS along the way (MiB at questions answered): {trail}")
    for error in sorted(set(outcome.errors))[:5]:
        print(f"error ({outcome.errors.count(error)}x): {error}")


if __name__ == "__main__":
    main()
