"""Peak memory of an ingest that embeds a large corpus in slices, against one that embeds it at once.

The same synthetic corpus as `scale.py` (the real documents' sentences recombined, 100 chunks to a
file) is ingested twice into fresh indexes, each time by a new Python process so that its peak
resident memory (VmHWM) is its own: once with the shipped `SLICE_CHARS` (about 4,000 chunks of
text per slice), once with a slice larger than the corpus (one pass over everything, as ingests
ran before slices). Both use the default torch backend.

    .venv/bin/python benchmarks/ingest_memory.py                 # 10,000 chunks: about 9 minutes on 2 cores
    .venv/bin/python benchmarks/ingest_memory.py --chunks 2000   # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.ingestion import SLICE_CHARS
from benchmarks.figures import machine, table
from benchmarks.scale import PER_FILE, sentence_pool, write_files
from benchmarks.served_app import REPO
from benchmarks.workspace import workspace

CHILD = """
import json, sys, time
from pathlib import Path
from assistant import Assistant, Settings, ingestion
ingestion.SLICE_CHARS = int(sys.argv[3])
began = time.perf_counter()
summary = Assistant(Settings(corpus_dir=sys.argv[1], index_dir=sys.argv[2])).ingest()
seconds = time.perf_counter() - began
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"chunks": summary.chunks, "seconds": seconds, "peak_mib": int(status["VmHWM"].split()[0]) / 1024}))
"""


def ingest_in_child(corpus: Path, index: Path, slice_chars: int) -> dict[str, float]:
    """Ingest `corpus` into the fresh folder `index` in a new process; its chunks, seconds, peak MiB."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(index), str(slice_chars)],
                          cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000, help="synthetic chunks to ingest (default 10000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the shuffling (default 7)")
    args = parser.parse_args(argv)
    print(machine())
    with workspace(None, "bench-ingest-memory-") as (_, scratch):
        corpus = scratch / "corpus"
        corpus.mkdir()
        write_files(corpus, -(-args.chunks // PER_FILE), sentence_pool(REPO / "corpus"), args.seed)
        text_chars = sum(len(p.read_text(encoding="utf-8")) for p in corpus.glob("synthetic-*.txt"))
        print(f"{text_chars / 1e6:.1f} million characters of text in {-(-args.chunks // PER_FILE)} files\n")
        sliced = ingest_in_child(corpus, scratch / "sliced", SLICE_CHARS)
        whole = ingest_in_child(corpus, scratch / "whole", 10 * text_chars)
    rows = [
        [f"slices of {SLICE_CHARS:,} characters", f"{sliced['chunks']:,}", f"{sliced['seconds']:.0f}", f"{sliced['peak_mib']:.0f}"],
        ["the whole corpus at once", f"{whole['chunks']:,}", f"{whole['seconds']:.0f}", f"{whole['peak_mib']:.0f}"],
    ]
    print(table(["ingest", "chunks", "seconds", "peak MiB"], rows))
    print(f"\npeak memory, sliced / at once: {sliced['peak_mib'] / whole['peak_mib']:.2f}; "
          f"time, sliced / at once: {sliced['seconds'] / whole['seconds']:.2f}")


if __name__ == "__main__":
    main()
