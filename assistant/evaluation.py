"""Evaluate: run a QA set through the assistant and compute deterministic metrics.

A first cut of the evaluator's workbench: `python -m assistant eval SET.jsonl --out DIR` writes
`DIR/results.jsonl` (per question, `id` plus the `ask --json` record) and `DIR/summary.json`.
Every metric is a pure function of the records and the QA items, so a run always gives the same
figures.

    >>> contains_evidence("Fines of up to EUR 35 000 000\\napply.", ["fines of up to eur 35 000 000 apply"])
    True
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from assistant.calibration import read_questions


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("**", "")).strip().lower()


def contains_evidence(passage: str, evidence: list[str]) -> bool:
    """True when any evidence quote lies in the passage, ignoring case and runs of whitespace."""
    flat = _norm(passage)
    return any(_norm(quote) in flat for quote in evidence)


def first_hit_rank(record: dict[str, Any], evidence: list[str]) -> int | None:
    """The rank of the first retrieved passage that contains evidence, or None."""
    return next((r["rank"] for r in record["retrieved"] if contains_evidence(r["text"], evidence)), None)


def answer_correct(record: dict[str, Any], must_include: list[str]) -> bool:
    answer = record["answer"].lower()
    return not record["refused"] and any(s.lower() in answer for s in must_include)


def summarise(items: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, float]:
    """hit@k, MRR, answer accuracy, refusal recall and false-refusal rate over the set."""
    answerable = [(q, r) for q, r in zip(items, records) if q.get("answerable", True)]
    unanswerable = [r for q, r in zip(items, records) if not q.get("answerable", True)]
    ranks = [first_hit_rank(r, q["evidence"]) for q, r in answerable if q["evidence"]]
    summary: dict[str, float] = {f"hit@{k}": sum(1 for x in ranks if x and x <= k) / max(len(ranks), 1) for k in (1, 3, 5, 10)}
    summary["mrr"] = sum(1 / x for x in ranks if x) / max(len(ranks), 1)
    graded = [(q, r) for q, r in answerable if q.get("must_include")]
    summary["answer_accuracy"] = sum(answer_correct(r, q["must_include"]) for q, r in graded) / max(len(graded), 1)
    summary["refusal_recall"] = sum(r["refused"] for r in unanswerable) / max(len(unanswerable), 1)
    summary["false_refusal_rate"] = sum(r["refused"] for _, r in answerable) / max(len(answerable), 1)
    summary["questions"] = len(items)
    return {k: round(v, 4) for k, v in summary.items()}


def run_eval(assistant: Any, qa_path: Path, out_dir: Path) -> dict[str, Any]:
    """Ask every question of the set; write results.jsonl and summary.json under `out_dir`."""
    items = read_questions(qa_path)
    records = [assistant.ask(item["question"]) for item in items]
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"id": item["id"], **record}, ensure_ascii=False) + "\n" for item, record in zip(items, records))
    summary = {**summarise(items, records), "index_hash": assistant.settings.index_hash(), "qa_set": str(qa_path)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
