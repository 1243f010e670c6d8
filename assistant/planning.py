"""Plan stage: what shape a question's answer takes and which documents are in scope, decided once.

Every later stage reads the plan instead of reading the question again: retrieval searches each
document in scope on its own when the answer spans documents (so a 600,000-character regulation
cannot crowd a 3,000-character concept note out of the passages), the answer stage composes by
shape, and the plan is part of the answer record, so an evaluator sees why an answer took its form.

The shapes:
    fact             one point, from the best passages ("What fines apply ...?")
    list             several items ("What are the principles ...?")
    yes-no           "Does the Act apply to ...?"
    definition       "How does the Act define 'deployer'?"
    briefing         what the documents say on a point, grouped by document
    which-documents  which documents raise a point, each with the sentence that does
    comparison       the documents the question names, side by side

The first four are composed alike, from the best sentences of the best passages (a definition's
defining sentence and the sentence stating an asked date or figure rank first); the shape says
how the question was read. Only the wording that frames a question as being about the documents
decides a spanning shape ("the documents", "these texts", "which of them", "compare", "what is said
about", two document names side by side: "How do the CPA note and the OECD Recommendation ..."); an open
"why" or "how" question that names no document is a briefing too, and the per-document evidence
decides how many documents it covers: often one.

    >>> make_plan("How do the OECD Recommendation and the AI Act differ on transparency?", {"oecd": "OECD", "eu": "AI Act"}).shape
    'comparison'
    >>> plan = make_plan("Which of these documents mention the digital divide?", {})
    >>> plan.shape, plan.topic
    ('which-documents', 'Which mention the digital divide?')
    >>> make_plan("What fines apply to prohibited practices?", {}).shape
    'fact'
    >>> make_plan("What is said about AI and the SDGs?", {}).shape  # by no one named: by the documents
    'briefing'
    >>> plan = make_plan("How do the CPA note and the OECD Recommendation see parliaments?", {"cpa": "CPA", "oecd": "OECD"},
    ...                  aliases=["CPA note", "OECD Recommendation"])
    >>> plan.shape, plan.topic
    ('comparison', 'parliaments?')
    >>> make_plan("How do the texts treat transparency?", {}).topic, make_plan("How do governments build AI capacity across the documents?", {}).topic
    ('transparency?', 'How do governments build AI capacity ?')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from assistant.questions import FOLLOWING, NAME, asked_kind
from assistant.retrieval import asked_definitions, named_documents, unnamed
from assistant.store import keyword_tokens

SHAPES = ("fact", "list", "yes-no", "definition", "briefing", "which-documents", "comparison")
SPANNING = ("briefing", "which-documents", "comparison")  # shapes answered from every document in scope
_DOCUMENTS = r"(?:documents?|texts?|sources?|materials?|instruments?|papers?|reports?|notes?)"
# Several of them: "what do the texts say" spans the documents, "the material their models were trained on" does not.
_SEVERAL_DOCUMENTS = r"(?:documents|texts|sources|materials|instruments|papers|reports|notes)"
_WHICH_DOCUMENTS = re.compile(
    rf"\b(?:which|what)\s+(?:of\s+(?:the|these|those|our)\s+)?{_DOCUMENTS}\b|\bwhere\b.*\b(?:mentioned|raised|discussed|addressed)\b"
    rf"|\b(?:do|does)\s+any\s+(?:of\s+(?:the|these)\s+)?{_DOCUMENTS}\b",
    re.IGNORECASE,
)
_SAID = r"\bwhat\s+(?:is|was|has\s+been)\s+(?:said|written|stated)\s+(?:about|on)\b"  # what the sources say, by no one named
_ACROSS = re.compile(
    rf"\b(?:the|these|those|all|our|both|each|several)\s+(?:\w+\s+)?{_SEVERAL_DOCUMENTS}\b|\b(?:each|every)\s+{_DOCUMENTS}\b|\bacross\b|\bbrief\s+me\b|\boverview\b|{_SAID}",
    re.IGNORECASE,
)
# What frames a question as being about the documents, which a passage that answers never says.
_FRAMING = re.compile(
    rf"\b(?:of\s+|in\s+|across\s+)?(?:the|these|those|all|our|any|both|each|several)\s+(?:\w+\s+)?{_DOCUMENTS}\b"
    rf"|(?<=\bwhich\s){_DOCUMENTS}\b|(?<=\bwhat\s){_DOCUMENTS}\b|\bbrief\s+me(?:\s+on)?\b|\bacross\b|\boverview\s+of\b|{_SAID}",
    re.IGNORECASE,
)
# Between two document names that stand together as what the question asks about: "the CPA concept
# note and the UN Foundation summary", "the OECD Recommendation or the AI Act".
_TOGETHER = re.compile(r"(?:\s+[\w'’-]+){0,4}\s+(?:and|or|versus|vs\.?)\s+(?:[\w'’-]+\s+){0,3}", re.IGNORECASE)
_COMPARING = re.compile(r"\b(?:compar\w*|differ\w*|contrast\w*|versus|vs\.?|similar\w*|common|alike|both|each|share)\b", re.IGNORECASE)
# "How do <documents> VERB <topic>?", the documents marked \0: the topic after the verb.
_STANCE = re.compile(r"^\s*how\s+(?:do|does|did)\s+(?:(?:the|these|those|both|each|and|or|,|\0)\s*)*\0\s*(?:(?:and|or|,|\0)\s*)*"
                     r"[a-z]+\s+(.+)", re.IGNORECASE | re.DOTALL)
_OPEN = re.compile(r"^\s*(?:why|how)\b", re.IGNORECASE)
_YES_NO = re.compile(r"^\s*(?:is|are|does|do|did|can|could|must|may|should|will|would|has|have|was|were)\b", re.IGNORECASE)
_LIST = re.compile(r"^\s*(?:what|which)\s+are\b|^\s*(?:list|name|enumerate)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Plan:
    """How one question will be answered. `documents` empty means every document in the filters."""

    question: str
    shape: str
    documents: tuple[str, ...] = ()
    named: tuple[str, ...] = ()  # the aliases the question named documents by, as written ("OECD"): no topic
    topic: str = ""  # the question without those names
    kind: str | None = None  # a date, a figure, a length of time, a venue or a name (see `questions.asked_kind`)
    reason: str = ""

    @property
    def spans_documents(self) -> bool:
        return self.shape in SPANNING

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def documents_named(question: str, entries: Iterable[Mapping[str, Any]],
                    holding: Callable[[str], set[str]]) -> tuple[dict[str, str], dict[str, str]]:
    """The documents a question names (id -> the name as written), and those of them named by an alias.

    A document is named by one of its catalog aliases ("According to the OECD, ..."), or by a
    capitalised word of its catalog entry that no other document's entry holds, nor any other
    document's text (`holding` gives the ids of the documents whose passages hold a keyword
    token): "the Commonwealth parliamentarians' session" names the CPA module, issued by the
    Commonwealth Parliamentary Association; "Global" names nothing. An alias only names the
    document; a catalog word ("the Korean ambassador") may also be what the question asks about.
    A follow-up ("Does the AI Act ask for anything similar? (following: ...)") is about the
    documents it names, if it names any, not about those of the question it follows.
    """
    entries = list(entries)
    asked, _, earlier = question.partition(FOLLOWING)
    if earlier:  # a follow-up names its own documents, or leans on those of the question before it
        own = documents_named(asked, entries, holding)
        return own if own[0] else documents_named(earlier, entries, holding)
    kinds = {e["doc_id"]: e.get("kind", "") for e in entries}
    aliased = {doc: _with_kind(question, name, kinds.get(doc, ""))
               for doc, name in named_documents(question, {e["doc_id"]: e.get("aliases", []) for e in entries}).items()}
    owners: dict[str, set[str]] = {}
    for entry in entries:
        catalog = " ".join([entry["title"], entry["issuer"], *entry.get("aliases", [])])
        for term in keyword_tokens(catalog.replace("-", " ")):  # "UNU" names the UNU-CPR note
            owners.setdefault(term, set()).add(entry["doc_id"])
    named = dict(aliased)
    for word in NAME.findall(question):
        for term in keyword_tokens(word):
            doc_ids = owners.get(term, set())
            if len(doc_ids) == 1 and holding(term) <= doc_ids:
                named.setdefault(next(iter(doc_ids)), word)
    return named, aliased


def _with_kind(question: str, name: str, kind: str) -> str:
    """The alias as written, with the words of the document's kind that follow it: they name the document too.

    "According to the UN Foundation meeting summary, ..." names one document; "summary" is no more
    the topic than "UN Foundation" is.

    >>> _with_kind("What does the UN Foundation meeting summary say?", "UN Foundation", "meeting summary")
    'UN Foundation meeting summary'
    >>> _with_kind("What does the OECD say about summary reports?", "OECD", "recommendation")
    'OECD'
    """
    kind_words = "|".join(re.escape(word) for word in kind.split())
    if not kind_words:
        return name
    found = re.search(rf"{re.escape(name)}(?:'s)?(?:\s+(?:{kind_words})\b)+", question, re.IGNORECASE)
    return found.group() if found else name


def make_plan(question: str, named: Mapping[str, str], shape: str | None = None, aliases: Sequence[str] = ()) -> Plan:
    """The plan for `question`, given the documents it names (id -> the name as written).

    `shape` overrides the shape read from the wording (the chat's "Compare documents" box); `aliases`
    are the names that only name a document, which the topic leaves out.
    """
    if shape is not None and shape not in SHAPES:
        raise ValueError(f"unknown answer shape {shape!r}; one of {', '.join(SHAPES)}")
    topic = unnamed(question, list(aliases))
    kind = asked_kind(topic)
    if shape:
        chosen, reason = shape, "asked for"
    elif _WHICH_DOCUMENTS.search(question):
        chosen, reason = "which-documents", "asks which documents raise the point"
    elif len(named) >= 2 and (_COMPARING.search(question) or _side_by_side(question, named.values())):
        chosen, reason = "comparison", f"names {len(named)} documents"
    elif _ACROSS.search(question) and len(named) != 1:
        chosen, reason = "briefing", "asks what the documents say"
    elif _OPEN.match(question) and not named and not kind and not asked_definitions(question):
        chosen, reason = "briefing", "an open question that names no document"
    elif asked_definitions(question):
        chosen, reason = "definition", "asks what a term means"
    elif _YES_NO.match(question):
        chosen, reason = "yes-no", "asks yes or no"
    elif _LIST.match(question):
        chosen, reason = "list", "asks for several items"
    else:
        chosen, reason = "fact", "asks for one point"
    if chosen in SPANNING:  # "which of these documents", "across the texts" frame the question: no topic
        topic = re.sub(r"\s+", " ", _FRAMING.sub(" ", topic)).strip()
        # "How do the CPA note and the UNU-CPR note *frame* the digital divide?": with the documents
        # as its subject, the verb asks how they speak of the topic ("frame", "treat", "see").
        stance = _STANCE.match(_FRAMING.sub(" \0 ", unnamed(question, list(aliases), " \0 ")))
        if stance:
            topic = re.sub(r"\s+", " ", stance.group(1).replace("\0", " ")).strip()
    return Plan(question, chosen, tuple(named), tuple(aliases), topic, kind, reason)


def _side_by_side(question: str, names: Iterable[str]) -> bool:
    """Whether two document names of the question stand together, joined by "and" or "or".

    >>> _side_by_side("How do the CPA note and the OECD Recommendation see parliaments?", ["CPA", "OECD"])
    True
    >>> _side_by_side("Which UNU-CPR panellist drafted the AI Act, and when was it adopted?", ["UNU-CPR", "AI Act"])
    False
    """
    spans = sorted(m.span() for name in set(names) for m in re.finditer(re.escape(name), question))
    return any(_TOGETHER.fullmatch(question[end:start]) for (_, end), (start, _) in pairwise(spans))
