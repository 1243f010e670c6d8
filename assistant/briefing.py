"""Answers that span documents: a briefing grouped by document, which documents raise a point, a comparison.

Each document in scope is searched on its own (see `Assistant.ask`), so a short concept note is not
crowded out by a long regulation; its best passages, their scored sentences and the evidence
measured on them make a `DocumentEvidence`. A document speaks to the point when the refusal
model's probability for its own evidence clears the document threshold, which calibration fits on
the dev split of the cross-document QA set. Its group quotes its best sentences, skipping any that
restates one already quoted, each cited and shown with the section it stands in; the documents
that say nothing on the point are named in one closing line. With an LLM configured, the model
writes a short synthesis of the quoted sentences above the groups (`synthesise`); each of its
sentences is checked against the passage it cites, as any LLM answer is, and one that fails is left out.

    >>> diverse([_Sentence(0, "Fines reach 7% of turnover.", 1.0), _Sentence(0, "Fines reach 7% of the turnover.", 0.9),
    ...          _Sentence(1, "Audits are yearly.", 0.8)], 3)
    ['Fines reach 7% of turnover.', 'Audits are yearly.']
    >>> diverse([_Sentence(0, "Fines reach 7%.", 1.0), _Sentence(0, "Fines are paid yearly.", 0.9),
    ...          _Sentence(1, "Audits are yearly.", 0.8)], 2)
    ['Fines reach 7%.', 'Audits are yearly.']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.llms import LLM, ChatMessage
from llama_index.core.schema import NodeWithScore

from assistant.answering import cite, format_sources
from assistant.evidence import Evidence
from assistant.prompts import CANNOT_ANSWER, SYNTHESIS_SYSTEM, SYNTHESIS_USER
from assistant.reranking import Candidate
from assistant.sentences import split_sentences
from assistant.store import keyword_tokens
from assistant.verification import MARKER, UNSUPPORTED_MARK, supports, verify

SENTENCES = {"briefing": 3, "which-documents": 1, "comparison": 2}  # quoted per document, by shape
RESTATEMENT = 0.5  # share of shared terms (Jaccard) above which a sentence restates one already quoted
MARGIN = 0.25  # a sentence scoring this far below its document's best is not quoted


@dataclass
class DocumentEvidence:
    """One document's answer to the question: its best passages, their sentences (best first), the evidence."""

    entry: dict[str, Any]  # the document's catalog entry, as the index manifest holds it
    passages: list[NodeWithScore]
    ranked: list[Candidate]
    evidence: Evidence


@dataclass
class _Sentence:  # the parts of a `Candidate` that `diverse` reads, for its doctest
    passage: int
    text: str
    match: float


def diverse(ranked: Sequence[Any], limit: int) -> list[str]:
    """The texts of up to `limit` of the best sentences (best first), none restating another (see `RESTATEMENT`).

    Sentences of passages not yet quoted come first: a second sentence of the same passage most
    often carries on its point, where another passage of the document makes another one.
    """
    eligible = [c for c in ranked if c.match >= ranked[0].match - MARGIN] if ranked else []
    chosen: dict[int, set[str]] = {}  # position in `eligible` -> the sentence's terms
    for only_new_passages in (True, False):
        for position, candidate in enumerate(eligible):
            if len(chosen) == limit:
                break
            if position in chosen or (only_new_passages and any(eligible[i].passage == candidate.passage for i in chosen)):
                continue
            terms = set(keyword_tokens(candidate.text))
            if any(candidate.text in eligible[i].text or eligible[i].text in candidate.text
                   or len(terms & seen) / max(len(terms | seen), 1) > RESTATEMENT for i, seen in chosen.items()):
                continue
            chosen[position] = terms
    return [eligible[i].text for i in sorted(chosen)]


def compose(shape: str, speaking: Sequence[DocumentEvidence]) -> tuple[list[dict[str, Any]], list[NodeWithScore]]:
    """The groups of an answer across documents, and the passages they cite ([n] is the n-th).

    Each group: `doc_id`, `title`, `issuer`, `date`, `probability` and `sentences`, each sentence
    with its `n`, its cited `text` (marked unsupported if its passage does not back it) and its
    `section`.
    """
    cited: list[NodeWithScore] = []
    groups = []
    for document in speaking:
        sentences = []
        by_text = {c.text: c for c in document.ranked}
        for text in diverse(document.ranked, SENTENCES[shape]):
            passage = document.passages[by_text[text].passage]
            ids = [node.node.node_id for node in cited]
            if passage.node.node_id not in ids:
                cited.append(passage)
                ids.append(passage.node.node_id)
            n = ids.index(passage.node.node_id) + 1
            quoted = cite(text, n)
            if not supports(text, passage.node.get_content()):
                quoted = f"{quoted} {UNSUPPORTED_MARK}"
            sentences.append({"n": n, "text": quoted, "section": passage.node.metadata.get("section", "")})
        entry = document.entry
        groups.append({"doc_id": entry["doc_id"], "title": entry["title"], "issuer": entry.get("issuer", ""),
                       "date": entry.get("date", ""), "probability": round(document.evidence.probability, 4),
                       "sentences": sentences})
    return groups, cited


def synthesise(
    llm: LLM, question: str, groups: Sequence[dict[str, Any]], cited: Sequence[NodeWithScore],
    on_token: Callable[[str], None] | None = None,
) -> tuple[str, list[str]]:
    """The model's synthesis of the groups' quoted sentences, and the sentences of it left out as unsupported.

    The model is shown only the sentences the groups quote, numbered as the answer cites them and
    fenced as data, so a synthesis says nothing the groups do not back. Each of its sentences must be
    backed by the passage its `[n]` cites (`verification.verify`); one that is not is left out, since
    the groups beneath already say everything a checked sentence could. A model that declines gives
    no synthesis.
    """
    shown: dict[int, list[str]] = {}
    for group in groups:
        for sentence in group["sentences"]:
            if UNSUPPORTED_MARK not in sentence["text"]:
                shown.setdefault(sentence["n"] - 1, []).append(MARKER.sub("", sentence["text"]))
    messages = [
        ChatMessage(role="system", content=SYNTHESIS_SYSTEM),
        ChatMessage(role="user", content=SYNTHESIS_USER.format(
            sources=format_sources(cited, {i: " ".join(texts) for i, texts in shown.items()}), question=question)),
    ]
    text = ""
    for chunk in llm.stream_chat(messages):
        text += chunk.delta or ""
        if on_token and chunk.delta:
            on_token(chunk.delta)
    if CANNOT_ANSWER.lower() in text.lower():
        return "", []
    checked = verify(text.strip(), {i + 1: cited[i].node.get_content() for i in shown})
    kept = [s for s in split_sentences(checked.text) if UNSUPPORTED_MARK not in s]
    # `verify` numbers markers by first use; the synthesis keeps the answer's own numbers.
    return MARKER.sub(lambda m: f" [{checked.cited[int(m.group(1)) - 1]}]", " ".join(kept)).strip(), checked.unsupported


def answer_text(shape: str, groups: Sequence[dict[str, Any]], silent: Sequence[str], synthesis: str = "") -> str:
    """The answer as Markdown: the synthesis if any, a heading per document, its cited sentences with
    their sections, then the silent ones.

    >>> groups = [{"title": "OECD", "issuer": "OECD Council", "date": "2019", "sentences": [{"text": "Be fair [1].", "section": "1.2"}]}]
    >>> print(answer_text("briefing", groups, ["EU AI Act"]))
    **OECD** (OECD Council, 2019)
    - Be fair [1]. *(1.2)*
    <BLANKLINE>
    Nothing on this point in: EU AI Act.
    """
    lines = [synthesis, ""] if synthesis else []
    for group in groups:
        issued = ", ".join(str(group[k]) for k in ("issuer", "date") if group.get(k) and group[k] != "unknown")
        lines.append(f"**{group['title']}**" + (f" ({issued})" if issued else ""))
        lines += [f"- {s['text']}" + (f" *({s['section']})*" if s["section"] else "") for s in group["sentences"]]
        lines.append("")
    if silent:
        lines.append(f"Nothing on this point in: {'; '.join(silent)}.")
    return "\n".join(lines).strip()
