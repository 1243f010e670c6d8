"""Calibrate the refusal threshold on a QA set: answerable against unanswerable questions.

The threshold is not set by hand: `python -m assistant calibrate evals/governance_qa.jsonl`
measures the evidence score of every question and picks the cut that best separates the two
groups, and the chosen value becomes the default of `answer.refusal_threshold`.

    >>> choose_threshold(answerable=[0.7, 0.8, 0.9], unanswerable=[0.2, 0.3])
    0.5
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def choose_threshold(answerable: list[float], unanswerable: list[float]) -> float:
    """The cut maximising balanced accuracy; ties go to the cut that refuses more (safer).

    A question is refused when its score is below the cut. Candidate cuts lie midway between
    neighbouring observed scores, so the result does not hug either group.
    """
    scores = sorted(set(answerable + unanswerable))
    cuts = [(a + b) / 2 for a, b in zip(scores, scores[1:])] or scores
    best_cut, best_value = cuts[0], -1.0
    for cut in cuts:
        answered = sum(s >= cut for s in answerable) / max(len(answerable), 1)
        refused = sum(s < cut for s in unanswerable) / max(len(unanswerable), 1)
        value = (answered + refused) / 2
        if value > best_value or (value == best_value and cut > best_cut):
            best_cut, best_value = cut, value
    return round(best_cut, 4)


def read_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def calibrate(assistant: Any, qa_path: Path) -> dict[str, Any]:
    """Evidence scores of every question of the set, and the threshold that separates them."""
    from assistant.answering import rank_sentences
    from assistant.retrieval import HybridRetriever

    assistant.store.check_ready()
    retriever = HybridRetriever(assistant.store, assistant.embed_model, assistant.settings.retrieval)
    groups: dict[bool, list[float]] = {True: [], False: []}
    for item in read_questions(qa_path):
        nodes = retriever.retrieve(item["question"])[: assistant.settings.answer.passages]
        _, evidence = rank_sentences(item["question"], nodes, assistant.embed_model)
        groups[bool(item.get("answerable", True))].append(evidence.score)
    threshold = choose_threshold(groups[True], groups[False])
    return {
        "threshold": threshold,
        "answerable": len(groups[True]),
        "unanswerable": len(groups[False]),
        "answered_if_answerable": round(sum(s >= threshold for s in groups[True]) / max(len(groups[True]), 1), 4),
        "refused_if_unanswerable": round(sum(s < threshold for s in groups[False]) / max(len(groups[False]), 1), 4),
    }
