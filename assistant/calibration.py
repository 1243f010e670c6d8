"""Calibrate the refusal model on the dev split of a QA set: answerable against unanswerable questions.

Nothing in the refusal decision is set by hand: `python -m assistant calibrate
evals/governance_qa.jsonl evals/briefing_qa.jsonl` asks the dev questions, fits the logistic model
of `assistant.evidence` on their evidence features (answerable or not), and a second model on
whether each document speaks to the point of an answer across documents. The probabilities below
which the assistant refuses, and leaves a document out, follow from what each error costs (see
`threshold_for`). `--write` stores the result as the bundled `refusal_model.json`, with the
calibration that made it. The test split is never read here, so the figures on it stay honest.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.evidence import DOCUMENT_FEATURES, FEATURES, RefusalModel, fit

WRONG_ANSWER_COST = 2.0  # an answer the passages do not back, against one needless refusal (see `threshold_for`)


def threshold_for(wrong_answer_cost: float) -> float:
    """The probability below which refusing costs less than answering, for a calibrated probability.

    Answering costs `wrong_answer_cost` when the passages do not answer (probability 1 - p) and
    refusing costs 1 when they do (p), so the assistant refuses when p < cost / (cost + 1). An answer
    citing a passage that does not answer misleads, while a refusal still shows the nearest
    passages: a wrong answer costs twice a needless refusal. A document wrongly quoted in an answer
    across documents costs as much as one left out. A cut searched over the dev questions instead
    follows their noise: resampling the dev questions moved such a cut between 0.56 and 0.77 (for
    documents, between 0.31 and 0.59).

    >>> threshold_for(WRONG_ANSWER_COST), threshold_for(1.0)
    (0.6667, 0.5)
    """
    return round(wrong_answer_cost / (wrong_answer_cost + 1.0), 4)


PENALTIES = (1.0, 0.3, 0.1, 0.03, 0.01)  # the L2 penalties `choose_penalty` tries


def ranking_quality(answerable: Sequence[float], unanswerable: Sequence[float]) -> float:
    """The share of (answerable, unanswerable) pairs whose probabilities are in the right order (ROC AUC).

    >>> ranking_quality([0.9, 0.4], [0.5, 0.1])
    0.75
    """
    pairs = [(a > u) + 0.5 * (a == u) for a in answerable for u in unanswerable]
    return sum(pairs) / max(len(pairs), 1)


def choose_penalty(rows: Sequence[dict[str, float]], labels: Sequence[bool], groups: Sequence[str],
                   features: Sequence[str] = FEATURES) -> float:
    """The L2 penalty whose models, each fitted without one group's rows, rank that group's best.

    A group is a document (its questions) for the question model: leaving a document out is the
    closest the calibration set comes to a document nobody has seen. For the document model it is
    a question (its documents).
    """
    def held_out_quality(l2: float) -> float:
        scored: dict[bool, list[float]] = {True: [], False: []}
        for left_out in sorted(set(groups)):
            kept = [i for i, group in enumerate(groups) if group != left_out]
            weights, bias = fit([rows[i] for i in kept], [labels[i] for i in kept], l2, features)
            model = RefusalModel(weights, bias, 0.0)
            for i, group in enumerate(groups):
                if group == left_out:
                    scored[labels[i]].append(model.probability(rows[i]))
        return ranking_quality(scored[True], scored[False])

    return max(PENALTIES, key=held_out_quality)


def fit_model(items: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], about: dict[str, Any]) -> RefusalModel:
    """The refusal model fitted on asked questions: their records' evidence features, and whether each is answerable.

    The weights come from the questions with one answer; the document weights from the
    cross-document ones (`expected_documents`, and the unanswerable questions
    answered across documents), each document's own evidence labelled by whether it is expected.

    The L2 penalty is chosen by leaving each document's questions out in turn (`choose_penalty`);
    the thresholds follow from the costs of the two errors (`threshold_for`). A question refused for
    a figure no passage holds is refused whatever the model says; it counts at probability 0 in the
    figures the calibration reports.
    """
    asked = [(item, record) for item, record in zip(items, records)
             if "features" in record.get("evidence", {}) and "expected_documents" not in item]
    rows = [record["evidence"]["features"] for _, record in asked]
    labels = [bool(item.get("answerable", True)) for item, _ in asked]
    l2 = choose_penalty(rows, labels, [(item.get("tags") or [""])[0] for item, _ in asked])
    weights, bias = fit(rows, labels, l2)
    threshold = threshold_for(WRONG_ANSWER_COST)
    question_model = RefusalModel(weights, bias, threshold)
    groups: dict[bool, list[float]] = {True: [], False: []}
    for (_, record), label, row in zip(asked, labels, rows):
        groups[label].append(0.0 if record["evidence"]["missing"] else question_model.probability(row))
    # One document's evidence in an answer that spans documents: does it speak to the point (is it
    # among the question's expected documents; for an unanswerable question, none is)? Its own model,
    # over the features that tell documents apart, with the penalty chosen by leaving each question out.
    spoken = [(found["features"], bool(item.get("answerable", True)) and doc in item.get("expected_documents", {}), item["id"])
              for item, record in zip(items, records)
              if "expected_documents" in item or not item.get("answerable", True)
              for doc, found in record.get("evidence", {}).get("documents", {}).items()]
    document_weights: dict[str, float] = {}
    document_bias, document_threshold = 0.0, threshold_for(1.0)
    if len({label for _, label, _ in spoken}) == 2:
        document_rows, document_labels, questions = (list(column) for column in zip(*spoken))
        l2_documents = choose_penalty(document_rows, document_labels, questions, DOCUMENT_FEATURES)
        document_weights, document_bias = fit(document_rows, document_labels, l2_documents, DOCUMENT_FEATURES)
    document_model = RefusalModel(weights, bias, threshold, 0.0, document_weights, document_bias)
    documents: dict[bool, list[float]] = {True: [], False: []}
    for features, label, _ in spoken:
        documents[label].append(document_model.document_probability(features))
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
