"""Ingestion: corpus files -> load -> clean -> chunk -> embed -> store, incremental by content hash.

Each chunk is embedded whole for retrieval, and its sentences and words one by one for the
question path (`question_texts`), so that a question embeds nothing but itself.

The clean and chunk stages run as LlamaIndex transformations inside an `IngestionPipeline`, with
our embedding model as its last step; loading, hashing and storing are ours, because skipping
unchanged files, replacing changed ones and forgetting removed ones must also keep the keyword
index and the manifest in step with Chroma.

    >>> summary = ingest(Settings(corpus_dir="corpus", index_dir="/tmp/idx"))  # doctest: +SKIP
    >>> summary.as_dict()["chunks"]                                           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, Document, MetadataMode, NodeWithScore, TextNode, TransformComponent

from assistant.catalog import CATALOG_FILE, DocumentInfo, load_catalog, uncatalogued
from assistant.chunking import StructureChunker, embed_prefix
from assistant.cleaning import clean_text
from assistant.embedding import SentenceTransformerEmbedding, TokenCounter
from assistant.evidence import passage_text, words
from assistant.loaders import SUPPORTED, LoadError, load_text
from assistant.reranking import answer_sentences, in_context
from assistant.settings import Settings
from assistant.store import ChunkStore, Manifest

log = logging.getLogger(__name__)
# Documents are chunked, embedded and stored in slices of about this much text (some 4,000
# chunks), so that an ingest holds one slice's chunks and vectors in memory, not the corpus's: at
# 100,000 chunks, all at once (and a second copy in LlamaIndex's cache) took 3.3 GiB. The bundled
# corpus (0.65 MB) is one slice.
SLICE_CHARS = 2_000_000
# A vector graph that a search no longer covers is rebuilt when more than this share of the chunks
# is out of reach. Deletions leave many (54 to 233 of the shipped index's 1,402 after a rebuild by
# deletion, chroma-core/chroma#7758); a graph built afresh leaves a few strays at scale (16 of
# 102,064), which rebuilding it again, 150 s there, would not mend.
LOST_SHARE = 0.001


class TextCleaner(TransformComponent):
    """Pipeline step: `cleaning.clean_text` applied to each document."""

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        for node in nodes:
            if isinstance(node, Document):
                node.set_content(clean_text(node.text))
        return nodes


class StructureNodeParser(NodeParser):
    """Pipeline step: `chunking.StructureChunker` producing nodes that carry their citation data."""

    max_tokens: int
    overlap_sentences: int
    token_counter: Any

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        chunker = StructureChunker(self.max_tokens, self.token_counter.count, self.overlap_sentences)
        out: list[BaseNode] = []
        for document in nodes:
            meta = document.metadata
            for number, chunk in enumerate(chunker.split(document.get_content(), meta["title"])):
                digest = hashlib.sha1(chunk.text.encode()).hexdigest()[:8]
                node = TextNode(
                    id_=f"{meta['doc_id']}:{number:05d}:{digest}",
                    text=chunk.text,
                    start_char_idx=chunk.start,
                    end_char_idx=chunk.end,
                    metadata={
                        **meta,
                        "section": chunk.section,
                        "part": chunk.section.split(" > ")[0],
                        "heading": chunk.heading,
                        "page": chunk.page or 0,
                        "start": chunk.start,
                        "end": chunk.end,
                        "context": embed_prefix(meta["title"], chunk.heading, chunk.section).rstrip("\n"),
                        **({"defines": list(chunk.defines)} if chunk.defines else {}),  # Chroma takes no empty list
                    },
                    metadata_template="{value}",
                    text_template="{metadata_str}\n{content}",
                )
                node.excluded_embed_metadata_keys = [k for k in node.metadata if k != "context"]
                node.excluded_llm_metadata_keys = list(node.metadata)
                out.append(node)
        return out


@dataclass
class IngestSummary:
    """What `ingest` did; `as_dict()` is the `ingest --json` object."""

    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    readings: int = 0  # sentences and words embedded for the question path (see `question_texts`)
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "readings": self.readings,
            "skipped": self.skipped,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every file under the corpus folder except the catalog and hidden files, sorted."""
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"The corpus folder {corpus_dir} does not exist; set ASSISTANT_CORPUS_DIR.")
    return sorted(
        p for p in corpus_dir.rglob("*")
        if p.is_file() and p.name != CATALOG_FILE and not any(part.startswith(".") for part in p.relative_to(corpus_dir).parts)
    )


def ingest(
    settings: Settings,
    embed_model: SentenceTransformerEmbedding,
    store: ChunkStore,
    rebuild: bool = False,
    show_progress: bool = False,
) -> IngestSummary:
    """Bring the index in line with the corpus folder, embedding only what changed."""
    began = time.perf_counter()
    summary = IngestSummary()
    catalog = load_catalog(settings.corpus_dir)
    with store.writer_lock():
        if rebuild:
            store.clear()
        store.check_shape()
        manifest = store.manifest() or Manifest(shape=settings.index_shape())
        seen: set[str] = set()
        to_embed: list[Document] = []
        infos: dict[str, DocumentInfo] = {}
        used_ids = {info.id for info in catalog.values()}
        for path in corpus_files(settings.corpus_dir):
            key = path.relative_to(settings.corpus_dir).as_posix()
            seen.add(key)
            if path.suffix.lower() not in SUPPORTED:
                summary.skipped.append({"file": key, "reason": f"unsupported file type {path.suffix or '(none)'}"})
                continue
            entry = catalog.get(key) or catalog.get(path.name)
            # The catalog entry is hashed with the file: its title and aliases shape chunks and scope.
            catalogued = json.dumps(entry.as_dict() if entry else None, sort_keys=True).encode()
            digest = hashlib.sha256(path.read_bytes() + catalogued).hexdigest()
            previous = manifest.documents.get(key)
            if previous and previous["sha256"] == digest:
                continue
            try:
                text = load_text(path)
            except LoadError as exc:
                reason = str(exc) + ("; the previously indexed version is kept" if previous else "")
                summary.skipped.append({"file": key, "reason": reason})
                continue
            info = entry
            if info is None:
                info = uncatalogued(path, next((ln for ln in text.splitlines() if ln.strip()), ""))
                while info.id in used_ids:
                    info = replace(info, id=info.id + "-x")
                summary.warnings.append(f"{key} is not in {CATALOG_FILE}; ingested as {info.id!r} titled {info.title!r}")
            used_ids.add(info.id)
            to_embed.append(_document(info, key, digest, text))
            infos[key] = info

        pipeline = _pipeline(settings, embed_model)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for part in slices(to_embed, SLICE_CHARS):
            nodes = pipeline.run(documents=part, show_progress=show_progress)
            summary.embedded += _store(part, nodes, infos, store, manifest, now)
        removed = [k for k in manifest.documents if k not in seen]
        for key in removed:
            store.delete_document(manifest.documents.pop(key)["doc_id"])
        swept = _sweep_orphans(store, manifest)
        summary.readings = _store_readings(manifest, store, embed_model, show_progress)
        wrote = bool(to_embed or removed or swept or rebuild)
        if wrote:
            store.settle()
        lost = store.unreachable()
        if lost > LOST_SHARE * store.count():  # lost to deletions (see `ChunkStore.clear`): rebuilt, nothing embedded
            store.compact()
            summary.warnings.append(
                f"{lost} of {store.count()} passages could no longer be found by vector search (a Chroma "
                "defect after deletions, chroma-core/chroma#7758); the vector index was rebuilt from "
                "the stored vectors, nothing re-embedded."
            )
        if wrote or store.keyword_outdated():
            store.rebuild_keyword_index()
        manifest.write(store.manifest_path)
    summary.documents = len(manifest.documents)
    summary.chunks = sum(int(d["chunks"]) for d in manifest.documents.values())
    summary.seconds = time.perf_counter() - began
    for warning in summary.warnings:
        log.warning(warning)
    return summary


def slices(documents: list[Document], chars: int) -> Iterator[list[Document]]:
    """Documents in runs of about `chars` characters of text (a longer document alone), in order.

    >>> docs = [Document(text="x" * n) for n in (40, 30, 50, 10)]
    >>> [[len(d.text) for d in part] for part in slices(docs, 60)]
    [[40, 30], [50, 10]]
    """
    part: list[Document] = []
    size = 0
    for document in documents:
        part.append(document)
        size += len(document.text)
        if size >= chars:
            yield part
            part, size = [], 0
    if part:
        yield part


def _store(
    documents: list[Document],
    nodes: Sequence[BaseNode],
    infos: dict[str, DocumentInfo],
    store: ChunkStore,
    manifest: Manifest,
    now: str,
) -> int:
    """Replace each document's chunks in Chroma with its new ones and list it in the manifest.

    Returns the chunks stored. The manifest is only updated in memory; `ingest` writes it last.
    """
    by_doc: dict[str, list[BaseNode]] = defaultdict(list)
    for node in nodes:
        by_doc[node.metadata["file"]].append(node)
    stored = 0
    for document in documents:
        key = document.metadata["file"]
        doc_nodes = by_doc.get(key, [])
        old = manifest.documents.get(key)
        if old:
            store.delete_document(old["doc_id"])
        store.delete_document(document.metadata["doc_id"])
        store.upsert(
            ids=[n.node_id for n in doc_nodes],
            texts=[n.get_content(metadata_mode=MetadataMode.NONE) for n in doc_nodes],
            embeddings=[n.embedding or [] for n in doc_nodes],
            metadatas=[n.metadata for n in doc_nodes],
        )
        info = infos[key]
        manifest.documents[key] = {
            "doc_id": info.id,
            "title": info.title,
            "issuer": info.issuer,
            "date": info.date,
            "kind": info.kind,
            "source": info.source,
            "reuse": info.reuse,
            "catalogued": info.catalogued,
            "aliases": list(info.aliases),
            "sha256": document.metadata["sha256"],
            "chunks": len(doc_nodes),
            "indexed_at": now,
        }
        stored += len(doc_nodes)
    return stored


# Bumped whenever `question_texts` (or `reranking.answer_sentences`, which it reads) changes, so that
# the next ingest stores every document's texts again; until then a text the store lacks is embedded
# when a question needs it.
READINGS_VERSION = 3


def question_texts(text: str, metadata: Mapping[str, Any]) -> list[str]:
    """What answering a question embeds of a passage: each answer sentence in its two readings, each word alone.

    The readings are those `reranking.score_sentences` compares with the question, the words those
    `evidence.closeness` compares with its words; stored at ingest, they are looked up, not embedded.

    >>> question_texts("Fines apply to providers.", {"title": "Act", "heading": "Penalties"})
    ['Penalties: Fines apply to providers.', 'Fines apply to providers.', 'act', 'apply', 'fines', 'penalties', 'providers', 'to']
    """
    readings = []
    for sentence in answer_sentences(text, metadata):
        readings += [in_context(sentence, metadata), sentence]
    passage = NodeWithScore(node=TextNode(text=text, metadata=dict(metadata)))
    return list(dict.fromkeys(readings + words(passage_text(passage))))


def _store_readings(manifest: Manifest, store: ChunkStore, embed_model: SentenceTransformerEmbedding,
                    show_progress: bool) -> int:
    """Embed and store the `question_texts` of every listed document whose version has none; returns how many.

    Those are the documents this ingest embedded, and any an earlier one left without them (an
    index made before they were stored, an ingest interrupted between the two). Their chunks are
    read back from the store, documents of about `SLICE_CHARS` together: one encoder call each.
    """
    lacking = [e for e in manifest.documents.values()
               if not store.sentences.holds(e["doc_id"], e["sha256"], READINGS_VERSION)]
    stored = 0
    group: list[dict[str, Any]] = []
    for position, entry in enumerate(lacking):
        group.append(entry)
        if position + 1 < len(lacking) and sum(int(e["chunks"]) for e in group) < SLICE_CHARS // 500:
            continue  # about 500 characters a chunk
        texts: dict[str, list[str]] = {e["doc_id"]: [] for e in group}
        for chunk in store.chunks(doc_ids=list(texts)):
            texts[chunk.metadata["doc_id"]] += question_texts(chunk.text, chunk.metadata)
        distinct = list(dict.fromkeys(text for doc_texts in texts.values() for text in doc_texts))
        vectors = embed_model.encode(distinct, show_progress) if distinct else np.zeros((0, 0))
        row = {text: i for i, text in enumerate(distinct)}
        for e in group:
            own = list(dict.fromkeys(texts[e["doc_id"]]))
            store.sentences.write(e["doc_id"], e["sha256"], own, vectors[[row[t] for t in own]], READINGS_VERSION)
        stored += len(distinct)
        group = []
    return stored


def _sweep_orphans(store: ChunkStore, manifest: Manifest) -> bool:
    """Delete chunks of documents the manifest does not list; True if there were any.

    An ingest killed after storing a document's chunks but before writing the manifest leaves
    them behind; when that file is gone by the next ingest, nothing else would ever remove them.
    The chunks are only read (in pages) when Chroma holds more than the manifest counts.
    """
    if store.count() == sum(int(d["chunks"]) for d in manifest.documents.values()):
        return False
    listed = {entry["doc_id"] for entry in manifest.documents.values()}
    orphans = {chunk.metadata["doc_id"] for chunk in store.chunks()} - listed
    for doc_id in orphans:
        store.delete_document(doc_id)
    return bool(orphans)


def _document(info: DocumentInfo, key: str, digest: str, text: str) -> Document:
    metadata = {
        "doc_id": info.id,
        "file": key,
        "sha256": digest,
        "title": info.title,
        "issuer": info.issuer,
        "date": info.date,
        "date_key": info.date_key,
        "kind": info.kind,
    }
    return Document(id_=info.id, text=text, metadata=metadata)


def _pipeline(settings: Settings, embed_model: SentenceTransformerEmbedding) -> IngestionPipeline:
    counter = TokenCounter(embed_model.model_path)
    max_tokens = min(settings.chunking.max_tokens, counter.model_limit) - 2  # the prefix's joining newline
    parser = StructureNodeParser(
        max_tokens=max_tokens,
        overlap_sentences=settings.chunking.overlap_sentences,
        token_counter=counter,
        include_prev_next_rel=False,
    )
    # No transformation cache: ours is the manifest's content hashes, and LlamaIndex's default
    # in-memory cache would keep every slice's embedded nodes until the ingest ends.
    return IngestionPipeline(transformations=[TextCleaner(), parser, embed_model], disable_cache=True)


def progress_wanted() -> bool:
    return sys.stderr.isatty()
