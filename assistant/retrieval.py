"""Retrieve stage: dense (Chroma) and keyword (BM25) search fused by reciprocal rank, with filters.

Dense search finds paraphrases; BM25 finds names, numbers and article references that a small
embedding model blurs; a question that cites an article or annex also gets that part's own
passages ranked. Reciprocal-rank fusion needs no score calibration between the two.

    >>> fuse([["a", "b"], ["b", "c"]], k=60)[0][0]
    'b'
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from assistant.catalog import date_key
from assistant.embedding import SentenceTransformerEmbedding
from assistant.questions import asked_kind, passage_states_kind
from assistant.settings import RetrievalSettings
from assistant.store import ChunkStore, StoredChunk


@dataclass(frozen=True)
class Filters:
    """Metadata filters: any of the listed documents, issuers and kinds, within a date range.

    >>> Filters(kinds=("regulation",), date_from="2024").where()
    {'$and': [{'kind': {'$in': ['regulation']}}, {'date_key': {'$gte': 20240101}}]}
    """

    doc_ids: tuple[str, ...] = ()
    issuers: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""
    parts: tuple[str, ...] = ()  # top-level sections such as `Article 5` or `ANNEX III`
    defines: tuple[str, ...] = ()  # passages that define one of these terms (dense search only)
    names: tuple[str, ...] = ()  # the document names the question used; `doc_ids` enforces them (see `unnamed`)

    def _clauses(self) -> list[tuple[str, str, Any]]:
        clauses: list[tuple[str, str, Any]] = []
        fields = (("doc_id", self.doc_ids), ("issuer", self.issuers), ("kind", self.kinds), ("part", self.parts))
        for key, values in fields:
            if values:
                clauses.append((key, "$in", list(values)))
        if self.date_from:
            clauses.append(("date_key", "$gte", date_key(self.date_from)))
        if self.date_to:
            clauses.append(("date_key", "$lte", _end_key(self.date_to)))
        if self.defines:
            clauses.append(("defines", "$contains", list(self.defines)))
        return clauses

    def where(self) -> dict[str, Any] | None:
        """The filters as a Chroma `where` clause.

        >>> Filters(defines=("deployer", "ai system")).where()
        {'$or': [{'defines': {'$contains': 'deployer'}}, {'defines': {'$contains': 'ai system'}}]}
        """
        clauses = [_where_clause(key, op, value) for key, op, value in self._clauses()]
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def select(self, columns: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """The same filters over the keyword index's columns: which rows pass, or None for no filter."""
        clauses = self._clauses()
        if not clauses:
            return None
        keep = np.ones(len(columns[clauses[0][0]]), dtype=bool)
        for key, op, value in clauses:
            column = columns[key]
            if op == "$in":
                keep &= np.isin(column, value)
            elif op == "$gte":
                keep &= column >= value
            else:
                keep &= column <= value
        return keep

    def describe(self) -> str:
        parts = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, _, v in self._clauses()]
        return "; ".join(parts)


def _where_clause(key: str, op: str, value: Any) -> dict[str, Any]:
    """One Chroma condition; `$contains` tests one value, so several become alternatives."""
    if op != "$contains":
        return {key: {op: value}}
    alternatives = [{key: {op: item}} for item in value]
    return alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}


_PART_REFERENCE = re.compile(r"\b(Article|Annex)\s+(\d+[a-z]?|[IVXLC]+)\b", re.IGNORECASE)


def referenced_parts(question: str) -> tuple[str, ...]:
    """The articles and annexes a question cites, spelt as chunk `part`s.

    >>> referenced_parts("How does Article 3 define it, and what does Annex iii list? See Article 6(1).")
    ('Article 3', 'ANNEX III', 'Article 6')
    """
    parts = [
        f"Article {number}" if kind.lower() == "article" else f"ANNEX {number.upper()}"
        for kind, number in _PART_REFERENCE.findall(question)
    ]
    return tuple(dict.fromkeys(parts))


_RECITAL = re.compile(r"^(?:Whereas|Recitals?|Preamble)\b", re.IGNORECASE)  # a chunk's section
_ASKS_RECITALS = re.compile(r"\b(?:preamble|recitals?|whereas)\b", re.IGNORECASE)
_WEIGHED_KINDS = ("date", "duration", "quantity", "place")  # kinds of answer `passage_factors` weighs


def reweigh(fused: list[tuple[str, float]], factors: Mapping[str, float]) -> list[tuple[str, float]]:
    """The fused ranking with each passage's score times its factor (1 when it has none), re-sorted.

    >>> reweigh([("r", 0.2), ("a", 0.15)], {"r": 0.5})
    [('a', 0.15), ('r', 0.1)]
    """
    weighed = [(i, s * factors.get(i, 1.0)) for i, s in fused]
    return sorted(weighed, key=lambda pair: (-pair[1], pair[0]))


def passage_factors(question: str, chunks: Mapping[str, StoredChunk], settings: RetrievalSettings) -> dict[str, float]:
    """Factors on fused scores: recitals down, passages stating the kind of answer asked for up.

    A regulation's recitals restate its articles in looser words, so they match questions as
    well as the articles do and, being many, crowd them out. The article is also the passage a
    diplomat must cite: it states the rule, the recital the reasons for it.

    "From when do the obligations for general-purpose AI models apply?" shares its words with
    hundreds of passages on what applies to whom; the one that answers it states a date. A
    passage with a sentence that states the date, figure or venue a question asks for, beside a
    word of what the question says of it (`passage_states_kind`), ranks up by `kind_weight`. A
    name is not weighed: most passages name someone. (Both weights were chosen by earlier
    sessions on the whole question set, before it had a dev and a test split.)

    >>> chunk = lambda section, text: StoredChunk(id="", text=text, metadata={"section": section}, score=0.0)
    >>> chunks = {"r": chunk("Whereas Clauses > (12)", "Bans apply."), "a": chunk("Article 113", "It applies from 2 August 2026.")}
    >>> passage_factors("When do the bans apply?", chunks, RetrievalSettings())
    {'r': 0.7, 'a': 1.5}
    """
    factors = dict.fromkeys(chunks, 1.0)
    if not _ASKS_RECITALS.search(question):
        for i, chunk in chunks.items():
            if _RECITAL.match(chunk.metadata.get("section", "")):
                factors[i] *= settings.recital_weight
    kind = asked_kind(question)
    if kind in _WEIGHED_KINDS:
        for i, chunk in chunks.items():
            if passage_states_kind(chunk.text, kind, question):
                factors[i] *= settings.kind_weight
    return factors


_QUOTED = re.compile(r"(?<!\w)[‘'\"“]([^’'\"”]{2,60})[’'\"”](?!\w)")
_ASKS_MEANING = re.compile(r"\bdefin\w*|\bmean(?:s|t|ing)?\b", re.IGNORECASE)
_ASKS_WHAT = re.compile(r"\b(?:who|what) (?:is|are|counts? as)\b", re.IGNORECASE)


def asked_definitions(question: str) -> tuple[str, ...]:
    """The terms whose definition a question asks for, lower-cased, as chunks record them (`defines`).

    A quoted term in a question that asks what something is or means; or, for "define" and
    "meaning", every phrase of up to four words: only a defined one will match.

    >>> asked_definitions("Who is a 'deployer' under the Act's rules?"), asked_definitions("Is 'whichever is higher' fair?")
    (('deployer',), ())
    >>> "ai actors" in asked_definitions("How does the OECD define AI actors?")
    True
    """
    quoted = _QUOTED.findall(question)
    if quoted and (_ASKS_MEANING.search(question) or _ASKS_WHAT.search(question)):
        return tuple(dict.fromkeys(term.lower() for term in quoted))
    if not _ASKS_MEANING.search(question):
        return ()
    words = re.findall(r"[\w-]+", question.lower())
    return tuple(dict.fromkeys(" ".join(words[i : i + n]) for n in range(1, 5) for i in range(len(words) - n + 1)))


def named_documents(question: str, aliases: dict[str, Sequence[str]]) -> dict[str, str]:
    """The documents a question names by one of their catalog aliases: id -> the name as written.

    An all-capitals alias (an acronym such as `CPA`) must match in capitals; others match in any case.

    >>> named_documents("What does the OECD say, and the AI act?", {"oecd": ["OECD"], "eu": ["AI Act"], "cpa": ["CPA"]})
    {'oecd': 'OECD', 'eu': 'AI act'}
    >>> named_documents("Is the oecd cpa mentioned?", {"oecd": ["OECD"], "cpa": ["CPA"]})
    {}
    """
    named = {}
    for doc_id, names in aliases.items():
        for name in sorted(names, key=len, reverse=True):  # "EU AI Act" whole, not "AI Act" within it
            found = re.search(_name_pattern(name), question, 0 if name.isupper() else re.IGNORECASE)
            if found:
                named[doc_id] = found.group()
                break
    return named


def _name_pattern(name: str) -> str:
    return rf"(?<![\w/-]){re.escape(name)}(?![\w/-])"


def unnamed(question: str, names: Sequence[str], mark: str = " ") -> str:
    """The question without the document names it used.

    Once the filters keep to the named documents, the names only blur the search: every passage of
    the UNU-CPR note sits near "UNU-CPR", and its opening passage, which names the event, outranks
    the one that answers "Who moderates the panel at the UNU-CPR side event?". `mark` takes each
    name's place (the plan marks where the names stood).

    >>> unnamed("Who moderates the panel at the UNU-CPR side event?", ["UNU-CPR"])
    'Who moderates the panel at the side event?'
    """
    for name in names:
        question = re.sub(_name_pattern(name), mark, question)
    return re.sub(r"\s+", " ", question).strip()


def _end_key(iso: str) -> int:
    """The last day an ISO date or partial date covers: `2024` -> 20241231."""
    parts = iso.split("-")
    if len(parts) == 1:
        return date_key(iso) + 1130
    if len(parts) == 2:
        return date_key(iso) + 30
    return date_key(iso)


def fuse(rankings: list[list[str]], k: int) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: score(id) = sum over rankings of 1 / (k + rank)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


@dataclass
class RetrievalTimings:
    dense_ms: float = 0.0
    keyword_ms: float = 0.0
    fuse_ms: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class HybridRetriever(BaseRetriever):
    """A LlamaIndex retriever over a `ChunkStore`: dense + BM25, fused by rank.

    Each returned node carries `dense_score` (cosine similarity, 0 if not found densely) and
    `keyword_score` in its metadata; its score is the fused score.
    """

    def __init__(
        self,
        store: ChunkStore,
        embed_model: SentenceTransformerEmbedding,
        settings: RetrievalSettings,
        filters: Filters | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.embed_model = embed_model
        self.settings = settings
        self.filters = filters or Filters()
        self.timings = RetrievalTimings()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        started = time.perf_counter()
        question = query_bundle.query_str
        queries = [(question, query_bundle.embedding or self.embed_model.get_query_embedding(question))]
        # A question searched within the documents it names is searched again without their names
        # (see `unnamed`): every passage of a document sits near its name.
        focus = unnamed(question, self.filters.names)
        if focus != question:
            queries.append((focus, self.embed_model.get_query_embedding(focus)))
        # "What does Article 5 say?" also ranks the passages of Article 5 itself, by meaning, and "How
        # does the Act define a 'deployer'?" the passages that define one.
        focused = [replace(self.filters, parts=referenced_parts(question)), replace(self.filters, defines=asked_definitions(question))]
        scopes = [self.filters] + [f for f in focused if f.parts or f.defines]
        dense = [self.store.dense_search(vector, self.settings.dense_top_k, scope.where()) for _, vector in queries for scope in scopes]
        after_dense = time.perf_counter()
        keyword = [self.store.keyword_search(text, self.settings.keyword_top_k, self.filters.select) for text, _ in queries]
        after_keyword = time.perf_counter()
        chunks: dict[str, StoredChunk] = {c.id: c for ranking in keyword + dense for c in ranking}
        # The first ranking's scores win: the whole question, searched without a focus.
        dense_scores = {c.id: c.score for ranking in reversed(dense) for c in ranking}
        keyword_scores = {c.id: c.score for c in keyword[0]}
        rankings = [[c.id for c in r] for r in dense + keyword]
        fused = fuse([r for r in rankings if r], self.settings.fusion_k)
        fused = reweigh(fused, passage_factors(focus, chunks, self.settings))
        nodes = []
        for chunk_id, score in fused[: self.settings.fused_top_k]:
            chunk = chunks[chunk_id]
            metadata = {
                **chunk.metadata,
                "dense_score": dense_scores.get(chunk_id, 0.0),
                "keyword_score": keyword_scores.get(chunk_id, 0.0),
            }
            nodes.append(NodeWithScore(node=TextNode(id_=chunk_id, text=chunk.text, metadata=metadata), score=score))
        done = time.perf_counter()
        self.timings = RetrievalTimings(
            dense_ms=(after_dense - started) * 1000,
            keyword_ms=(after_keyword - after_dense) * 1000,
            fuse_ms=(done - after_keyword) * 1000,
        )
        return nodes
