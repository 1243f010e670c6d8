"""Calibrate the refusal model on the dev split of a QA set: answerable against unanswerable questions.

Nothing in the refusal decision is set by hand: `python -m assistant calibrate
evals/governance_qa.jsonl evals/briefing_qa.jsonl` asks the dev questions, fits the logistic model
of `assistant.evidence` on their evidence features (answerable or not), and picks the probability
below which to refuse with the least cost (see `choose_threshold`), and the one above which a
document speaks to the point in an answer across documents; `--write` stores the result as the
bundled `refusal_model.json`, with the calibration that made it. The test split is never read
here, so the figures on it stay honest.

    >>> choose_threshold(answerable=[0.7, 0.8, 0.9], unanswerable=[0.2, 0.3])
    0.5
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from assistant.evidence import RefusalModel, fit


def choose_threshold(answerable: list[float], unanswerable: list[float], wrong_answer_cost: float = 2.0) -> float:
    """The cut with the least cost over the questions; ties go to the cut that refuses more (safer).

    A question is refused when its score is below the cut. Each answerable question refused costs
    1 and each unanswerable question answered costs `wrong_answer_cost`: an answer citing a passage
    that does not answer misleads, while a refusal still shows the nearest passages, so a wrong
    answer costs twice a needless refusal. The costs are counted per question, not per group, so the
    cut does not depend on how many unanswerable questions a set happens to hold beside its
    answerable ones. Candidate cuts lie midway between neighbouring observed scores, so the result
    does not hug either group.
    """
    scores = sorted(set(answerable + unanswerable))
    cuts = [(a + b) / 2 for a, b in pairwise(scores)] or scores
    best_cut, best_cost = cuts[0], float("inf")
    for cut in cuts:
        cost = sum(s < cut for s in answerable) + wrong_answer_cost * sum(s >= cut for s in unanswerable)
        if cost < best_cost or (cost == best_cost and cut > best_cut):
            best_cut, best_cost = cut, cost
    return round(best_cut, 4)


PENALTIES = (1.0, 0.3, 0.1, 0.03, 0.01)  # the L2 penalties `choose_penalty` tries


def ranking_quality(answerable: Sequence[float], unanswerable: Sequence[float]) -> float:
    """The share of (answerable, unanswerable) pairs whose probabilities are in the right order (ROC AUC).

    >>> ranking_quality([0.9, 0.4], [0.5, 0.1])
    0.75
    """
    pairs = [(a > u) + 0.5 * (a == u) for a in answerable for u in unanswerable]
    return sum(pairs) / max(len(pairs), 1)


def choose_penalty(rows: Sequence[dict[str, float]], labels: Sequence[bool], groups: Sequence[str]) -> float:
    """The L2 penalty whose models, each fitted without one group's rows, rank that group's best.

    A group is a document (its questions) for the question model: leaving a document out is the
    closest the calibration set comes to a document nobody has seen. For the document model it is
    a question (its documents).
    """
    def held_out_quality(l2: float) -> float:
        scored: dict[bool, list[float]] = {True: [], False: []}
        for left_out in sorted(set(groups)):
            kept = [i for i, group in enumerate(groups) if group != left_out]
            weights, bias = fit([rows[i] for i in kept], [labels[i] for i in kept], l2)
            model = RefusalModel(weights, bias, 0.0)
            for i, group in enumerate(groups):
                if group == left_out:
                    scored[labels[i]].append(model.probability(rows[i]))
        return ranking_quality(scored[True], scored[False])

    return max(PENALTIES, key=held_out_quality)


def fit_model(items: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], about: dict[str, Any]) -> RefusalModel:
    """The refusal model fitted on asked questions: their records' evidence features, and whether each is answerable.

    The weights and the threshold come from the questions with one answer; the document weights
    and threshold from the cross-document ones (`expected_documents`, and the unanswerable questions
    answered across documents), each document's own evidence labelled by whether it is expected.

    The L2 penalty is chosen by leaving each document's questions out in turn (`choose_penalty`). A
    question refused for a figure no passage holds is refused whatever the model says; it counts at
    probability 0 when the threshold is chosen.
    """
    asked = [(item, record) for item, record in zip(items, records)
             if "features" in record.get("evidence", {}) and "expected_documents" not in item]
    rows = [record["evidence"]["features"] for _, record in asked]
    labels = [bool(item.get("answerable", True)) for item, _ in asked]
    l2 = choose_penalty(rows, labels, [(item.get("tags") or [""])[0] for item, _ in asked])
    weights, bias = fit(rows, labels, l2)
    unthresholded = RefusalModel(weights, bias, 0.0)
    groups: dict[bool, list[float]] = {True: [], False: []}
    for (_, record), label, row in zip(asked, labels, rows):
        groups[label].append(0.0 if record["evidence"]["missing"] else unthresholded.probability(row))
    threshold = choose_threshold(groups[True], groups[False])
    # One document's evidence in an answer that spans documents: does it speak to the point (is it
    # among the question's expected documents; for an unanswerable question, none is)? Its own model,
    # with the penalty chosen by leaving each question out; a document wrongly quoted costs as much
    # as one left out.
    spoken = [(found["features"], bool(item.get("answerable", True)) and doc in item.get("expected_documents", {}), item["id"])
              for item, record in zip(items, records)
              if "expected_documents" in item or not item.get("answerable", True)
              for doc, found in record.get("evidence", {}).get("documents", {}).items()]
    document_weights: dict[str, float] = {}
    document_bias, document_threshold = 0.0, threshold
    if len({label for _, label, _ in spoken}) == 2:
        document_rows, document_labels, questions = (list(column) for column in zip(*spoken))
        document_weights, document_bias = fit(document_rows, document_labels,
                                              choose_penalty(document_rows, document_labels, questions))
    document_model = RefusalModel(weights, bias, threshold, 0.0, document_weights, document_bias)
    documents: dict[bool, list[float]] = {True: [], False: []}
    for features, label, _ in spoken:
        documents[label].append(document_model.document_probability(features))
    if documents[True]:
        document_threshold = choose_threshold(documents[True], documents[False], wrong_answer_cost=1.0)
    return RefusalModel(weights, bias, threshold, document_threshold, document_weights, document_bias, {
        **about,
        "l2": l2,
        "answerable": len(groups[True]),
        "unanswerable": len(groups[False]),
        "answered_if_answerable": round(sum(p >= threshold for p in groups[True]) / max(len(groups[True]), 1), 4),
        "refused_if_unanswerable": round(sum(p < threshold for p in groups[False]) / max(len(groups[False]), 1), 4),
        "documents_expected": len(documents[True]),
        "documents_not_expected": len(documents[False]),
        "expected_documents_kept": round(sum(p >= document_threshold for p in documents[True]) / max(len(documents[True]), 1), 4),
        "other_documents_left_out": round(sum(p < document_threshold for p in documents[False]) / max(len(documents[False]), 1), 4),
    })


def calibrate(assistant: Any, qa_paths: Sequence[Path], split: str = "dev", leave_out: Collection[str] = ()) -> RefusalModel:
    """Ask the questions of `split` (less those about the `leave_out` documents) and fit the refusal model on them."""
    from assistant.evaluation import ask_all, select_items
    from assistant.qa_sets import read_qa_set

    items = [item for path in qa_paths for item in select_items(read_qa_set(path), split, exclude=leave_out)]
    records = ask_all(assistant.ask, items, assistant.standalone)
    return fit_model(items, records, {
        "qa_sets": [path.as_posix() for path in qa_paths], "split": split, "left_out": sorted(leave_out),
        "index_hash": assistant.settings.index_hash(), "corpus_hash": assistant.store.check_ready().corpus_hash(),
        "fitted": datetime.now(UTC).date().isoformat(),
    })
