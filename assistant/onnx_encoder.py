"""The same sentence-transformers model exported to ONNX: the `onnx-int8` backend, and the light query encoder.

Two files are made from the model, each once, with `torch.onnx` (the TorchScript exporter, which
needs no extra package), and cached under the index folder's `models/`: nothing is downloaded.
The exported graph holds the whole sentence-transformers pipeline, pooling and normalisation
included, so a file alone gives the vectors of `SentenceTransformer.encode`, through onnxruntime
and the tokenizer: neither torch nor sentence-transformers is loaded.

- int8 (the `onnx-int8` backend): on a CPU with AVX-512 VNNI, int8 matrix products run about
  twice as fast as torch fp32. A naive quantization (one scale per weight tensor) moved MiniLM's
  vectors to a mean cosine of about 0.96 from the fp32 ones; one scale per output channel keeps
  them at about 0.994, and on the shipped QA set retrieval is as good as with fp32
  (benchmarks/README.md has the figures). Quantized with onnxruntime's own dynamic quantizer.
- fp32 (the `torch` backend's questions): the torch model's own weights, so its vectors agree
  with torch's to rounding (tests/test_embedding.py). Made at ingest, when torch is loaded
  anyway; a question then costs onnxruntime, not the seven seconds of importing torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Bumped whenever the export or quantization recipe changes, so that a cached file is remade.
RECIPE_VERSION = 1
BATCH_SIZE = 8  # small batches pad less; measured fastest for int8 on this CPU


def cached_model_file(model_path: str, cache_dir: Path, quantized: bool = True) -> Path:
    """Where the exported model for `model_path` lives: named by the model's files, the recipe and its precision."""
    folder = Path(model_path)
    fingerprint = [model_path, RECIPE_VERSION]
    if folder.is_dir():
        fingerprint += sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in folder.iterdir() if p.is_file())
    digest = hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:12]
    return cache_dir / f"{folder.name or 'model'}-{digest}-{'int8' if quantized else 'fp32'}.onnx"


def export_onnx(model_path: str, target: Path, quantized: bool) -> None:
    """Export the sentence-transformers model to ONNX, quantizing its weights per channel if `quantized`.

    Written to a temporary name and renamed, so that an interrupted export leaves no half file.
    """
    import onnx
    import torch
    from sentence_transformers import SentenceTransformer

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root.handlers[:] = handlers  # the quantizer configures the root logger as it loads; keep ours

    model = SentenceTransformer(model_path, device="cpu").eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in model.tokenizer.model_input_names]

    class Pipeline(torch.nn.Module):
        """The model's modules (transformer, pooling, ...) as one function of the token tensors."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            vectors = self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]
            return torch.nn.functional.normalize(vectors, p=2, dim=1)

    target.parent.mkdir(parents=True, exist_ok=True)
    fp32 = target.with_suffix(".fp32.tmp")
    int8 = target.with_suffix(".int8.tmp")
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    try:
        with warnings.catch_warnings():
            # The tracer warns of branches on shapes; each takes the same way for every input here
            # (tests/test_embedding.py checks padded batches of mixed lengths against torch).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pipeline(), example, str(fp32), dynamo=False, opset_version=17,
                input_names=names, output_names=["embedding"],
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
            )
        if quantized:
            root.setLevel(logging.ERROR)  # it advises pre-processing, which changed nothing here
            quantize_dynamic(
                str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        target.with_suffix(".json").write_text(json.dumps({"inputs": names, "max_length": model.max_seq_length}))
        os.replace(int8 if quantized else fp32, target)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        fp32.unlink(missing_ok=True)
        int8.unlink(missing_ok=True)


def exported(model_path: str, cache_dir: Path, quantized: bool) -> bool:
    """Whether the model is exported at that precision already."""
    file = cached_model_file(model_path, cache_dir, quantized)
    return file.exists() and file.with_suffix(".json").exists()


class OnnxEncoder:
    """Normalised sentence vectors from the cached int8 or fp32 model, exporting it on first use."""

    _export_lock = threading.Lock()

    def __init__(self, model_path: str, cache_dir: Path, quantized: bool = True) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.file = cached_model_file(model_path, cache_dir, quantized)
        with self._export_lock:
            if not exported(model_path, cache_dir, quantized):
                log.warning("Exporting %s to %s (once; about a minute)", model_path, self.file)
                export_onnx(model_path, self.file, quantized)
        shape = json.loads(self.file.with_suffix(".json").read_text())
        self.inputs: list[str] = shape["inputs"]
        self.tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(shape["max_length"]))
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(self.file), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Vectors in the order of `texts`; batches are formed by length so that little is padded."""
        vectors = np.zeros((len(texts), 0), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            encodings = self.tokenizer.encode_batch([texts[i] for i in batch])
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, encoding in enumerate(encodings):
                ids[row, :len(encoding.ids)] = encoding.ids
                mask[row, :len(encoding.ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out = self.session.run(None, {name: feeds[name] for name in self.inputs})[0]
            if vectors.shape[1] == 0:
                vectors = np.zeros((len(texts), out.shape[1]), dtype=np.float32)
            vectors[batch] = out
            if progress:
                progress(len(batch))
        return vectors
