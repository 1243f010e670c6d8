"""Rerank stage: answer sentences scored for the question, and the fused passages reordered by their best one.

Fusion ranks a passage by its words and its meaning as a whole. A 256-word-piece passage that
answers in one sentence and spends the rest on something else sits below a passage that is about
the question's topic throughout and answers nothing: a question about one speaker's university
fuses passages on research across academic institutions above the speaker list that holds his
line. Every sentence of the passages is scored for the question (`score_sentences`: meaning,
shared terms, the kind of answer asked for, a field label the question names); the best
sentence's score is a second opinion on each passage, and the scored sentences are what the
evidence and the answer stages read.

A passage's new score is its fused score, divided by the best fused score so that both parts
weigh alike, plus `weight` times its best sentence's score. The weight (`retrieval.rerank_weight`)
and the sentence boosts below were chosen by earlier sessions on the whole question set, before
it had a dev and a test split; the best sentence's score alone ranks worse than with the fused
score beside it: each part corrects the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import Field
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle

from assistant.chunking import BRACKETED_LABEL, defined_terms
from assistant.embedding import SentenceTransformerEmbedding
from assistant.evidence import PARAPHRASE_SIMILARITY, closeness_in
from assistant.questions import asked_kind, question_terms, said_terms, states_kind
from assistant.retrieval import asked_definitions, referenced_parts, unnamed
from assistant.sentences import addresses_assistant, sentence_spans
from assistant.store import keyword_tokens

_LEADING_NUMBER = re.compile(r"^[-*•➤\s]*(?:\(?\d{1,3}[.)]\s+)?")
# A sentence that opens by pointing back ("These systems", "It cannot", "This reduces") names its
# subject only in a sentence before it.
_ANAPHOR = re.compile(r"(?:This|These|Those|That|It|Its|They|Their|Such|Both)\b(?! (?:Regulation|Article|Recommendation)\b)")
# A field label an agenda or an event notice opens a line with: "[Moderator]", "Venue:".
_LABEL = re.compile(rf"^(?:{BRACKETED_LABEL}|([A-Z][A-Za-z &/-]{{1,40}}):)\s*(.*)", re.DOTALL)
# How far a sentence whose field label the question names moves up (see `field_label`); so does a
# sentence of the article or annex the question cites ("What does Article 4 require?").
LABEL_BOOST = 0.15
_MAX_CHAIN = 1000  # characters: a sentence read with the sentences it points back to stays quotable
# How far a sentence of the asked-for kind (a date for "when") moves up the ranking. Most sentences
# of a meeting document carry some capitalised word, so stating a name ranks nothing; but when none
# of the best sentences names anyone, "Which countries have joined?" is not answered.
KIND_BOOST = {"quantity": 0.15, "duration": 0.15, "date": 0.15, "place": 0.15, "name": 0.0, "definition": 0.15}
# Further up when the sentence also says what the question says of it: "(c) Article 6(1) and the
# corresponding obligations ... shall apply from 2 August 2027" for "When do Article 6(1) and the
# corresponding obligations ... start to apply?", above the dates of other provisions. (A name is
# already read so.)
SAID_KIND_BOOST = {"quantity": 0.3, "duration": 0.3, "date": 0.3, "place": 0.3}


PASSAGE_ORDER = 0.01  # how much a sentence's score drops per rank of its passage: ties go to the better passage


@dataclass
class Candidate:
    passage: int  # index into the nodes
    text: str
    score: float  # `match` less `PASSAGE_ORDER` per rank of its passage
    similarity: float
    states_asked: bool = False  # states what the question asks for (a date for "when"), see `asked_kind`

    @property
    def match(self) -> float:
        """How well the sentence answers the question, wherever its passage ranks."""
        return self.score + PASSAGE_ORDER * self.passage


def _with_list(intro: str, following: Sequence[str], max_chars: int = 600) -> str:
    """A sentence ending in a colon, joined with the items after it while they fit in `max_chars`.

    >>> _with_list("Providers shall:", ["(a) test models;", "(b) report incidents;", "Next article."], 40)
    'Providers shall: (a) test models;'
    """
    text = intro
    for item in following:
        if len(text) + len(item) + 1 > max_chars:
            break
        text = f"{text} {item}"
    return text


def field_label(sentence: str) -> set[str]:
    """The terms of the field label a sentence opens with, as an agenda or an event notice writes them.

    "[Moderator] Yu Ping", "Venue: UNU-CPR, 885 2nd Avenue", "With the support of: Permanent
    Mission of Japan" answer "Who moderates?", "Where is the venue?", "Who supports the event?"
    through their label alone. A definition ("AI system: An AI system is ...") repeats its label
    and is no field.

    >>> sorted(field_label("[Moderator] Yu Ping: Head of Partnerships")), field_label("AI system: An AI system is a system.")
    (['moder'], set())
    """
    found = _LABEL.match(sentence)
    if not found:
        return set()
    label = set(keyword_tokens(found.group(1) or found.group(2)))
    return set() if label & set(keyword_tokens(found.group(3))) else label


def answer_sentences(text: str, metadata: Mapping[str, Any]) -> list[str]:
    """The sentences of a passage that can stand in an answer, as the answer stage scores them.

    A line of fewer than four words is read with the line after it ("09:30 – 11:00" then the agenda
    item), so that a time or a label is neither dropped nor quoted alone, but not across the end of
    its paragraph (a meeting's dates on the line under its venue), and not when it is the
    document's title or the passage's heading (`metadata`), which name a topic and are never
    quoted as part of a sentence; a sentence that opens by pointing back ("It", "These systems") is
    read with the sentence before it, and so on back to the sentence that names what they point to.

    >>> answer_sentences("# Fines\\nFines reach 7% of turnover. It shall:\\n(a) pay; (b) report.", {"title": "T"})
    ['Fines reach 7% of turnover.', 'Fines reach 7% of turnover. It shall: (a) pay; (b) report.', '(a) pay; (b) report.']
    >>> answer_sentences("Data is shared on trust. That trust is earned. It cannot be signed.", {"title": "T"})[-1]
    'Data is shared on trust. That trust is earned. It cannot be signed.'
    >>> answer_sentences("09:30 – 11:00\\nWelcome and framing by the chair\\n11:00 – 11:30", {"title": "T"})
    ['09:30 – 11:00 Welcome and framing by the chair']
    >>> answer_sentences("Accra International Conference Centre\\n17-18 March 2026\\n\\nConvened by the Ministry.", {"title": "T"})
    ['Accra International Conference Centre', '17-18 March 2026', 'Convened by the Ministry.']
    >>> answer_sentences("1.3. Transparency\\nActors should disclose their systems.", {"title": "T", "heading": "1.3. Transparency"})
    ['Actors should disclose their systems.']
    """
    spans = sentence_spans(text)
    raw = [text[start:end] for start, end in spans]
    # Whether a paragraph ends after each sentence (a blank line follows it)
    closes = [bool(re.search(r"\n\s*\n", text[end:after])) for (_, end), (after, _) in pairwise(spans)] + [False]
    sentences = [_LEADING_NUMBER.sub("", s.replace("**", "")).strip() for s in raw]
    names = {_unnumbered(metadata.get("title", "")), _unnumbered(metadata.get("heading") or "")}
    kept: list[str] = []
    previous = (-1, "")  # the last sentence kept, and its position
    fragment = ""  # a line too short to stand alone: an agenda's time, a label
    for position, clean in enumerate(sentences):
        # A Markdown heading names a topic, a rule line (---) nothing, and a planted instruction
        # ("Ignore all previous instructions ...") speaks to the assistant: none of them answers.
        if raw[position].startswith("#") or not clean or addresses_assistant(clean):
            fragment = ""
            continue
        clean = f"{fragment} {clean}".strip()
        if _unnumbered(clean) in names:  # the title or the heading line, its number ("1.3.") cut apart or not
            fragment = ""
            continue
        if clean.endswith(":"):  # "... shall:" says nothing without the list it introduces
            clean = _with_list(clean, sentences[position + 1 :])
        fragment = clean if len(clean.split()) < 4 and not (closes[position] and clean[-1].isalnum()) else ""
        if fragment:
            continue
        pointing_back = _ANAPHOR.match(clean) and previous[0] == position - 1
        if pointing_back and len(previous[1]) + len(clean) < _MAX_CHAIN:
            clean = f"{previous[1]} {clean}"  # "These systems enable ..." says nothing without what they are
        previous = (position, clean)
        kept.append(clean)
    return kept


def _unnumbered(line: str) -> str:
    """A title or heading line without its section number: "1.3. Transparency" -> "Transparency"."""
    return re.sub(r"^\s*\(?\d{1,3}(?:\.\d{1,3})*[.)]?\s+", "", line).strip()


def in_context(sentence: str, metadata: Mapping[str, Any]) -> str:
    """The sentence under its heading (else its title), one of the two readings the answer stage embeds.

    "5 February 2026 // 8:30 am" means nothing alone; under the heading "Multilateral AI Diplomacy:
    Setting the Stage for Success in 2026" it is that meeting's date, and it ranks for a question
    about the meeting's date.

    >>> in_context("Fines apply.", {"title": "EU AI Act", "heading": "Article 99: Penalties"})
    'Article 99: Penalties: Fines apply.'
    """
    return f"{metadata.get('heading') or metadata.get('title', '')}: {sentence}"


def score_sentences(question: str, nodes: Sequence[NodeWithScore], embed_model: SentenceTransformerEmbedding,
                    names: Sequence[str] = ()) -> list[Candidate]:
    """Every sentence of the passages scored for the question, best first: meaning first, shared terms second.

    `names` are the document names the question used: the sentences are scored for the question
    without them (see `retrieval.unnamed`), since every passage of the named document is about it.
    The names of several documents stay: one may be what the question asks of another ("Who at
    the UNU-CPR event led the drafting of the EU AI Act?").
    """
    candidates = [
        (index, sentence)
        for index, node in enumerate(nodes)
        for sentence in answer_sentences(node.node.get_content(), node.node.metadata)
    ]
    if not candidates:
        return []
    question = unnamed(question, names) if len(names) == 1 else question
    terms = question_terms(question)
    # Each sentence is read twice, under its heading and alone, and the closer reading counts. Under a
    # long title, a short line ("With the support of: Permanent Mission of Japan to the United Nations")
    # is mostly title once embedded: 0.23 from "Which country's Permanent Mission supports the event?".
    readings = [in_context(sentence, nodes[index].node.metadata) for index, sentence in candidates]
    readings += [sentence for _, sentence in candidates]
    vectors = embed_model.vectors([question] + readings)
    both = vectors[1:] @ vectors[0]
    similarities = np.maximum(both[: len(candidates)], both[len(candidates) :])
    kind = asked_kind(question)
    said = said_terms(question)
    asked_terms = set(asked_definitions(question))  # "How does the Act define X?" is answered by "'X' means"
    headings = [set(keyword_tokens(n.node.metadata.get("heading") or "")) for n in nodes]
    cited = set(referenced_parts(question))
    # A question's word said in other words counts as said: "workers" for "employees" (see `evidence.closeness`).
    close = closeness_in(question, terms, [text for _, text in candidates], embed_model)
    ranked = []
    for (index, text), similarity in zip(candidates, similarities):
        # A term in the sentence's heading counts half: "The Board shall be composed of one
        # representative per Member State" answers "How is the European AI Board composed?" under
        # the heading that names the Board, which the sentence itself calls "the Board".
        own = terms & set(keyword_tokens(text))
        said_otherwise = sum(c for term, c in close(text).items() if term not in own and c >= PARAPHRASE_SIMILARITY)
        overlap = (len(own) + said_otherwise + 0.5 * len((terms & headings[index]) - own)) / max(len(terms), 1)
        defines = bool(asked_terms & set(defined_terms(text)))
        states = defines or states_kind(text, kind, question)
        boost = KIND_BOOST["definition"] if defines else KIND_BOOST[kind] if states and kind else 0.0
        if states and kind in SAID_KIND_BOOST and said & set(keyword_tokens(text)):
            boost += SAID_KIND_BOOST[kind]
        if terms & field_label(text) or nodes[index].node.metadata.get("part") in cited:
            boost += LABEL_BOOST
        score = float(similarity) + 0.3 * overlap + boost - PASSAGE_ORDER * index
        ranked.append(Candidate(index, text, score, float(similarity), states))
    ranked.sort(key=lambda c: -c.score)
    return ranked


def rerank(fused: Sequence[float], best_sentence: Sequence[float], weight: float) -> list[tuple[int, float]]:
    """(passage index, new score) pairs, best first: fused score scaled to the best one, plus `weight` x best sentence.

    >>> [i for i, _ in rerank([0.4, 0.3, 0.2], [0.5, 0.9, 0.4], weight=1.0)]
    [1, 0, 2]
    >>> [i for i, _ in rerank([0.4, 0.3, 0.2], [0.5, 0.9, 0.4], weight=0.0)]
    [0, 1, 2]
    """
    top = max(fused, default=0.0) or 1.0
    combined = [(i, score / top + weight * best) for i, (score, best) in enumerate(zip(fused, best_sentence))]
    return sorted(combined, key=lambda pair: (-pair[1], pair[0]))


class SentenceRerank(BaseNodePostprocessor):
    """A LlamaIndex node postprocessor: the `top_n` best passages by fused score and best sentence (see `rerank`)."""

    embed_model: SentenceTransformerEmbedding
    weight: float = Field(1.5, ge=0.0)
    top_n: int = Field(10, ge=1)
    names: tuple[str, ...] = ()  # the document names the question used: they name no topic (see `retrieval.unnamed`)

    @classmethod
    def class_name(cls) -> str:
        return "SentenceRerank"

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None or not self.weight or len(nodes) < 2:
            return nodes[: self.top_n]
        best = [0.0] * len(nodes)
        for candidate in score_sentences(query_bundle.query_str, nodes, self.embed_model, self.names):
            best[candidate.passage] = max(best[candidate.passage], candidate.match)
        fused = [float(node.score or 0.0) for node in nodes]
        return [NodeWithScore(node=nodes[i].node, score=score) for i, score in rerank(fused, best, self.weight)[: self.top_n]]
