"""Chroma embedded against Chroma as a server: the same questions through both, side by side.

The bundled corpus is ingested twice, once into Chroma on disk (`PersistentClient`) and once into a
real `chroma run` on a free loopback port (`HttpClient`, `ASSISTANT_CHROMA_URL`), with one loaded
embedding model. Every question is asked once in each mode first, so that both have its passages'
sentence vectors remembered; the timed passes then alternate the modes question by question (each
question embedded afresh in both), and differ only in where the vectors are searched and fetched.

    .venv/bin/python benchmarks/server_mode.py             # 50 questions spread over the shipped set
    .venv/bin/python benchmarks/server_mode.py --limit 0   # every question
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import Self

from assistant import Assistant, Settings
from benchmarks.figures import machine, percentile, table
from benchmarks.query import questions, stage_times
from benchmarks.served_app import REPO, free_port
from benchmarks.workspace import workspace


class ChromaServer:
    """A real `chroma run` (it ships with the chromadb package) on a free loopback port."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(data),
                        "--host", "127.0.0.1", "--port", str(self.port)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until its heartbeat answers."""
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Chroma server did not answer on {self.url} within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=50, help="questions spread over the shipped set; 0 for all (default 50)")
    args = parser.parse_args(argv)
    print(machine())
    asked = questions(REPO / "evals" / "governance_qa.jsonl", args.limit)
    with workspace(None, "bench-server-") as (_, scratch), ChromaServer(scratch / "chroma-server") as server:
        modes = {
            "embedded": Assistant(Settings(corpus_dir=REPO / "corpus", index_dir=scratch / "embedded")),
            "server": Assistant(Settings(corpus_dir=REPO / "corpus", index_dir=scratch / "server", chroma_url=server.url)),
        }
        modes["server"].embed_model = modes["embedded"].embed_model  # one loaded model for both
        ingest_s = {}
        for mode, assistant in modes.items():
            began = time.perf_counter()
            assistant.ingest()
            ingest_s[mode] = time.perf_counter() - began
            for question in asked:
                assistant.ask(question)
        times: dict[str, dict[str, list[float]]] = {mode: {} for mode in modes}
        for number, question in enumerate(asked):
            order = list(modes) if number % 2 == 0 else list(reversed(modes))
            for mode in order:
                one, _ = stage_times(modes[mode], [question])
                for stage, values in one.items():
                    times[mode].setdefault(stage, []).extend(values)
    print(f"{len(asked)} questions, each asked once in both modes before the timed pass; "
          f"ingest: embedded {ingest_s['embedded']:.1f} s, server {ingest_s['server']:.1f} s (embedding included)\n")
    stages = ("dense", "keyword", "fuse", "retrieve", "answer", "total")
    print(table(["stage, ms", *(f"{mode} p50 / p95" for mode in modes), "server/embedded p50"], [
        [stage, *(f"{percentile(times[m][stage], 50):.1f} / {percentile(times[m][stage], 95):.1f}" for m in modes),
         f"{percentile(times['server'][stage], 50) / max(percentile(times['embedded'][stage], 50), 1e-9):.2f}"]
        for stage in stages
    ]))


if __name__ == "__main__":
    main()
