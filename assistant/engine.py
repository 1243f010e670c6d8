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

from assistant.answering import AnswerDraft, CitedAnswerSynthesizer
from assistant.briefing import DocumentEvidence, answer_text, compose, synthesise
from assistant.conversation import is_follow_up, rewrite_follow_up, rewrite_with_llm
from assistant.embedding import SentenceTransformerEmbedding, resolve_model_path
from assistant.evidence import Evidence, RefusalModel, measure
from assistant.ingestion import IngestSummary, ingest
from assistant.llms import build_llm
from assistant.planning import Plan, documents_named, make_plan
from assistant.prompts import CANNOT_ANSWER
from assistant.reranking import SentenceRerank, score_sentences
from assistant.retrieval import Filters, HybridRetriever
from assistant.settings import Settings
from assistant.store import ChunkStore, IndexUnavailable, Manifest
from assistant.verification import UNSUPPORTED_MARK

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
        embedder = SentenceTransformerEmbedding(
            resolve_model_path(embedding.model),
            embed_batch_size=embedding.batch_size,
            backend=embedding.backend,
            cache_dir=self.settings.index_dir / "models",
        )
        embedder.read_stored(self.store.sentences.lookup)  # the passages' sentences and words, embedded at ingest
        return embedder

    @cached_property
    def store(self) -> ChunkStore:
        return ChunkStore(self.settings)

    @cached_property
    def refusal_model(self) -> RefusalModel:
        """The calibrated model that decides between answering and refusing (see `assistant.evidence`),
        with the threshold the settings set, if they set one."""
        model = RefusalModel.load(self.settings.answer.refusal_model)
        override = self.settings.answer.refusal_threshold
        return model if override is None else replace(model, threshold=override)

    @cached_property
    def llm(self) -> LLM | None:
        return build_llm(self.settings.llm)

    def model_names(self) -> dict[str, str]:
        llm = self.settings.llm
        name = {"none": "", "llama-cpp": llm.model_path or "bundled:SmolLM2-135M-Instruct", "openai": llm.model}
        return {"embedding": self.settings.embedding.label(), "llm": f"{llm.backend}:{name[llm.backend]}".rstrip(":")}

    def ingest(self, rebuild: bool = False, show_progress: bool = False) -> IngestSummary:
        """Bring the index in line with the corpus; also makes the light question encoder once (see `embedding`)."""
        summary = ingest(self.settings, self.embed_model, self.store, rebuild=rebuild, show_progress=show_progress)
        self.embed_model.export_light()
        return summary

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
        self, filters: Filters | None, llm: LLM | None = None, on_token: Callable[[str], None] | None = None,
        top_k: int | None = None,
    ) -> RetrieverQueryEngine:
        """The LlamaIndex query engine: hybrid retrieval, the sentence rerank, our cited answer synthesizer.

        Its `retrieve` gives the ranked passages that `ask` and calibration read; `top_k` fuses and
        keeps fewer passages than the settings say (one document's share of a briefing).
        """
        retrieval = self.settings.retrieval
        if top_k is not None:
            retrieval = retrieval.model_copy(update={"fused_top_k": top_k, "top_n": top_k})
        return RetrieverQueryEngine(
            retriever=HybridRetriever(self.store, self.embed_model, retrieval, filters),
            node_postprocessors=[SentenceRerank(embed_model=self.embed_model, weight=retrieval.rerank_weight, top_n=retrieval.top_n,
                                               names=filters.names if filters else ())],
            response_synthesizer=self.synthesizer(filters, llm, on_token),
        )

    def synthesizer(
        self, filters: Filters | None, llm: LLM | None = None, on_token: Callable[[str], None] | None = None
    ) -> CitedAnswerSynthesizer:
        """Our answer synthesizer, told which document names the question used (they are not its topic)."""
        return CitedAnswerSynthesizer(self.embed_model, self.settings.answer, self.store, self.refusal_model, llm,
                                      on_token, names=filters.names if filters else ())

    def ask(
        self,
        question: str,
        filters: Filters | None = None,
        on_token: Callable[[str], None] | None = None,
        shape: str | None = None,
    ) -> dict[str, Any]:
        """Answer `question`; the returned dict is the `ask --json` record.

        The plan (see `planning`) decides the answer's shape; `shape` overrides it (the chat's
        "Compare documents" box asks for `comparison`). Raises `QuestionError` for an unusable
        question and `IndexUnavailable` when the index cannot be used; both carry a message meant
        for the person asking.
        """
        question = check_question(question, self.settings.answer.max_question_chars)
        began = time.perf_counter()
        manifest = self.store.check_ready()
        plan = self.plan(question, filters, manifest, shape)
        if plan.spans_documents:
            return self._across(plan, filters, manifest, began, on_token)
        scoped = self.scoped(plan, filters)
        notices = []
        if scoped is not None and scoped.doc_ids != (filters.doc_ids if filters is not None else ()):
            titles = [e["title"] for e in manifest.documents.values() if e["doc_id"] in scoped.doc_ids]
            notices.append(f"Searched only {'; '.join(titles)}, which the question names.")
        filters = scoped
        llm = self._language_model(notices)
        engine = self.query_engine(filters, llm, on_token)
        bundle = QueryBundle(question)
        nodes = _retrieve(engine, bundle)
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
            response = self.synthesizer(filters, None, on_token).synthesize(bundle, nodes)
        done = time.perf_counter()
        draft: AnswerDraft = (response.metadata or {})["draft"]
        answer = self._refusal(draft.evidence, manifest, filters) if draft.refused else draft.text
        return self._record(plan, answer, draft.refused, [response.source_nodes[i] for i in draft.cited], nodes,
                            notices + draft.notices, draft.unsupported, draft.evidence.as_dict(), {
                                "retrieve": (retrieved_at - began) * 1000,
                                "answer": (done - retrieved_at) * 1000,
                                "total": (done - began) * 1000,
                            })

    def _language_model(self, notices: list[str]) -> LLM | None:
        """The configured LLM, or None; one that cannot be built leaves a notice and an extractive answer."""
        try:
            return self.llm
        except Exception as exc:  # noqa: BLE001 -- the LLM is optional: failing to build it means extractive answers
            notices.append(f"The language model is unavailable ({exc}); this answer is extracted from the sources.")
            return None

    def _across(self, plan: Plan, filters: Filters | None, manifest: Manifest, began: float,
                on_token: Callable[[str], None] | None) -> dict[str, Any]:
        """An answer from every document in scope, each searched on its own (see `briefing`)."""
        chosen = filters.doc_ids if filters is not None and filters.doc_ids else None
        entries = [e for e in manifest.documents.values() if chosen is None or e["doc_id"] in chosen]
        if plan.shape == "comparison" and plan.documents:
            entries = [e for e in entries if e["doc_id"] in plan.documents]
        model, bundle = self.refusal_model, QueryBundle(plan.topic)
        documents = []
        for entry in entries:
            scoped = replace(filters or Filters(), doc_ids=(entry["doc_id"],), names=plan.named)
            passages = _retrieve(self.query_engine(scoped, top_k=self.settings.retrieval.per_document_top_k), bundle)
            passages = passages[: self.settings.answer.passages]
            ranked = score_sentences(plan.topic, passages, self.embed_model)
            evidence = measure(plan.topic, passages, ranked, self.embed_model, self.store)
            evidence.probability = model.document_probability(evidence.features)
            documents.append(DocumentEvidence(entry, passages, ranked, evidence))
        retrieved_at = time.perf_counter()
        documents.sort(key=lambda d: -d.evidence.probability)
        speaking = [d for d in documents if d.ranked and d.evidence.sufficient(model.document_threshold)]
        groups, cited = compose(plan.shape, speaking)
        silent = [d.entry["title"] for d in documents if d not in speaking]
        notices: list[str] = []
        left_out: list[str] = []  # sentences of the LLM's synthesis that no cited passage backs
        synthesis = ""
        llm = self._language_model(notices) if groups else None
        if llm is not None:
            try:
                synthesis, left_out = synthesise(llm, plan.question, groups, cited, on_token)
            except Exception as exc:  # noqa: BLE001 -- an LLM endpoint that is down or broken must not lose the answer
                log.warning("LLM synthesis failed: %s", exc.__class__.__name__)
                notices.append(f"The language model failed ({exc.__class__.__name__}); the answer quotes the documents only.")
            if left_out:
                notices.append(f"{len(left_out)} sentence(s) of the language model's synthesis were left out: "
                               "the passages they cite do not back them.")
            if on_token:
                on_token("\n\n")
        if groups:
            answer = answer_text(plan.shape, groups, silent, synthesis)
        else:
            scope = f" (filters: {filters.describe()})" if filters and filters.describe() else ""
            answer = (f"{CANNOT_ANSWER}. None of the {len(documents)} documents searched{scope} speaks to this point "
                      f"clearly enough: {'; '.join(silent)}. The nearest passages are listed below; they may help you "
                      "rephrase the question.")
        if on_token:
            on_token(answer_text(plan.shape, groups, silent) if synthesis else answer)
        done = time.perf_counter()
        found = {"documents": {d.entry["doc_id"]: d.evidence.as_dict() for d in documents},
                 "probability": round(max((d.evidence.probability for d in documents), default=0.0), 4)}
        unsupported = [s["text"] for g in groups for s in g["sentences"] if UNSUPPORTED_MARK in s["text"]] + left_out
        record = self._record(plan, answer, not groups, cited, [p for d in documents for p in d.passages], notices,
                              unsupported, found, {"retrieve": (retrieved_at - began) * 1000,
                                                      "answer": (done - retrieved_at) * 1000, "total": (done - began) * 1000})
        record["synthesis"] = synthesis
        record["groups"] = groups
        record["silent"] = silent
        return record

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
        return rewrite_follow_up(question, history[-1])

    def plan(self, question: str, filters: Filters | None, manifest: Manifest, shape: str | None = None) -> Plan:
        """The question's plan (see `planning`): its shape, and the documents it names within the filters."""
        named, aliased = documents_named(question, manifest.documents.values(), self.store.documents_holding)
        if filters is not None and filters.doc_ids:  # documents chosen in the filters win over the ones named
            named = {doc: name for doc, name in named.items() if doc in filters.doc_ids}
        return make_plan(question, named, shape, [aliased[doc] for doc in named if doc in aliased])

    def scoped(self, plan: Plan, filters: Filters | None) -> Filters | None:
        """The filters of a one-point answer: narrowed to the documents the question names, unless chosen already.

        "According to the OECD, ..." is answered from the OECD Recommendation, never from a passage
        of another document that happens to sit closer to the question's words.
        """
        if not plan.documents or (filters is not None and filters.doc_ids):
            return replace(filters, names=plan.named) if filters is not None and plan.named else filters
        return replace(filters or Filters(), doc_ids=plan.documents, names=plan.named)

    def _refusal(self, evidence: Evidence, manifest: Manifest, filters: Filters | None) -> str:
        """A refusal that says why, names the documents searched and points to the nearest passages."""
        reason = ""
        if evidence.missing:
            reason = f" The passages found do not mention {', '.join(map(repr, evidence.missing))}."
        elif evidence.uncovered:  # the rarest words of the question that the best passages never say
            reason = f" The best passages found do not mention {', '.join(map(repr, evidence.uncovered[:3]))}."
        chosen = filters.doc_ids if filters is not None and filters.doc_ids else None
        searched = sorted({e["title"] for e in manifest.documents.values() if chosen is None or e["doc_id"] in chosen})
        scope = f" (filters: {filters.describe()})" if filters and filters.describe() else ""
        return (f"{CANNOT_ANSWER}.{reason} Documents searched{scope}: {'; '.join(searched)}. "
                "The nearest passages are listed below; they may help you rephrase the question.")

    def _record(
        self,
        plan: Plan,
        answer: str,
        refused: bool,
        cited: list[NodeWithScore],
        retrieved: list[NodeWithScore],
        notices: list[str],
        unsupported: list[str],
        evidence: dict[str, Any],
        timings: dict[str, float],
    ) -> dict[str, Any]:
        return {
            "question": plan.question,
            "answer": answer,
            "refused": refused,
            "plan": plan.as_dict(),
            "citations": [citation(n, passage) for n, passage in enumerate(cited, start=1)],
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
            "unsupported": unsupported,
            "notices": notices,
            "evidence": evidence,
            "evidence_score": evidence["probability"],
            "index_hash": self.settings.index_hash(),
            "models": self.model_names(),
            "timings_ms": {k: round(v, 1) for k, v in timings.items()},
        }


def _retrieve(engine: RetrieverQueryEngine, bundle: QueryBundle) -> list[NodeWithScore]:
    """The engine's passages for the question; a Chroma that went away is an `IndexUnavailable` with what to do."""
    try:
        return engine.retrieve(bundle)
    except IndexUnavailable:
        raise
    except Exception as exc:  # Chroma raises many types when its server or files go away
        raise IndexUnavailable(
            f"The index is unavailable ({exc.__class__.__name__}: {exc}). "
            "Check the Chroma server or run `python -m assistant ingest`, then ask again."
        ) from exc
