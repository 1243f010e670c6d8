"""The naive baseline: the corpus through LlamaIndex's defaults, for the comparison in the eval report.

`eval SET --baseline naive` asks the same questions of this pipeline, so the report can show what
our cleaning, structure-aware chunking, hybrid retrieval and cited answers add over what a newcomer
gets from LlamaIndex out of the box: files loaded as they are, the default `SentenceSplitter`
(1,024-token chunks, 200 overlap), the same MiniLM embeddings, and a dense top-k from an in-memory
`VectorStoreIndex`. MiniLM reads only the first 256 word pieces of a chunk, so most of each
1,024-token chunk is never embedded; that is part of what the baseline measures.

LlamaIndex's default answer step needs an LLM, so the baseline has none: its answer is the text of
the top passage, cited as `[1]`. Its records have the shape of `ask --json`, so the same metrics apply.

    >>> baseline = NaiveBaseline(Settings(), Assistant().embed_model)           # doctest: +SKIP
    >>> baseline.ask("What fines apply to prohibited AI practices?")["index_hash"]  # doctest: +SKIP
    'naive-…'
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from functools import cached_property
from typing import Any

from llama_index.core import VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document

from assistant.catalog import load_catalog
from assistant.embedding import SentenceTransformerEmbedding
from assistant.engine import check_question, citation
from assistant.ingestion import corpus_files
from assistant.loaders import LoadError, load_text
from assistant.settings import Settings
from assistant.store import IndexUnavailable

log = logging.getLogger(__name__)

NOTICE = (
    "Naive baseline: default LlamaIndex chunks and dense top-{k} retrieval; "
    "the answer is the top passage, not a synthesised answer."
)
RETRIEVED_KEYS = ("id", "doc_id", "title", "section", "text", "score")


class NaiveBaseline:
    """A default LlamaIndex pipeline over `settings.corpus_dir`, answering with its top passage.

    The index is built in memory on the first `ask` and kept for the object's life; nothing is
    written to disk and no LLM is ever called (retrieval only, with `embed_model` passed explicitly
    rather than through LlamaIndex's global `Settings`).

        >>> baseline = NaiveBaseline(settings, assistant.embed_model, top_k=5)  # doctest: +SKIP
        >>> record = baseline.ask("How much could AI contribute to the global economy by 2030?")  # doctest: +SKIP
        >>> record["citations"][0]["n"], record["answer"].endswith(" [1]")      # doctest: +SKIP
        (1, True)
    """

    def __init__(self, settings: Settings, embed_model: SentenceTransformerEmbedding, top_k: int = 5) -> None:
        self.settings = settings
        self.embed_model = embed_model
        self.top_k = top_k
        self.splitter = SentenceSplitter()

    @cached_property
    def index(self) -> VectorStoreIndex:
        """Every readable corpus file, split and embedded with LlamaIndex's defaults."""
        documents = self._documents()
        if not documents:
            raise IndexUnavailable(f"The naive baseline found no readable documents in {self.settings.corpus_dir}.")
        return VectorStoreIndex.from_documents(documents, transformations=[self.splitter], embed_model=self.embed_model)

    def index_hash(self) -> str:
        """`naive-` and a hash of what shapes the baseline's chunks and vectors, as our own index is named."""
        shape = {
            "splitter": type(self.splitter).__name__,
            "chunk_size": self.splitter.chunk_size,
            "chunk_overlap": self.splitter.chunk_overlap,
            "embedding_model": self.model_names()["embedding"],
        }
        return "naive-" + hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]

    def model_names(self) -> dict[str, str]:
        return {"embedding": self.settings.embedding.label(), "llm": "none"}

    def ask(self, question: str) -> dict[str, Any]:
        """The `ask --json` record for `question`: the top-k passages, the first one as the answer.

        Timings leave out building the index, which happens once, on the first question.
        """
        question = check_question(question, self.settings.answer.max_question_chars)
        retriever = self.index.as_retriever(similarity_top_k=self.top_k)
        began = time.perf_counter()
        nodes = retriever.retrieve(question)
        elapsed = round((time.perf_counter() - began) * 1000, 1)
        passages = [citation(rank, node) for rank, node in enumerate(nodes, start=1)]
        return {
            "question": question,
            "answer": f"{passages[0]['text']} [1]",
            "refused": False,
            "citations": passages[:1],
            "retrieved": [{"rank": p["n"], **{key: p[key] for key in RETRIEVED_KEYS}} for p in passages],
            "unsupported": [],
            "notices": [NOTICE.format(k=self.top_k)],
            "plan": {"question": question, "shape": "fact", "reason": "the naive pipeline answers every question so"},
            "evidence": {},
            "evidence_score": 0.0,
            "index_hash": self.index_hash(),
            "models": self.model_names(),
            "timings_ms": {"retrieve": elapsed, "answer": 0.0, "total": elapsed},
        }

    def _documents(self) -> list[Document]:
        """The corpus files as LlamaIndex documents; the catalog only names them, it never shapes a chunk."""
        corpus_dir = self.settings.corpus_dir
        catalog = load_catalog(corpus_dir)
        documents = []
        for path in corpus_files(corpus_dir):
            key = path.relative_to(corpus_dir).as_posix()
            try:
                text = load_text(path)
            except LoadError as exc:
                log.warning("Naive baseline skips %s: %s", key, exc)
                continue
            info = catalog.get(key) or catalog.get(path.name)
            metadata = {
                "doc_id": info.id if info else path.stem,
                "title": info.title if info else path.stem,
                "issuer": info.issuer if info else "",
                "date": info.date if info else "",
                "section": "",  # the default splitter knows no structure; `citation` reads these two
                "page": "",
            }
            # Kept out of the embedded and LLM text, so the catalog cannot help the baseline retrieve.
            hidden = list(metadata)
            documents.append(
                Document(text=text, metadata=metadata, excluded_embed_metadata_keys=hidden, excluded_llm_metadata_keys=hidden)
            )
        return documents

