"""Calibrate the refusal threshold on a QA set: answerable against unanswerable questions.

The threshold is not set by hand: `python -m assistant calibrate evals/governance_qa.jsonl`
measures the evidence score of every question and picks the cut with the least expected cost
(see `choose_threshold`), and the chosen value becomes the default of `answer.refusal_threshold`.

    >>> choose_threshold(answerable=[0.7, 0.8, 0.9], unanswerable=[0.2, 0.3])
    0.5
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any


def choose_threshold(answerable: list[float], unanswerable: list[float], wrong_answer_cost: float = 2.0) -> float:
    """The cut with the least expected cost; ties go to the cut that refuses more (safer).

    A question is refused when its score is below the cut. The cost is the share of answerable
    questions refused plus `wrong_answer_cost` times the share of unanswerable ones answered: an
    answer citing a passage that does not answer misleads, while a refusal still shows the
    nearest passages, so a wrong answer costs twice a needless refusal. Candidate cuts lie midway
    between neighbouring observed scores, so the result does not hug either group.
    """
    scores = sorted(set(answerable + unanswerable))
    cuts = [(a + b) / 2 for a, b in pairwise(scores)] or scores
    best_cut, best_cost = cuts[0], float("inf")
    for cut in cuts:
        refused = sum(s < cut for s in answerable) / max(len(answerable), 1)
        answered = sum(s >= cut for s in unanswerable) / max(len(unanswerable), 1)
        cost = refused + wrong_answer_cost * answered
        if cost < best_cost or (cost == best_cost and cut > best_cut):
            best_cut, best_cost = cut, cost
    return round(best_cut, 4)


def calibrate(assistant: Any, qa_path: Path) -> dict[str, Any]:
    """Evidence scores of every question of the set, and the threshold that separates them."""
    from llama_index.core.schema import QueryBundle

    from assistant.answering import assess
    from assistant.qa_sets import read_qa_set

    manifest = assistant.store.check_ready()
    groups: dict[bool, list[float]] = {True: [], False: []}
    for item in read_qa_set(qa_path):
        filters, _ = assistant.scope(item["question"], None, manifest)
        nodes = assistant.query_engine(filters).retrieve(QueryBundle(item["question"]))[: assistant.settings.answer.passages]
        _, evidence = assess(item["question"], nodes, assistant.embed_model, assistant.store.knows)
        # A question with a missing anchor is refused whatever the threshold: score it below any cut.
        groups[bool(item.get("answerable", True))].append(0.0 if evidence.missing else evidence.score)
    threshold = choose_threshold(groups[True], groups[False])
    return {
        "threshold": threshold,
        "answerable": len(groups[True]),
        "unanswerable": len(groups[False]),
        "answered_if_answerable": round(sum(s >= threshold for s in groups[True]) / max(len(groups[True]), 1), 4),
        "refused_if_unanswerable": round(sum(s < threshold for s in groups[False]) / max(len(groups[False]), 1), 4),
    }
