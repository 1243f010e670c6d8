"""The `Assistant`: one object that ingests the corpus and answers questions with citations.

It wires the stages into a LlamaIndex `RetrieverQueryEngine` (our hybrid retriever and our cited
answer synthesizer) and turns each answer into the record that `ask --json`, the chat app and the
evaluation runs all share.

    >>> assistant = Assistant(Settings())                       # doctest: +SKIP
    >>> assistant.ingest().as_dict()["documents"]               # doctest: +SKIP
    6
    >>> assistant.ask("What fines apply to prohibited AI practices?")["citations"][0]["section"]  # doctest: +SKIP
    'Article 99 > 3'
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from typing import Any

from llama_index.core.llms import LLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle

from assistant.answering import (
    AnswerDraft,
    CitedAnswerSynthesizer,
    answer_sentences,
    cite,
    in_context,
    passage_context,
    words,
)
from assistant.comparison import topic_statements, topic_terms
from assistant.conversation import is_follow_up, rewrite_follow_up, rewrite_with_llm
from assistant.embedding import CACHE_SIZE, SentenceTransformerEmbedding, resolve_model_path
from assistant.ingestion import IngestSummary, ingest
from assistant.llms import build_llm
from assistant.prompts import CANNOT_ANSWER
from assistant.reranking import SentenceRerank
from assistant.retrieval import Filters, HybridRetriever, named_documents
from assistant.settings import Settings
from assistant.store import ChunkStore, IndexUnavailable, Manifest

log = logging.getLogger(__name__)


class QuestionError(ValueError):
    """The question cannot be asked as it is; the message says how to fix it."""


def check_question(question: str, max_chars: int) -> str:
    """The question stripped, or a clear error for an empty or overlong one."""
    cleaned = "".join(ch for ch in (question or "") if ch.isprintable() or ch in "\n\t").strip()
    if not cleaned:
        raise QuestionError("Please type a question: the question is empty.")
    if len(cleaned) > max_chars:
        raise QuestionError(
            f"The question is {len(cleaned):,} characters long; the limit is {max_chars:,}. "
            "Please shorten it to the question itself."
        )
    return cleaned


def citation(n: int, passage: NodeWithScore) -> dict[str, Any]:
    """Citation `[n]` as the `ask --json` record lists it."""
    meta = passage.node.metadata
    return {
        "n": n,
        "id": passage.node.node_id,
        "doc_id": meta["doc_id"],
        "title": meta["title"],
        "issuer": meta["issuer"],
        "date": meta["date"],
        "section": meta["section"],
        "page": meta["page"] or None,
        "text": passage.node.get_content(),
        "score": round(float(passage.score or 0.0), 6),
    }


class Assistant:
    """Ingest the corpus and answer questions over it; heavy parts load on first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._llm_lock = threading.Lock()

    @cached_property
    def embed_model(self) -> SentenceTransformerEmbedding:
        embedding = self.settings.embedding
        return SentenceTransformerEmbedding(
            resolve_model_path(embedding.model),
            embed_batch_size=embedding.batch_size,
            backend=embedding.backend,
            cache_dir=self.settings.index_dir / "models",
        )

    @cached_property
    def store(self) -> ChunkStore:
        return ChunkStore(self.settings)

    @cached_property
    def llm(self) -> LLM | None:
        return build_llm(self.settings.llm)

    def model_names(self) -> dict[str, str]:
        llm = self.settings.llm
        name = {"none": "", "llama-cpp": llm.model_path or "bundled:SmolLM2-135M-Instruct", "openai": llm.model}
        return {"embedding": self.settings.embedding.label(), "llm": f"{llm.backend}:{name[llm.backend]}".rstrip(":")}

    def ingest(self, rebuild: bool = False, show_progress: bool = False) -> IngestSummary:
        return ingest(self.settings, self.embed_model, self.store, rebuild=rebuild, show_progress=show_progress)

    def warm_up(self, sentences: int = CACHE_SIZE) -> int:
        """Embed the indexed passages' answer sentences and words ahead of the questions; returns how many.

        The rerank and answer stages score every sentence of the fused passages against the
        question, each in two readings (see `answering.score_sentences`), and the evidence looks
        for the question's words among the best passages' words (`answering.reworded`). With their
        vectors remembered, a question costs one encoder call (for itself) instead of one over a few
        hundred readings. The app runs this in the background once it serves; up to `sentences`
        texts are kept (the cache's size), the sentences first.
        """
        texts: dict[str, None] = {}
        vocabulary: dict[str, None] = {}  # each word alone, as `answering.reworded` embeds it
        for chunk in self.store.chunks():
            for sentence in answer_sentences(chunk.text, chunk.metadata.get("title", "")):
                texts[in_context(sentence, chunk.metadata)] = None  # the two readings `score_sentences` embeds
                texts[sentence] = None
            vocabulary.update(dict.fromkeys(words(passage_context(chunk.text, chunk.metadata))))
        batch = (list(texts) + list(vocabulary))[:sentences]
        for start in range(0, len(batch), 256):  # short calls, so that questions asked meanwhile interleave
            self.embed_model.get_text_embedding_batch(batch[start:start + 256])
        return len(batch)

    def documents(self) -> list[dict[str, Any]]:
        """The indexed documents, with chunk counts and when each was indexed."""
        manifest = self.store.check_ready()
        return [{"file": key, **entry} for key, entry in sorted(manifest.documents.items())]

    def passage_context(self, chunk_id: str, chars: int = 700) -> dict[str, Any]:
        """A passage with the text around it and its document's catalog entry, for the source view."""
        manifest = self.store.check_ready()
        before, chunk, after = self.store.surroundings(chunk_id, chars)
        meta = chunk.metadata
        document = next((e for e in manifest.documents.values() if e["doc_id"] == meta["doc_id"]), {})
        passage = {"id": chunk.id, "doc_id": meta["doc_id"], "title": meta["title"], "section": meta["section"],
                   "page": meta["page"] or None, "text": chunk.text}
        return {"passage": passage, "before": before, "after": after, "document": document}

    def query_engine(
        self, filters: Filters | None, llm: LLM | None = None, on_token: Callable[[str], None] | None = None
    ) -> RetrieverQueryEngine:
        """The LlamaIndex query engine: hybrid retrieval, the sentence rerank, our cited answer synthesizer.

        Its `retrieve` gives the ranked passages that `ask`, `compare` and calibration all read.
        """
        return RetrieverQueryEngine(
            retriever=HybridRetriever(self.store, self.embed_model, self.settings.retrieval, filters),
            node_postprocessors=[SentenceRerank(
                embed_model=self.embed_model, weight=self.settings.retrieval.rerank_weight, top_n=self.settings.retrieval.top_n
            )],
            response_synthesizer=CitedAnswerSynthesizer(self.embed_model, self.settings.answer, self.store.knows, llm, on_token),
        )

    def ask(
        self,
        question: str,
        filters: Filters | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Answer `question`; the returned dict is the `ask --json` record.

        Raises `QuestionError` for an unusable question and `IndexUnavailable` when the index
        cannot be used; both carry a message meant for the person asking.
        """
        question = check_question(question, self.settings.answer.max_question_chars)
        began = time.perf_counter()
        manifest = self.store.check_ready()
        filters, notices = self.scope(question, filters, manifest)
        llm = None
        try:
            llm = self.llm
        except Exception as exc:  # noqa: BLE001 -- the LLM is optional: failing to build it means extractive answers
            notices.append(f"The language model is unavailable ({exc}); this answer is extracted from the sources.")
        engine = self.query_engine(filters, llm, on_token)
        bundle = QueryBundle(question)
        try:
            nodes = engine.retrieve(bundle)
        except IndexUnavailable:
            raise
        except Exception as exc:  # Chroma raises many types when its server or files go away
            raise IndexUnavailable(
                f"The index is unavailable ({exc.__class__.__name__}: {exc}). "
                "Check the Chroma server or run `python -m assistant ingest`, then ask again."
            ) from exc
        retrieved_at = time.perf_counter()
        try:
            response = engine.synthesize(bundle, nodes)
        except Exception as exc:  # an LLM endpoint that is down, slow or broken must not lose the answer
            if llm is None:
                raise
            log.warning("LLM answer failed: %s", exc.__class__.__name__)
            notices.append(
                f"The language model failed ({exc.__class__.__name__}); this answer is extracted from the sources."
            )
            extractive = CitedAnswerSynthesizer(self.embed_model, self.settings.answer, self.store.knows, None, on_token)
            response = extractive.synthesize(bundle, nodes)
        done = time.perf_counter()
        draft: AnswerDraft = (response.metadata or {})["draft"]
        chosen = filters.doc_ids if filters is not None and filters.doc_ids else None
        searched = sorted({e["title"] for e in manifest.documents.values() if chosen is None or e["doc_id"] in chosen})
        return self._record(question, draft, response.source_nodes, nodes, notices + draft.notices, searched, filters, {
            "retrieve": (retrieved_at - began) * 1000,
            "answer": (done - retrieved_at) * 1000,
            "total": (done - began) * 1000,
        })

    def standalone(self, question: str, history: list[str]) -> str:
        """`question` rewritten to stand alone, given the earlier (standalone) questions of a chat.

        With an LLM configured the LLM rewrites; the deterministic rule of `conversation` is used
        without one, and whenever the LLM fails or replies with something that is not a question.
        """
        question = check_question(question, self.settings.answer.max_question_chars)
        if not history or not is_follow_up(question):
            return question
        if self.settings.llm.backend != "none":
            try:
                llm = self.llm
                rewritten = rewrite_with_llm(llm, question, history) if llm is not None else None
                if rewritten:
                    return rewritten
            except Exception as exc:  # noqa: BLE001 -- an LLM failure falls back to the rule
                log.warning("LLM rewrite failed: %s", exc.__class__.__name__)
        manifest = self.store.check_ready()
        aliases = {e["doc_id"]: e.get("aliases", []) for e in manifest.documents.values()}
        return rewrite_follow_up(question, history[-1], aliases)

    def compare(self, question: str, filters: Filters | None = None) -> dict[str, Any]:
        """How each (filtered) document speaks to `question`: see `comparison`.

        Returns `{"question", "terms", "rows": [{"doc_id", "title", "issuer", "date", "speaks",
        "statements"}], "citations"}`, the statements carrying `[n]` markers numbered across the
        table and the citations shaped as in `ask --json`.
        """
        question = check_question(question, self.settings.answer.max_question_chars)
        manifest = self.store.check_ready()
        chosen = filters.doc_ids if filters is not None and filters.doc_ids else None
        entries = sorted((e for e in manifest.documents.values() if chosen is None or e["doc_id"] in chosen),
                         key=lambda e: e["title"])
        terms = topic_terms(question)
        rows: list[dict[str, Any]] = []
        citations: list[dict[str, Any]] = []
        for entry in entries:
            scoped = replace(filters or Filters(), doc_ids=(entry["doc_id"],))
            passages = self.query_engine(scoped).retrieve(QueryBundle(question))[: self.settings.answer.passages]
            statements = topic_statements(terms, [p.node.get_content() for p in passages], self.settings.answer.max_sentences)
            numbered: dict[int, int] = {}
            for _, index in statements:
                if index not in numbered:
                    numbered[index] = len(citations) + 1
                    citations.append(citation(numbered[index], passages[index]))
            meta = passages[0].node.metadata if passages else {}
            rows.append({
                "doc_id": entry["doc_id"],
                "title": entry["title"],
                "issuer": meta.get("issuer", ""),
                "date": meta.get("date", ""),
                "speaks": bool(statements),
                "statements": " ".join(cite(sentence, numbered[index]) for sentence, index in statements),
            })
        rows.sort(key=lambda row: not row["speaks"])
        return {"question": question, "terms": terms, "rows": rows, "citations": citations}

    def scope(self, question: str, filters: Filters | None, manifest: Manifest) -> tuple[Filters | None, list[str]]:
        """Narrow retrieval to the documents a question names, unless documents were chosen already.

        "According to the OECD, ..." is answered from the OECD Recommendation, never from a passage
        of another document that happens to sit closer to the question's words.
        """
        if filters is not None and filters.doc_ids:
            return filters, []
        entries = manifest.documents.values()
        named = named_documents(question, {e["doc_id"]: e.get("aliases", []) for e in entries})
        if not named:
            return filters, []
        titles = [e["title"] for e in entries if e["doc_id"] in named]
        notice = f"Searched only {'; '.join(titles)}, which the question names."
        return replace(filters or Filters(), doc_ids=tuple(named), names=tuple(named.values())), [notice]

    def _record(
        self,
        question: str,
        draft: AnswerDraft,
        passages: list[NodeWithScore],
        retrieved: list[NodeWithScore],
        notices: list[str],
        searched: list[str],
        filters: Filters | None,
        timings: dict[str, float],
    ) -> dict[str, Any]:
        answer = draft.text
        if draft.refused:
            scope = f" (filters: {filters.describe()})" if filters and filters.describe() else ""
            evidence, reason = draft.evidence, ""
            if evidence.missing:
                reason = f" The passages found do not mention {', '.join(evidence.missing)}."
            elif evidence.unmentioned:  # the thing asked, which the score counts in the best three passages
                reason = f" The best passages found do not mention {evidence.unmentioned!r}."
            answer = (
                f"{CANNOT_ANSWER}.{reason} Documents searched{scope}: {'; '.join(searched)}. "
                "The nearest passages are listed below; they may help you rephrase the question."
            )
        citations = [citation(n, passages[i]) for n, i in enumerate(draft.cited, start=1)]
        return {
            "question": question,
            "answer": answer,
            "refused": draft.refused,
            "citations": citations,
            "retrieved": [
                {
                    "rank": rank,
                    "id": node.node.node_id,
                    "doc_id": node.node.metadata["doc_id"],
                    "title": node.node.metadata["title"],
                    "section": node.node.metadata["section"],
                    "text": node.node.get_content(),
                    "score": round(float(node.score or 0.0), 6),
                }
                for rank, node in enumerate(retrieved, start=1)
            ],
            "unsupported": draft.unsupported,
            "notices": notices,
            "evidence_score": round(draft.evidence.score, 4),
            "index_hash": self.settings.index_hash(),
            "models": self.model_names(),
            "timings_ms": {k: round(v, 1) for k, v in timings.items()},
        }
