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
        return clauses

    def where(self) -> dict[str, Any] | None:
        """The filters as a Chroma `where` clause."""
        clauses = [{key: {op: value}} for key, op, value in self._clauses()]
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


def named_documents(question: str, aliases: dict[str, Sequence[str]]) -> tuple[str, ...]:
    """The ids of the documents a question names by one of their catalog aliases.

    An all-capitals alias (an acronym such as `CPA`) must match in capitals; others match in any case.

    >>> named_documents("What does the OECD say, and the AI act?", {"oecd": ["OECD"], "eu": ["AI Act"], "cpa": ["CPA"]})
    ('oecd', 'eu')
    >>> named_documents("Is the oecd cpa mentioned?", {"oecd": ["OECD"], "cpa": ["CPA"]})
    ()
    """
    named = []
    for doc_id, names in aliases.items():
        for name in names:
            pattern = rf"(?<![\w/-]){re.escape(name)}(?![\w/-])"
            if re.search(pattern, question, 0 if name.isupper() else re.IGNORECASE):
                named.append(doc_id)
                break
    return tuple(named)


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
        vector = query_bundle.embedding or self.embed_model.get_query_embedding(query_bundle.query_str)
        dense = self.store.dense_search(vector, self.settings.dense_top_k, self.filters.where())
        after_dense = time.perf_counter()
        keyword = self.store.keyword_search(query_bundle.query_str, self.settings.keyword_top_k, self.filters.select)
        after_keyword = time.perf_counter()
        # "What does Article 5 say?" also ranks the passages of Article 5 itself, by meaning.
        parts = referenced_parts(query_bundle.query_str)
        cited = (
            self.store.dense_search(vector, self.settings.dense_top_k, replace(self.filters, parts=parts).where())
            if parts
            else []
        )
        chunks: dict[str, StoredChunk] = {c.id: c for c in keyword}
        chunks.update({c.id: c for c in cited + dense})
        dense_scores = {c.id: c.score for c in cited + dense}
        keyword_scores = {c.id: c.score for c in keyword}
        rankings = [[c.id for c in dense], [c.id for c in keyword], [c.id for c in cited]]
        fused = fuse([r for r in rankings if r], self.settings.fusion_k)
        nodes = []
        for chunk_id, score in fused[: self.settings.top_n]:
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
