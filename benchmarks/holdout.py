"""Leave one document out: how the refusal model does on a document it was not fitted on.

For each document of the catalog, the refusal model is fitted on the dev questions of the other five
(`python -m assistant eval SET --holdout-document ID` does one of them) and that document's
questions, of both splits, are asked; beside it, the same questions answered with the bundled
model, fitted on the dev questions of all six ("in sample"). The goal: held-out accuracy within
10 points of in-sample accuracy for every document.

    .venv/bin/python benchmarks/holdout.py                               # a fresh temporary index
    .venv/bin/python benchmarks/holdout.py --index-dir /tmp/bench-index  # build once, reuse next time
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant, Settings
from assistant.evaluation import run_eval
from assistant.evidence import RefusalModel
from benchmarks.figures import machine, table
from benchmarks.workspace import workspace

REPO = Path(__file__).resolve().parent.parent
FIGURES = ("answer_accuracy", "false_refusal_rate", "refusal_recall")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa-set", type=Path, default=REPO / "evals" / "governance_qa.jsonl")
    parser.add_argument("--index-dir", type=Path, help="index folder to build or reuse (default: a temporary one)")
    args = parser.parse_args()
    with workspace(args.index_dir, "bench-holdout-") as (index_dir, scratch):
        assistant = Assistant(Settings(corpus_dir=REPO / "corpus", index_dir=index_dir))
        assistant.ingest()
        rows = []
        for entry in assistant.documents():
            doc = entry["doc_id"]
            assistant.refusal_model = RefusalModel.load()  # the bundled model, fitted on every document's dev questions
            in_sample = run_eval(assistant, args.qa_set, scratch / f"in-{doc}", document=doc)["metrics"]
            held_out = run_eval(assistant, args.qa_set, scratch / f"out-{doc}", document=doc, holdout=True)["metrics"]
            gap = (in_sample["answer_accuracy"] or 0) - (held_out["answer_accuracy"] or 0)
            rows.append([doc, *(f"{in_sample[f]}" for f in FIGURES), *(f"{held_out[f]}" for f in FIGURES),
                         f"{gap:+.3f}", "yes" if gap <= 0.10 else "NO"])
    print(machine())
    print(table(["document", *(f"in-sample {f}" for f in FIGURES), *(f"held-out {f}" for f in FIGURES),
                 "accuracy gap", "within 10 points"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
