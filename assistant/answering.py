"""Answer stage: response synthesizers of ours, extractive by default, LLM when configured.

The extractive synthesizer composes the answer from sentences of the retrieved passages, each
followed by its `[n]` marker, so nothing in it is absent from the sources. The LLM synthesizer asks a
model for a cited answer; either way, `verification.verify` then checks each sentence, and an LLM
answer with no supported sentence is replaced by the extractive one, with a notice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import LLM, ChatMessage, MockLLM
from llama_index.core.response_synthesizers import BaseSynthesizer
from llama_index.core.schema import NodeWithScore, QueryBundle

from assistant.embedding import SentenceTransformerEmbedding
from assistant.prompts import ANSWER_SYSTEM, ANSWER_USER, CANNOT_ANSWER, SOURCE_BLOCK
from assistant.sentences import split_sentences
from assistant.settings import AnswerSettings
from assistant.store import keyword_tokens
from assistant.verification import MARKER, verify

_LEADING_NUMBER = re.compile(r"^[-*•➤\s]*(?:\(?\d{1,3}[.)]\s+)?")
FALLBACK_NOTICE = "The language model's answer could not be verified against the sources; this answer is extracted from them instead."


@dataclass
class Evidence:
    """How well the retrieved passages match the question; below the threshold, refuse."""

    best_sentence_similarity: float
    term_coverage: float

    @property
    def score(self) -> float:
        return 0.5 * self.best_sentence_similarity + 0.5 * self.term_coverage


@dataclass
class Candidate:
    passage: int  # index into the nodes
    text: str
    score: float
    similarity: float


@dataclass
class AnswerDraft:
    text: str
    refused: bool
    evidence: Evidence
    unsupported: list[str] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)  # node indexes, in citation order
    notices: list[str] = field(default_factory=list)


def question_terms(question: str) -> set[str]:
    return set(keyword_tokens(question))


def rank_sentences(
    question: str, nodes: Sequence[NodeWithScore], embed_model: SentenceTransformerEmbedding
) -> tuple[list[Candidate], Evidence]:
    """Score every sentence of the passages for the question: meaning first, shared terms second."""
    candidates: list[tuple[int, str]] = []
    for index, node in enumerate(nodes):
        for sentence in split_sentences(node.node.get_content()):
            clean = _LEADING_NUMBER.sub("", sentence.replace("**", "")).strip()
            if len(clean.split()) >= 4:
                candidates.append((index, clean))
    terms = question_terms(question)
    if not candidates:
        return [], Evidence(0.0, 0.0)
    vectors = np.array(embed_model.get_text_embedding_batch([question] + [c[1] for c in candidates]))
    similarities = vectors[1:] @ vectors[0]
    ranked = []
    for (index, text), similarity in zip(candidates, similarities):
        overlap = len(terms & set(keyword_tokens(text))) / max(len(terms), 1)
        score = float(similarity) + 0.3 * overlap - 0.01 * index
        ranked.append(Candidate(index, text, score, float(similarity)))
    ranked.sort(key=lambda c: -c.score)
    context = " ".join(
        f"{n.node.metadata.get('title', '')} {n.node.metadata.get('heading', '')} {n.node.get_content()}" for n in nodes[:3]
    )
    coverage = len(terms & set(keyword_tokens(context))) / max(len(terms), 1)
    return ranked, Evidence(max(c.similarity for c in ranked), coverage)


def extractive_answer(ranked: list[Candidate], settings: AnswerSettings) -> tuple[str, list[int]]:
    """The best sentences, each with a marker numbered by first citation; returns text and cited nodes."""
    if not ranked:
        return "", []
    best = ranked[0].score
    chosen: list[Candidate] = []
    for candidate in ranked:
        if len(chosen) >= settings.max_sentences or candidate.score < best - 0.12:
            break
        if all(candidate.text != c.text for c in chosen):
            chosen.append(candidate)
    cited: list[int] = []
    parts = []
    for candidate in chosen:
        if candidate.passage not in cited:
            cited.append(candidate.passage)
        body, stop = re.match(r"(.*?)([.!?;:]?)$", candidate.text.rstrip(), re.S).groups()  # type: ignore[union-attr]
        parts.append(f"{body} [{cited.index(candidate.passage) + 1}]{stop if stop in '.!?' else '.'}")
    return " ".join(parts), cited


def format_sources(nodes: Sequence[NodeWithScore]) -> str:
    return "\n\n".join(
        SOURCE_BLOCK.format(
            n=i,
            title=node.node.metadata.get("title", ""),
            section=node.node.metadata.get("section", ""),
            text=node.node.get_content().replace("</source>", "</ source>"),
        )
        for i, node in enumerate(nodes, start=1)
    )


class CitedAnswerSynthesizer(BaseSynthesizer):
    """Our response synthesizer: extractive or LLM answer, verified, refusing on weak evidence.

    The returned `Response.metadata["draft"]` is an `AnswerDraft`; `Response.source_nodes` are the
    passages the answer may cite, so `[n]` means `source_nodes[cited[n-1]]`.
    """

    def __init__(
        self,
        embed_model: SentenceTransformerEmbedding,
        settings: AnswerSettings,
        llm: LLM | None = None,
        on_token: Any = None,
    ) -> None:
        super().__init__(llm=llm or MockLLM())  # the base class would otherwise reach for OpenAI
        self._embed = embed_model
        self._answer_settings = settings
        self._chat_llm = llm
        self.on_token = on_token

    def _get_prompts(self) -> dict[str, Any]:
        return {}

    def _update_prompts(self, prompts: dict[str, Any]) -> None:
        return None

    def get_response(self, query_str: str, text_chunks: Sequence[str], **kwargs: Any) -> str:
        raise NotImplementedError("CitedAnswerSynthesizer answers from nodes: call synthesize()")

    async def aget_response(self, query_str: str, text_chunks: Sequence[str], **kwargs: Any) -> str:
        raise NotImplementedError("CitedAnswerSynthesizer answers from nodes: call synthesize()")

    def synthesize(self, query: QueryBundle | str, nodes: list[NodeWithScore], **kwargs: Any) -> Response:
        question = query.query_str if isinstance(query, QueryBundle) else query
        passages = nodes[: self._answer_settings.passages]
        ranked, evidence = rank_sentences(question, passages, self._embed)
        if not ranked or evidence.score < self._answer_settings.refusal_threshold:
            draft = AnswerDraft(text=CANNOT_ANSWER + ".", refused=True, evidence=evidence)
            return Response(response=draft.text, source_nodes=passages, metadata={"draft": draft})
        draft = self._llm_answer(question, passages, ranked, evidence) if self._chat_llm else None
        if draft is None:
            text, cited = extractive_answer(ranked, self._answer_settings)
            draft = self._verified(text, cited, passages, evidence)
            if self.on_token:
                self.on_token(draft.text)
        return Response(response=draft.text, source_nodes=passages, metadata={"draft": draft})

    def _verified(self, text: str, cited: list[int], passages: Sequence[NodeWithScore], evidence: Evidence) -> AnswerDraft:
        numbered = {n: passages[i].node.get_content() for n, i in enumerate(cited, start=1)}
        checked = verify(text, numbered)
        return AnswerDraft(checked.text, False, evidence, checked.unsupported, [cited[n - 1] for n in checked.cited])

    def _llm_answer(
        self, question: str, passages: Sequence[NodeWithScore], ranked: list[Candidate], evidence: Evidence
    ) -> AnswerDraft | None:
        """The LLM's answer renumbered to citation order and verified; None means fall back."""
        assert self._chat_llm is not None
        messages = [
            ChatMessage(role="system", content=ANSWER_SYSTEM),
            ChatMessage(role="user", content=ANSWER_USER.format(sources=format_sources(passages), question=question)),
        ]
        text = "".join(self._stream(messages))
        if CANNOT_ANSWER.lower() in text.lower():
            return AnswerDraft(text=CANNOT_ANSWER + ".", refused=True, evidence=evidence)
        order: list[int] = []
        for n in (int(m) for m in MARKER.findall(text)):
            if 1 <= n <= len(passages) and n - 1 not in order:
                order.append(n - 1)
        renumbered = MARKER.sub(
            lambda m: f" [{order.index(int(m.group(1)) - 1) + 1}]" if int(m.group(1)) - 1 in order else " [0]",  # [0] cites nothing: verify drops it
            text,
        )
        draft = self._verified(renumbered.strip(), order, passages, evidence)
        if not draft.cited:
            text, cited = extractive_answer(ranked, self._answer_settings)
            fallback = self._verified(text, cited, passages, evidence)
            fallback.notices.append(FALLBACK_NOTICE)
            return fallback
        return draft

    def _stream(self, messages: list[ChatMessage]) -> Iterator[str]:
        assert self._chat_llm is not None
        for chunk in self._chat_llm.stream_chat(messages):
            delta = chunk.delta or ""
            if self.on_token and delta:
                self.on_token(delta)
            yield delta
