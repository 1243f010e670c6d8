"""A document nobody tuned on: the bundled corpus plus a seventh document, and questions about it.

`evals/unseen/` holds a synthetic chair's summary (a plausible meeting, not a real one), its catalog
entry and 30 questions written as a diplomat would ask them: facts in the document's words and in
other words, near misses it does not answer, follow-ups, and questions across it and the bundled
documents. The corpus is copied with the document added, indexed (only the new document is
embedded when `--index-dir` already holds the bundled corpus), and the questions asked with the
bundled refusal model, which was fitted on the six bundled documents only.

    .venv/bin/python benchmarks/unseen_document.py                               # a fresh temporary index
    .venv/bin/python benchmarks/unseen_document.py --index-dir /tmp/bench-index  # build once, reuse next time
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant, Settings
from assistant.evaluation import run_eval
from assistant.metrics import failure_kind
from benchmarks.figures import machine, table
from benchmarks.workspace import workspace

REPO = Path(__file__).resolve().parent.parent
UNSEEN = REPO / "evals" / "unseen"
FIGURES = ("hit@5", "mrr", "answer_accuracy", "false_refusal_rate", "refusal_recall", "document_coverage", "citation_precision")


def corpus_with_unseen(folder: Path) -> Path:
    """The bundled corpus and the unseen document in `folder`, with one catalog holding both."""
    shutil.copytree(REPO / "corpus", folder)
    for document in UNSEEN.glob("*.txt"):
        shutil.copy(document, folder / document.name)
    catalog = folder / "catalog.toml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + "\n" + (UNSEEN / "catalog.toml").read_text(encoding="utf-8"),
                       encoding="utf-8")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path, help="index folder to build or reuse (default: a temporary one)")
    args = parser.parse_args()
    qa_set = UNSEEN / "accra_qa.jsonl"
    with workspace(args.index_dir, "bench-unseen-") as (index_dir, scratch):
        assistant = Assistant(Settings(corpus_dir=corpus_with_unseen(scratch / "corpus"), index_dir=index_dir))
        assistant.ingest()
        run = run_eval(assistant, qa_set, scratch / "run")
        items = {item["id"]: item for item in map(json.loads, (scratch / "run" / "qa_set.jsonl").read_text().splitlines())}
        records = [json.loads(line) for line in (scratch / "run" / "results.jsonl").read_text().splitlines()]
        failed = [[r["id"], kind, r["question"][:70]] for r in records if (kind := failure_kind(items[r["id"]], r))]
    print(machine())
    print(table(["metric", "unseen document"], [[name, f"{run['metrics'][name]}"] for name in FIGURES]))
    print()
    print(table(["failed", "how", "question"], failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
