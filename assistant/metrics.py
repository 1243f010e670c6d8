"""Evaluation metrics: deterministic, pure functions of the QA items and the `ask --json` records.

No LLM judges here: the same run always gives the same figures. A passage "contains evidence"
when one of the item's quotes lies in it, ignoring case and runs of whitespace (and Markdown bold,
which the EU text carries around paragraph numbers).

    >>> contains_evidence("Fines of up to EUR 35 000 000\\napply.", ["fines of up to eur 35 000 000 apply"])
    True
    >>> hit_at([1, 4, None], 3), mean_reciprocal_rank([1, 4, None])
    (0.3333, 0.4167)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from assistant.sentences import split_sentences
from assistant.verification import UNSUPPORTED_MARK

Item = dict[str, Any]
Record = dict[str, Any]
HIT_KS = (1, 3, 5, 10)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("**", "")).strip().lower()


def contains_evidence(passage: str, evidence: Sequence[str]) -> bool:
    """True when any evidence quote lies in the passage, ignoring case and runs of whitespace."""
    flat = _norm(passage)
    return any(_norm(quote) in flat for quote in evidence)


def first_hit_rank(record: Record, evidence: Sequence[str]) -> int | None:
    """The rank of the first retrieved passage that contains evidence, or None."""
    return next((r["rank"] for r in record["retrieved"] if contains_evidence(r["text"], evidence)), None)


def _ratio(numerator: float, denominator: float) -> float | None:
    """A rounded share, or None when there is nothing to measure (shown as '–', never as 0)."""
    return round(numerator / denominator, 4) if denominator else None


def hit_at(ranks: Sequence[int | None], k: int) -> float | None:
    """Share of questions whose first evidence-bearing passage ranks k or better."""
    return _ratio(sum(1 for r in ranks if r is not None and r <= k), len(ranks))


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float | None:
    return _ratio(sum(1 / r for r in ranks if r), len(ranks))


def evidence_recall(record: Record, evidence: Sequence[str], k: int) -> float:
    """Share of the evidence quotes found in the top k retrieved passages."""
    top = [r["text"] for r in record["retrieved"][:k]]
    return sum(any(contains_evidence(t, [q]) for t in top) for q in evidence) / len(evidence) if evidence else 0.0


def cited_with_evidence(record: Record, evidence: Sequence[str]) -> tuple[int, int]:
    """(cited passages containing evidence, cited passages)."""
    cited = record["citations"]
    return sum(contains_evidence(c["text"], evidence) for c in cited), len(cited)


def answer_correct(record: Record, must_include: Sequence[str]) -> bool:
    """Not refused, and the answer contains one of the expected strings (ignoring case)."""
    answer = record["answer"].lower()
    return not record["refused"] and any(s.lower() in answer for s in must_include)


def grounded_sentences(record: Record) -> tuple[int, int]:
    """(supported answer sentences, answer sentences) of an answer that was given."""
    if record["refused"]:
        return 0, 0
    sentences = split_sentences(record["answer"])
    flagged = sum(UNSUPPORTED_MARK in s for s in sentences)
    return len(sentences) - flagged, len(sentences)


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 by the nearest-rank method (no interpolation: a figure that was measured)."""
    ordered = sorted(values)

    def rank(p: float) -> float | None:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 1) if ordered else None

    return {"p50": rank(0.50), "p95": rank(0.95)}


def summarise(items: Sequence[Item], records: Sequence[Record]) -> dict[str, float | None]:
    """Every deterministic metric of a run (see the README's evaluation section for definitions)."""
    pairs = list(zip(items, records))
    answerable = [(q, r) for q, r in pairs if q.get("answerable", True)]
    unanswerable = [r for q, r in pairs if not q.get("answerable", True)]
    with_evidence = [(q, r) for q, r in answerable if q["evidence"]]
    ranks = [first_hit_rank(r, q["evidence"]) for q, r in with_evidence]
    metrics: dict[str, float | None] = {f"hit@{k}": hit_at(ranks, k) for k in HIT_KS}
    metrics["mrr"] = mean_reciprocal_rank(ranks)
    for k in (5, 10):
        metrics[f"evidence_recall@{k}"] = _ratio(sum(evidence_recall(r, q["evidence"], k) for q, r in with_evidence), len(with_evidence))
    cited = [cited_with_evidence(r, q["evidence"]) for q, r in with_evidence]
    metrics["citation_precision"] = _ratio(sum(good for good, _ in cited), sum(total for _, total in cited))
    metrics["citation_recall"] = _ratio(sum(good > 0 for good, _ in cited), len(cited))
    graded = [(q, r) for q, r in answerable if q["must_include"]]
    metrics["answer_accuracy"] = _ratio(sum(answer_correct(r, q["must_include"]) for q, r in graded), len(graded))
    metrics["refusal_recall"] = _ratio(sum(r["refused"] for r in unanswerable), len(unanswerable))
    metrics["false_refusal_rate"] = _ratio(sum(r["refused"] for _, r in answerable), len(answerable))
    grounded = [grounded_sentences(r) for r in records]
    metrics["groundedness"] = _ratio(sum(g for g, _ in grounded), sum(n for _, n in grounded))
    paged = [(q, r) for q, r in answerable if q.get("expected_pages") and not r["refused"]]
    metrics["page_accuracy"] = _ratio(sum(cites_expected_page(q, r) for q, r in paged), len(paged))
    metrics.update(wording_figures(items, records))
    metrics.update(coverage_figures(items, records))
    return metrics


def cites_expected_page(item: Item, record: Record) -> bool:
    """Whether the answer cites a passage of a document in `expected_pages` on one of its expected pages.

    A citation's page is the page its passage starts on (a passage never spans a page break), so
    this checks that a reader following "p. N" finds the evidence there.

    >>> item = {"expected_pages": {"unu": [3]}}
    >>> cites_expected_page(item, {"citations": [{"doc_id": "unu", "page": 2}, {"doc_id": "unu", "page": 3}]})
    True
    >>> cites_expected_page(item, {"citations": [{"doc_id": "eu", "page": 3}]})
    False
    """
    expected = item.get("expected_pages", {})
    return any(c.get("page") in expected.get(c.get("doc_id"), ()) for c in record["citations"])


def wording_figures(items: Sequence[Item], records: Sequence[Record]) -> dict[str, float | None]:
    """How much an answer depends on the wording: questions asked again in other words (`paraphrase_of`).

    `paraphrase_accuracy` and `original_accuracy` are the accuracies of the graded rewordings and of
    the questions they reword; `consistency` is the share of (original, rewording) pairs, both in the
    run, that are both right or both refused.

    >>> items = [{"id": "a", "must_include": ["x"], "evidence": []}, {"id": "a2", "paraphrase_of": "a", "must_include": ["x"], "evidence": []}]
    >>> records = [{"answer": "x", "refused": False, "retrieved": [], "citations": []},
    ...            {"answer": "-", "refused": True, "retrieved": [], "citations": []}]
    >>> wording_figures(items, records)
    {'paraphrase_accuracy': 0.0, 'original_accuracy': 1.0, 'consistency': 0.0}
    """
    by_id = {item["id"]: (item, record) for item, record in zip(items, records)}
    pairs = [(by_id[item["paraphrase_of"]], (item, record)) for item, record in zip(items, records)
             if item.get("paraphrase_of") in by_id]
    graded = [(original, reworded) for original, reworded in pairs
              if reworded[0].get("answerable", True) and reworded[0]["must_include"]]

    def right(pair: tuple[Item, Record]) -> bool:
        return failure_kind(*pair) is None

    return {
        "paraphrase_accuracy": _ratio(sum(answer_correct(r, q["must_include"]) for _, (q, r) in graded), len(graded)),
        "original_accuracy": _ratio(sum(answer_correct(r, q["must_include"]) for (q, r), _ in graded), len(graded)),
        "consistency": _ratio(sum((right(a) and right(b)) or (a[1]["refused"] and b[1]["refused"]) for a, b in pairs),
                              len(pairs)),
    }


def documents_covered(item: Item, record: Record) -> list[str]:
    """The expected documents (`expected_documents`) that the answer cites with a passage holding one of their quotes."""
    cited = [(c.get("doc_id"), c["text"]) for c in record["citations"]]
    return [doc for doc, quotes in item.get("expected_documents", {}).items()
            if any(doc == cited_doc and contains_evidence(text, quotes) for cited_doc, text in cited)]


def coverage_figures(items: Sequence[Item], records: Sequence[Record]) -> dict[str, float | None]:
    """For questions whose answer spans documents: how many of those documents the answer covers.

    `document_coverage` is the mean, over such questions, of the share of their expected documents
    covered (see `documents_covered`); `full_coverage` the share of such questions with all covered.

    >>> item = {"expected_documents": {"eu": ["fines"], "oecd": ["fair"]}, "answerable": True}
    >>> record = {"citations": [{"doc_id": "eu", "text": "Fines apply."}, {"doc_id": "oecd", "text": "Be open."}]}
    >>> coverage_figures([item], [record])
    {'document_coverage': 0.5, 'full_coverage': 0.0}
    """
    spanning = [(q, r) for q, r in zip(items, records) if q.get("answerable", True) and q.get("expected_documents")]
    shares = [len(documents_covered(q, r)) / len(q["expected_documents"]) for q, r in spanning]
    return {"document_coverage": _ratio(sum(shares), len(shares)), "full_coverage": _ratio(sum(s == 1 for s in shares), len(shares))}


def latency(records: Sequence[Record]) -> dict[str, dict[str, float | None]]:
    """p50/p95 milliseconds per stage."""
    return {stage: percentiles([r["timings_ms"][stage] for r in records]) for stage in ("retrieve", "answer", "total")}


BREAKDOWN_METRICS = ("hit@5", "mrr", "answer_accuracy", "refusal_recall", "false_refusal_rate", "document_coverage",
                     "page_accuracy")


def breakdown(items: Sequence[Item], records: Sequence[Record], groups: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
    """The main metrics per group; `groups` maps a question id to its groups (tags or documents)."""
    members: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        for group in groups.get(item["id"], ()):
            members.setdefault(group, []).append(index)
    table = {}
    for group, indexes in sorted(members.items()):
        figures = summarise([items[i] for i in indexes], [records[i] for i in indexes])
        table[group] = {"questions": len(indexes), **{m: figures[m] for m in BREAKDOWN_METRICS}}
    return table


def failures(items: Sequence[Item], records: Sequence[Record]) -> list[dict[str, Any]]:
    """The questions a run got wrong, with what was expected, retrieved and answered."""
    found = []
    for item, record in zip(items, records):
        kind = failure_kind(item, record)
        if kind:
            found.append({
                "id": item["id"], "question": item["question"], "kind": kind, "expected": item["evidence"],
                "retrieved": [{k: r[k] for k in ("rank", "doc_id", "section", "text")} for r in record["retrieved"][:3]],
                "answer": record["answer"],
            })
    return found


def failure_kind(item: Item, record: Record) -> str | None:
    """How a run got one question wrong, or None when it got it right: an unanswerable question
    must be refused; an answerable one needs its evidence in the top 5, no refusal, (when graded)
    an answer with an expected string and (when its answer spans documents) every expected
    document covered."""
    if not item.get("answerable", True):
        return None if record["refused"] else "answered unanswerable"
    rank = first_hit_rank(record, item["evidence"]) if item["evidence"] else 1
    if rank is None or rank > 5:
        return "missed evidence"
    if record["refused"]:
        return "false refusal"
    if item["must_include"] and not answer_correct(record, item["must_include"]):
        return "wrong answer"
    if len(documents_covered(item, record)) < len(item.get("expected_documents", {})):
        return "documents missed"
    return None
