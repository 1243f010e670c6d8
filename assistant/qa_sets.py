"""QA sets: the project's JSONL format, validated line by line, and RAGAS-style sets in and out.

One object per line (see evals/README.md): `id`, `question`, `evidence` (verbatim quotes a correct
retrieval must surface), `must_include` (strings of which one must appear in a correct answer),
optional `reference_answer`, `answerable` (default true), `tags`, `split` (`dev` or `test`),
`paraphrase_of` (the id of the question this one rewords), `history` (the earlier questions of a
chat, for a follow-up), `expected_documents` (document id -> quotes, for a question whose answer
spans documents) and `expected_pages` (document id -> the pages of a paged document, a PDF, where
the evidence stands). Other keys are kept (the chat's feedback lines carry a verdict and a comment), so
a reviewed feedback line is a test case.

Evaluators who keep RAGAS sets use them as they are: `user_input`, `reference` and
`reference_contexts` (JSONL or CSV) are read as question, reference answer and evidence; and every
run is also written as a RAGAS `EvaluationDataset` (`user_input`, `retrieved_contexts`,
`response`, `reference`) for RAGAS, DeepEval or TruLens to score.

    >>> parse_qa_lines(['{"id": "q1", "question": "Who?", "evidence": ["X"], "must_include": ["X"]}'])[0]["answerable"]
    True
    >>> parse_qa_lines(['{"id": "q1", "question": 3}', 'not json'])
    Traceback (most recent call last):
    ...
    assistant.qa_sets.QASetError: line 1: 'question' must be a non-empty string; line 1: missing field 'evidence'; line 1: missing field 'must_include'; line 2: not valid JSON (Expecting value: line 1 column 1 (char 0))
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class QASetError(ValueError):
    """A QA set that cannot be used; `errors` lists every problem with its line number."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _page_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(p) is int and p >= 1 for p in value)


SPLITS = ("dev", "test")
_CHECKS: dict[str, tuple[bool, Any, str]] = {
    # field: (required, check, what it must be)
    "id": (True, lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
    "question": (True, lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
    "evidence": (True, _string_list, "a list of strings"),
    "must_include": (True, _string_list, "a list of strings"),
    "reference_answer": (False, lambda v: isinstance(v, str), "a string"),
    "answerable": (False, lambda v: isinstance(v, bool), "true or false"),
    "tags": (False, _string_list, "a list of strings"),
    "split": (False, lambda v: v in SPLITS, "'dev' or 'test'"),
    "paraphrase_of": (False, lambda v: isinstance(v, str) and v.strip(), "a question id"),
    "history": (False, _string_list, "a list of strings"),
    "expected_documents": (False, lambda v: isinstance(v, dict) and all(_string_list(q) for q in v.values()),
                           "an object of document id -> list of quotes"),
    "expected_pages": (False, lambda v: isinstance(v, dict) and v and all(_page_list(p) for p in v.values()),
                       "an object of document id -> list of page numbers (from 1)"),
}



def validate_item(item: Any) -> list[str]:
    """The problems of one QA object (without line numbers); empty when it is valid."""
    if not isinstance(item, dict):
        return ["not a JSON object"]
    problems = []
    for name, (required, check, wanted) in _CHECKS.items():
        if name not in item:
            if required:
                problems.append(f"missing field {name!r}")
        elif not check(item[name]):
            problems.append(f"{name!r} must be {wanted}")
    return problems


def parse_qa_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Validated items of a JSONL QA set, with defaults filled in; raises `QASetError`."""
    items: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            errors.append(f"line {number}: not valid JSON ({exc})")
            continue
        problems = validate_item(item)
        errors += [f"line {number}: {p}" for p in problems]
        if problems:
            continue
        if item["id"] in seen:
            errors.append(f"line {number}: id {item['id']!r} already used on line {seen[item['id']]}")
        seen[item["id"]] = number
        items.append({"answerable": True, "tags": [], **item})
    errors += [f"line {seen[item['id']]}: paraphrase_of {item['paraphrase_of']!r} is no question of the set"
               for item in items if item.get("paraphrase_of", "") and item["paraphrase_of"] not in seen]
    if errors:
        raise QASetError(errors)
    if not items:
        raise QASetError(["the set has no questions"])
    return items


def assign_splits(items: list[dict[str, Any]], test_share: float = 0.3) -> list[dict[str, Any]]:
    """The items, each with a `split`: one it had is kept, a rewording takes its original's.

    The rest are sampled systematically from their list sorted by stratum (the first two tags:
    the document or shape, then the kind of question) and by a hash of the id, so every stratum
    sends about `test_share` of its questions to the test split, and the split of a question never
    depends on the order of the file or on the questions added after it was split.

    >>> items = [{"id": f"q{i}", "tags": ["doc", "date"]} for i in range(10)] + [{"id": "q0-p1", "paraphrase_of": "q0"}]
    >>> split = {item["id"]: item["split"] for item in assign_splits(items)}
    >>> sorted(split.values()).count("test"), split["q0-p1"] == split["q0"]
    (3, True)
    """
    def order(item: dict[str, Any]) -> tuple[list[str], str]:
        return item.get("tags", [])[:2], hashlib.sha1(item["id"].encode()).hexdigest()

    fresh = sorted((i for i in items if "split" not in i and not i.get("paraphrase_of")), key=order)
    chosen = {item["id"]: "test" if int((n + 1) * test_share) > int(n * test_share) else "dev"
              for n, item in enumerate(fresh)}
    chosen.update({item["id"]: item["split"] for item in items if "split" in item})
    return [{**item, "split": chosen.get(item["id"]) or chosen[item["paraphrase_of"]]} for item in items]


def ragas_item(row: dict[str, Any], number: int) -> dict[str, Any]:
    """A RAGAS row (`user_input`, `reference`, `reference_contexts`) as a QA item."""
    contexts = row.get("reference_contexts") or []
    if isinstance(contexts, str):  # a CSV cell holds the list as JSON or as a Python literal
        try:
            contexts = json.loads(contexts)
        except ValueError:
            contexts = ast.literal_eval(contexts) if contexts.strip().startswith("[") else [contexts]
    return {"id": str(row.get("id") or f"ragas-{number:04d}"), "question": row.get("user_input"),
            "reference_answer": row.get("reference") or "", "evidence": contexts, "must_include": [],
            "tags": ["ragas"]}


def _ragas_line(line: str, number: int) -> str:
    """A RAGAS JSONL line in our format; a broken line is passed on for `parse_qa_lines` to report."""
    try:
        row = json.loads(line)
        return json.dumps(ragas_item(row, number)) if isinstance(row, dict) else line
    except (ValueError, SyntaxError):
        return line


def read_qa_set(path: Path) -> list[dict[str, Any]]:
    """A QA set from our JSONL, a RAGAS JSONL or a RAGAS CSV, validated; raises `QASetError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QASetError([f"{path} cannot be read ({exc})"]) from exc
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or "user_input" not in rows[0]:
            raise QASetError([f"{path}: a CSV set needs a header with user_input, reference, reference_contexts"])
        lines = []
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            try:
                lines.append(json.dumps(ragas_item(row, number)))
            except (ValueError, SyntaxError) as exc:
                raise QASetError([f"line {number}: reference_contexts is not a list ({exc})"]) from exc
        return parse_qa_lines(lines)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if '"user_input"' in first:
        return parse_qa_lines(_ragas_line(line, n) for n, line in enumerate(text.splitlines(), start=1))
    return parse_qa_lines(text.splitlines())


def ragas_rows(items: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A run as a RAGAS `EvaluationDataset` (single-turn samples), one dict per question."""
    return [
        {
            "user_input": item["question"],
            "retrieved_contexts": [r["text"] for r in record["retrieved"]],
            "response": record["answer"],
            "reference": item.get("reference_answer") or "",
        }
        for item, record in zip(items, records)
    ]


REVIEW_NOTE = ("Draft from chat feedback: write the evidence quotes and must_include strings, or set "
               "answerable to false if the documents do not answer it; then delete this note.")


def feedback_drafts(lines: Iterable[str], include_liked: bool = False) -> list[dict[str, Any]]:
    """The chat's feedback lines as draft QA items for review, thumbs-down first-class.

    A disliked answer becomes an item with empty evidence and a review note (the reviewer knows
    what the right passage is; the assistant did not). A liked one is already a complete item and is
    kept only with `include_liked`. A question asked twice gives one draft, from its latest line.

    >>> line = '{"id": "feedback-1", "question": "Who?", "verdict": "down", "comment": "wrong", "answer_given": "X"}'
    >>> feedback_drafts([line])[0]["tags"], feedback_drafts([line])[0]["comment"]
    (['draft', 'from-feedback', 'disliked'], 'wrong')
    """
    drafts: dict[str, dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        liked = entry.get("verdict") == "up"
        if liked and not include_liked:
            continue
        draft = {
            "id": f"draft-{entry['id']}", "question": entry["question"],
            "evidence": entry.get("evidence", []) if liked else [], "must_include": [],
            "answerable": entry.get("answerable", True) if liked else True,
            "tags": ["draft", "from-feedback", "liked" if liked else "disliked"],
            "reference_answer": entry.get("reference_answer", ""),
            "comment": entry.get("comment", ""), "answer_given": entry.get("answer_given", ""),
        }
        if not liked:
            draft["review"] = REVIEW_NOTE
        drafts[entry["question"].strip().lower()] = draft
    return list(drafts.values())
