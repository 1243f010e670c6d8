"""What leaves the chat: Markdown with footnotes, the audit record, and feedback lines.

All three start from the `ask --json` record, so what a diplomat pastes into a cable, what staff
file as an audit trail and what an evaluator turns into a test case are the same answer.

    >>> record = {"answer": "Fines reach EUR 35 000 000 [1].", "refused": False, "citations": [
    ...     {"n": 1, "title": "EU AI Act", "issuer": "EU", "date": "2024-07-12", "section": "Article 99 > 3",
    ...      "page": None, "text": "Fines of up to EUR 35 000 000 apply."}]}
    >>> print(answer_markdown(record))
    Fines reach EUR 35 000 000 [^1].
    <BLANKLINE>
    [^1]: *EU AI Act*, EU, 2024-07-12, Article 99 > 3. "Fines of up to EUR 35 000 000 apply."
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.sentences import split_sentences

_MARKER = re.compile(r"\[(\d+)\]")
_EXCERPT_CHARS = 300
_feedback_lock = threading.Lock()


def source_line(citation: dict[str, Any]) -> str:
    """'Title, issuer, date, section (page n)': how a citation is named everywhere."""
    page = f", page {citation['page']}" if citation.get("page") else ""
    return f"*{citation['title']}*, {citation['issuer']}, {citation['date']}, {citation['section'] or 'opening'}{page}"


def answer_markdown(record: dict[str, Any]) -> str:
    """The answer with `[n]` turned into Markdown footnotes, each written out with its passage."""
    body = _MARKER.sub(r"[^\1]", record["answer"])
    notes = []
    for citation in record["citations"]:
        excerpt = " ".join(citation["text"].split())
        if len(excerpt) > _EXCERPT_CHARS:
            excerpt = excerpt[:_EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"
        notes.append(f'[^{citation["n"]}]: {source_line(citation)}. "{excerpt}"')
    return body + ("\n\n" + "\n".join(notes) if notes else "")


def audit_record(record: dict[str, Any], asked: str, index_shape: dict[str, object]) -> dict[str, Any]:
    """The downloadable audit record: what was asked, what was searched and answered, and with what.

    `asked` is the question as typed; `record["question"]` is what was searched (the rewritten
    question of a follow-up).
    """
    return {
        "question": asked,
        "rewritten_question": record["question"] if record["question"] != asked else None,
        "answer": record["answer"],
        "refused": record["refused"],
        "citations": [
            {key: c[key] for key in ("n", "id", "doc_id", "title", "issuer", "date", "section", "page", "text", "score")}
            for c in record["citations"]
        ],
        "retrieved": [{key: r[key] for key in ("rank", "id", "doc_id", "section", "score")} for r in record["retrieved"]],
        "unsupported": record["unsupported"],
        "notices": record["notices"],
        "index_hash": record["index_hash"],
        "index_settings": index_shape,
        "models": record["models"],
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def feedback_entry(record: dict[str, Any], liked: bool, comment: str = "") -> dict[str, Any]:
    """A thumbs up or down as a line of the QA-set format (see evals/README.md), ready to review.

    A liked answer's cited sentences become the evidence and its answer the reference, so the line
    can be promoted to a test case as it is; a liked refusal marks the question unanswerable. A
    disliked answer keeps what was given, for a reviewer to write the expected evidence.
    """
    stamp = datetime.now(UTC)
    cited_sentences = [s for c in record["citations"] for s in split_sentences(c["text"])]
    # An extractive answer quotes sentences with a marker before the stop: match without the stop.
    quoted = [s for s in cited_sentences if s.rstrip(".!?;: ") in record["answer"]] or [c["text"] for c in record["citations"]]
    entry: dict[str, Any] = {
        "id": f"feedback-{stamp.strftime('%Y%m%dT%H%M%S%f')}",
        "question": record["question"],
        "evidence": quoted if liked and not record["refused"] else [],
        "must_include": [],
        "answerable": not (liked and record["refused"]),
        "tags": ["feedback", "liked" if liked else "disliked"],
        "verdict": "up" if liked else "down",
        "comment": comment.strip(),
        "answer_given": record["answer"],
        "cited_passages": [{"id": c["id"], "doc_id": c["doc_id"], "section": c["section"], "text": c["text"]}
                           for c in record["citations"]],
        "index_hash": record["index_hash"],
        "time": stamp.isoformat(timespec="seconds"),
    }
    if liked and not record["refused"]:
        entry["reference_answer"] = _MARKER.sub("", record["answer"]).replace("  ", " ").strip()
    return entry


def append_feedback(path: Path, entry: dict[str, Any]) -> None:
    """Append one feedback line; a lock keeps lines whole when many people click at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with _feedback_lock, open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
