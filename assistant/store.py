"""Store stage: Chroma for vectors, a BM25 keyword index beside it, and a manifest that ties them.

Layout of `index_dir`:
    chroma/          Chroma's PersistentClient (absent when a Chroma server URL is set)
    keyword/         the BM25 index and the chunk ids and filter fields it covers
    sentences/       the vectors of each document's sentences and words (see `sentence_vectors`)
    manifest.json    the settings that shaped the index, and each document's content hash

The manifest is written last and atomically, after Chroma and the keyword index, so an ingest
interrupted at any point leaves a manifest that describes less than is stored; the next ingest
re-does the documents it does not list (their chunk ids are deterministic, so nothing doubles)
and rebuilds the keyword index from Chroma, the single source of truth for chunk texts.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import snowballstemmer

from assistant.sentence_vectors import SentenceVectors
from assistant.settings import Settings
from assistant.wording import normalise

COLLECTION = "governance-passages"
_COMPACTED = f"{COLLECTION}-compacted"  # where `compact` builds the collection that replaces it
SYNC_THRESHOLD = 1000  # Chroma's default: a local collection's vector graph is saved after this many writes
_SEGMENT_DIR = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # a local vector index's folder
FILTER_FIELDS = ("doc_id", "issuer", "kind", "date_key", "part")  # what keyword-search filters can test
# Snowball's English stemmer (Porter2): it keeps "community" apart from "communication" and "general" from
# "generate", which Porter merges; and it imports in milliseconds, where NLTK's Porter pulls in SciPy (1-2 s
# of every `ask` from process start).
_STEMMER = snowballstemmer.stemmer("english")
_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will", "with", "what", "which", "who", "whom", "how", "when", "where", "why", "do", "does", "did", "not", "no", "can", "could", "should", "would", "may", "might", "shall", "their", "they", "them", "there", "these", "those", "than", "then", "so", "such", "into", "about", "also", "been", "being", "but", "if", "i", "we", "you", "he", "she", "our", "your", "his", "her", "all", "any", "each", "other", "more", "most", "some"]
)


class IndexUnavailable(RuntimeError):
    """The index is missing, inconsistent, built with other settings, or out of reach."""


# Bumped whenever `keyword_tokens` changes, so that the next ingest rebuilds the keyword index.
TOKENS_VERSION = 3


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed words and numbers without stop words, in one spelling (see `wording`).

    >>> keyword_tokens("Fines for the Korean organisations: EUR 35,000,000")
    ['fine', 'korea', 'organiz', 'eur', '35000000']
    """
    return list(_tokens(text))


@lru_cache(maxsize=50_000)
def _tokens(text: str) -> tuple[str, ...]:
    """`keyword_tokens`, remembered: the question path reads each sentence's tokens several times."""
    words = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", re.sub(r"['’]s\b", "", normalise(text).lower()))
    return tuple(_stem(w) for w in words if w not in _STOPWORDS)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


@dataclass
class Manifest:
    """What the index holds and the settings that shaped it."""

    shape: dict[str, Any]
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(shape=raw["shape"], documents=raw["documents"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexUnavailable(
                f"The index manifest {path} is damaged ({exc}); "
                "run `python -m assistant ingest --rebuild`."
            ) from exc

    def corpus_hash(self) -> str:
        """A short hash of the documents indexed, from each one's `sha256` (its bytes and catalog entry).

        The index hash says how the index was built, this one what it holds: two eval runs, or a
        calibration and the index it is used with, that differ here were not on the same documents.

        >>> a = Manifest({}, {"a.txt": {"sha256": "1", "indexed_at": "monday"}})
        >>> a.corpus_hash() == Manifest({}, {"a.txt": {"sha256": "1", "indexed_at": "friday"}}).corpus_hash()
        True
        """
        digests = sorted((key, entry["sha256"]) for key, entry in self.documents.items())
        return hashlib.sha256(json.dumps(digests).encode()).hexdigest()[:12]

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"shape": self.shape, "documents": self.documents}, indent=2))
        os.replace(tmp, path)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as it comes back from the store."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float


@dataclass(frozen=True)
class KeywordIndex:
    """BM25 over the chunks, with each row's chunk id and filter fields held as columns.

    Columns, not a dict per row: a filter is then a few vectorised comparisons over 100,000 rows
    (well under a millisecond) where a Python test per row took 100 ms.
    """

    bm25: Any  # a bm25s.BM25, or None when the index holds no chunk
    ids: list[str]
    columns: Mapping[str, np.ndarray]

    @classmethod
    def from_rows(cls, bm25: Any, rows: Sequence[Mapping[str, Any]]) -> KeywordIndex:
        columns = {
            key: np.array([row.get(key) or 0 for row in rows], dtype=np.int64)
            if key == "date_key"
            else np.array([row.get(key) or "" for row in rows], dtype=str)
            for key in FILTER_FIELDS
        }
        return cls(bm25, [row["id"] for row in rows], columns)


class ChunkStore:
    """Chroma collection + BM25 keyword index + sentence vectors, opened against the settings that must match.

        >>> store = ChunkStore(Settings(index_dir="/tmp/example-index"))  # doctest: +SKIP
        >>> store.dense_search(query_vector, k=5)                           # doctest: +SKIP
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = Path(settings.index_dir)
        self.manifest_path = self.dir / "manifest.json"
        self.keyword_dir = self.dir / "keyword"
        self.sentences = SentenceVectors(self.dir / "sentences", self.manifest_path)
        self._client: Any = None
        self._collection: Any = None
        self._opening = threading.RLock()  # two threads opening Chroma at once break its client
        self._writing = False  # inside `writer_lock`: only a writer creates the collection
        # swapped whole, so that a question never sees a BM25 index with another index's rows
        self._keyword = KeywordIndex.from_rows(None, [])
        self._keyword_stamp = 0  # rows.json's mtime when loaded: another process's ingest changes it
        self._catalog: tuple[int, frozenset[str]] = (0, frozenset())  # manifest's mtime, its catalog's terms

    # -- opening ---------------------------------------------------------------------------

    @property
    def collection(self) -> Any:
        """The Chroma collection, every call to which turns a failure into `IndexUnavailable`."""
        with self._opening:
            if self._collection is None:
                self._collection = _Guarded(self._open(), self._unavailable)
        return self._collection

    def _chroma(self) -> Any:
        """The Chroma client (made once): a server's when `chroma_url` is set, else a folder's."""
        if self._client is None:
            import chromadb

            chroma_settings = chromadb.Settings(anonymized_telemetry=False)
            if self.settings.chroma_url:
                from urllib.parse import urlparse

                url = urlparse(self.settings.chroma_url)
                self._client = chromadb.HttpClient(
                    host=url.hostname or "127.0.0.1",
                    port=url.port or 8000,
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
            else:
                self.dir.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(self.dir / "chroma"), settings=chroma_settings)
        return self._client

    def _open(self, name: str = COLLECTION) -> Any:
        try:
            if not self._writing:  # a reader never creates one: not an empty one mid-`compact`
                return self._chroma().get_collection(name, embedding_function=None)
            return self._chroma().get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        except Exception as exc:  # chromadb raises many types for an unreachable or broken store
            raise self._unavailable("is unavailable", exc) from exc

    def _unavailable(self, what: str, exc: Exception) -> IndexUnavailable:
        """The error to show, having forgotten the collection: the next call opens it again by
        name, so a collection that an ingest replaced (see `clear`, `compact`) is found anew."""
        self._collection = None
        cause = f"{exc.__class__.__name__}: {str(exc)[:300]}"  # a rejected write's message quotes its whole batch
        if self.settings.chroma_url:
            return IndexUnavailable(
                f"The Chroma server at {self.settings.chroma_url} {what} ({cause}). "
                "Check that it is running; the assistant reconnects by itself once it is back."
            )
        return IndexUnavailable(
            f"The index at {self.dir / 'chroma'} {what} ({cause}). "
            "Run `python -m assistant ingest --rebuild`."
        )

    def manifest(self) -> Manifest | None:
        return Manifest.read(self.manifest_path)

    def check_shape(self) -> None:
        """Refuse an index built with settings other than the current ones."""
        manifest = self.manifest()
        if manifest is None:
            return
        wanted = self.settings.index_shape()
        if manifest.shape != wanted:
            diff = ", ".join(
                f"{k}: index has {manifest.shape.get(k)!r}, settings say {wanted.get(k)!r}"
                for k in sorted(set(wanted) | set(manifest.shape))
                if manifest.shape.get(k) != wanted.get(k)
            )
            raise IndexUnavailable(
                f"The index in {self.dir} was built with other settings ({diff}). "
                "Run `python -m assistant ingest --rebuild` to rebuild it with the current ones."
            )

    def check_ready(self) -> Manifest:
        """The manifest of a complete, consistent index, or a clear error saying what to run."""
        manifest = self.manifest()
        if manifest is None:
            raise IndexUnavailable(f"No index in {self.dir} yet; run `python -m assistant ingest` first.")
        self.check_shape()
        self._load_keyword()
        stored = self.count()
        expected = sum(int(d["chunks"]) for d in manifest.documents.values())
        rows = len(self._keyword.ids)
        if stored != expected or rows != expected:
            raise IndexUnavailable(
                f"The index in {self.dir} is incomplete or damaged (manifest: {expected} chunks, "
                f"Chroma: {stored}, keyword index: {rows}). "
                "Run `python -m assistant ingest` to complete it, or `ingest --rebuild`."
            )
        return manifest

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer at a time: a second ingest stops at once with a message naming the lock."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.dir / ".ingest.lock"
        with open(lock_path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IndexUnavailable(
                    f"Another ingest is writing this index (lock {lock_path}); wait for it to finish."
                ) from exc
            self._writing = True
            try:
                yield
            finally:
                self._writing = False
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- writing ---------------------------------------------------------------------------

    def upsert(self, ids: Sequence[str], texts: Sequence[str], embeddings: Sequence[Sequence[float]],
               metadatas: Sequence[dict[str, Any]]) -> None:
        batch = 1000
        for start in range(0, len(ids), batch):
            end = start + batch
            self.collection.upsert(
                ids=list(ids[start:end]),
                documents=list(texts[start:end]),
                embeddings=[list(e) for e in embeddings[start:end]],
                metadatas=list(metadatas[start:end]),
            )

    def delete_document(self, doc_id: str) -> None:
        self.sentences.delete(doc_id)
        self.collection.delete(where={"doc_id": doc_id})

    def clear(self) -> None:
        """Drop the manifest and every chunk, with the collection itself (for `--rebuild`).

        A new collection, not the old one emptied: Chroma 1.5 keeps a deleted chunk's place in
        its vector graph, and after deletions and upserts some live chunks are never found by a
        search again (chroma-core/chroma#7758). Emptied and refilled, the shipped index lost 54 of
        its 1,404 chunks to search that way, among them the AI Act's definition of an AI system.
        """
        self.manifest_path.unlink(missing_ok=True)  # first: an interrupted rebuild then asks for an ingest
        stale = self._segment_dirs()
        self._drop(COLLECTION)
        self._drop(_COMPACTED)
        self._remove(stale)
        self.sentences.clear()

    def _segment_dirs(self) -> list[Path]:
        """The folders of the vector indexes in a local Chroma folder (this store's alone)."""
        root = self.dir / "chroma"
        if self.settings.chroma_url or not root.is_dir():
            return []
        return [path for path in root.iterdir() if path.is_dir() and _SEGMENT_DIR.fullmatch(path.name)]

    @staticmethod
    def _remove(stale: list[Path]) -> None:
        """Delete the folders of dropped collections: Chroma 1.5 leaves them behind
        (chroma-core/chroma#5259), 173 MB each at 102,064 chunks."""
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)

    def _drop(self, name: str) -> None:
        try:
            if name in {c.name for c in self._chroma().list_collections()}:
                self._chroma().delete_collection(name)
        except Exception as exc:  # chromadb raises many types for an unreachable or broken store
            raise self._unavailable(f"could not drop its collection {name!r}", exc) from exc
        self._collection = None

    def unreachable(self) -> int:
        """How many stored chunks a search for all of them, from a stored vector, does not return:
        those deletions cut off (see `clear`), and the few strays of any large graph. It takes
        10 ms at 1,400 chunks and 0.5 s at 100,000."""
        stored = self.count()
        if not stored:
            return 0
        probe = np.asarray(self.collection.get(limit=1, include=["embeddings"])["embeddings"][0], dtype=float)
        found = self.collection.query(query_embeddings=[probe.tolist()], n_results=stored, include=[])
        return stored - len(found["ids"][0])

    def compact(self, page: int = 1000) -> None:
        """Copy every chunk with its stored vector into a new collection that takes this one's
        place, its vector graph built afresh so that search reaches the chunks deletions had cut
        off; nothing is re-embedded. The manifest goes first, so an interrupted copy asks for an
        ingest (which then embeds everything again: slow, but never an index short of chunks)."""
        self.manifest_path.unlink(missing_ok=True)
        self._drop(_COMPACTED)  # left by an interrupted compaction
        stale = self._segment_dirs()  # before the new collection has a folder
        fresh = _Guarded(self._open(_COMPACTED), self._unavailable)
        for offset in itertools.count(0, page):
            found = self.collection.get(limit=page, offset=offset, include=["documents", "metadatas", "embeddings"])
            if len(found["ids"]):
                fresh.add(ids=found["ids"], documents=found["documents"], metadatas=found["metadatas"],
                          embeddings=found["embeddings"])
            if len(found["ids"]) < page:
                break
        with self._opening:  # no thread here opens the collection between the drop and the rename
            self._drop(COLLECTION)
            fresh.modify(name=COLLECTION)
        self._remove(stale)
        self.settle()

    def settle(self) -> None:
        """Save the whole vector graph to disk, so that every process searches the same graph.

        Chroma 1.5 saves a local collection's graph after every 1,000 writes (its `sync_threshold`)
        and, each time a process loads it, inserts the writes since then again, in parallel and in
        no fixed order. Two processes then searched two graphs: on the shipped index the same
        question got another dense top 10 in 7 of the QA set's 158 questions, and evaluation
        figures moved between runs of the same code. A load under a threshold of 1 saves the
        graph whole at once; the threshold then goes back to `SYNC_THRESHOLD` (also after an
        interrupted settle), so that writes do not each save it all. A Chroma server holds one
        graph for all its clients, and is left alone.
        """
        if self.settings.chroma_url or not self.count():
            return
        self.collection.modify(configuration={"hnsw": {"sync_threshold": 1}})
        self._reopen()
        probe = self.collection.get(limit=1, include=["embeddings"])["embeddings"][0]
        self.collection.query(query_embeddings=[list(probe)], n_results=1, include=[])  # loads, so saves
        self.collection.modify(configuration={"hnsw": {"sync_threshold": SYNC_THRESHOLD}})
        self._reopen()

    def _reopen(self) -> None:
        """Open the folder with a new Chroma client, which loads the collection from disk again.

        Chroma shares one client per folder within a process and keeps what that client loaded;
        other stores in this process keep the client they have.
        """
        from chromadb.api.shared_system_client import SharedSystemClient

        with self._opening:
            SharedSystemClient.clear_system_cache()
            self._client = None
            self._collection = None

    def rebuild_keyword_index(self) -> None:
        """Rebuild BM25 from the texts in Chroma, so the two indexes can never disagree."""
        import bm25s

        rows, corpus = [], []
        for chunk in self.chunks():
            rows.append({"id": chunk.id, **{k: chunk.metadata.get(k) for k in FILTER_FIELDS}})
            corpus.append(keyword_tokens(_keyword_text(chunk.text, chunk.metadata)))
        self.keyword_dir.mkdir(parents=True, exist_ok=True)
        retriever = bm25s.BM25(**self._bm25_params())
        if corpus:
            retriever.index(corpus, show_progress=False)
            retriever.save(str(self.keyword_dir))
        (self.keyword_dir / "tokens.json").write_text(json.dumps({"version": TOKENS_VERSION}))
        tmp = self.keyword_dir / "rows.tmp"
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, self.keyword_dir / "rows.json")  # last, so a reader never sees new rows with old BM25
        self._keyword = KeywordIndex.from_rows(retriever if corpus else None, rows)
        self._keyword_stamp = (self.keyword_dir / "rows.json").stat().st_mtime_ns

    def _bm25_params(self) -> dict[str, float]:
        return {"k1": self.settings.retrieval.bm25_k1, "b": self.settings.retrieval.bm25_b}

    def keyword_outdated(self) -> bool:
        """Whether the keyword index is missing, or was built with other BM25 parameters or tokens than now.

        BM25 scores are computed when the index is built, so new parameters need a rebuild: from
        Chroma's texts, in seconds, with nothing embedded. An index of no chunk has no BM25 to compare.
        """
        try:
            self._load_keyword()
            tokens = json.loads((self.keyword_dir / "tokens.json").read_text())["version"]
        except (IndexUnavailable, OSError, ValueError, KeyError):
            return True
        bm25 = self._keyword.bm25
        return tokens != TOKENS_VERSION or (bm25 is not None and {"k1": bm25.k1, "b": bm25.b} != self._bm25_params())

    # -- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.collection.count())

    def _load_keyword(self) -> None:
        """Load the keyword index, again whenever an ingest (here or in another process) rewrote it.

        App replicas that share an index folder written by one ingest job pick the new keyword
        index up at their next question; one stat per question is the cost.
        """
        rows_path = self.keyword_dir / "rows.json"
        try:
            stamp = rows_path.stat().st_mtime_ns
            if stamp == self._keyword_stamp:
                return
            rows = json.loads(rows_path.read_text())
            bm25 = None
            if rows:
                import bm25s

                bm25 = bm25s.BM25.load(str(self.keyword_dir))
            self._keyword = KeywordIndex.from_rows(bm25, rows)
            self._keyword_stamp = stamp
        except (OSError, ValueError) as exc:
            raise IndexUnavailable(
                f"The keyword index in {self.keyword_dir} is missing or damaged ({exc}); "
                "run `python -m assistant ingest --rebuild`."
            ) from exc

    def knows(self, term: str) -> bool:
        """Whether a keyword token (see `keyword_tokens`) occurs in a passage or a catalog entry of the index.

        A question may name a document by its issuer ("the Commonwealth parliamentarians' module"),
        which the document's own text never says.
        """
        self._load_keyword()
        bm25 = self._keyword.bm25
        return (bm25 is not None and term in bm25.vocab_dict) or term in self._catalog_terms()

    def documents_holding(self, term: str) -> set[str]:
        """The ids of the documents with a passage that holds a keyword token."""
        self._load_keyword()
        bm25 = self._keyword.bm25
        position = bm25.vocab_dict.get(term) if bm25 is not None else None
        if position is None:
            return set()
        indptr, rows = bm25.scores["indptr"], bm25.scores["indices"]
        end = indptr[position + 1] if position + 1 < len(indptr) else len(rows)
        return set(self._keyword.columns["doc_id"][rows[indptr[position]:end]].tolist())

    def _catalog_terms(self) -> frozenset[str]:
        """The keyword tokens of the catalog entries, read again only when an ingest rewrote the manifest."""
        try:
            stamp = self.manifest_path.stat().st_mtime_ns
        except OSError:
            return frozenset()
        if stamp != self._catalog[0]:
            manifest = self.manifest()
            entries = manifest.documents.values() if manifest else []
            self._catalog = (stamp, frozenset(
                t for e in entries for t in keyword_tokens(" ".join([e["title"], e["issuer"], *e.get("aliases", [])]))))
        return self._catalog[1]

    def rarity(self, term: str) -> float:
        """How rare a keyword token is in the index: log(N / passages holding it) / log(N), 1 when absent.

        A question word that many passages say ("AI", "system") tells little when the passages
        found lack it; one that few say ("insurance", "salary") is what the question is about.
        """
        self._load_keyword()
        bm25 = self._keyword.bm25
        position = bm25.vocab_dict.get(term) if bm25 is not None else None
        if position is None:
            return 1.0
        total = max(len(self._keyword.ids), 2)
        indptr = bm25.scores["indptr"]
        end = indptr[position + 1] if position + 1 < len(indptr) else len(bm25.scores["indices"])
        holding = max(int(end - indptr[position]), 1)  # passages holding it
        return float(np.log(total / holding) / np.log(total))

    def dense_search(self, vector: Sequence[float], k: int, where: dict[str, Any] | None) -> list[StoredChunk]:
        k = min(k, self.count())
        if k == 0:
            return []
        result = self.collection.query(
            query_embeddings=[list(vector)], n_results=k, where=where, include=["documents", "metadatas", "distances"]
        )
        return [
            StoredChunk(i, t, m, 1.0 - float(d))
            for i, t, m, d in zip(result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0])
        ]

    def keyword_search(
        self, query: str, k: int, select: Callable[[Mapping[str, np.ndarray]], np.ndarray | None] | None = None
    ) -> list[StoredChunk]:
        """BM25 top-k; `select(columns)` gives the rows the metadata filters keep (None: all)."""
        self._load_keyword()
        index = self._keyword
        bm25 = index.bm25
        tokens = [t for t in keyword_tokens(query) if bm25 is not None and t in bm25.vocab_dict]
        if not tokens:
            return []
        keep = select(index.columns) if select is not None else None
        scores = bm25.get_scores(tokens, weight_mask=None if keep is None else keep.astype(np.float32))
        top = _top_k(scores, k)
        if not top:
            return []
        ids = [index.ids[i] for i in top]
        found = self.collection.get(ids=ids, include=["documents", "metadatas"])
        by_id = {i: (t, m) for i, t, m in zip(found["ids"], found["documents"], found["metadatas"])}
        return [StoredChunk(i, *by_id[i], float(scores[j])) for i, j in zip(ids, top) if i in by_id]

    def surroundings(self, chunk_id: str, chars: int = 700) -> tuple[str, StoredChunk, str]:
        """The cleaned text just before and after a chunk, pieced together from its neighbours.

        Chunks record their character span in the cleaned document, so laying a document's chunks
        at their offsets rebuilds its text around any passage (gaps, such as heading lines, become
        line breaks) without keeping a second copy of every document. A PDF passage is shown within
        its page: only chunks of the same page are laid around it.
        """
        stored = self.get([chunk_id])
        if not stored:
            raise IndexUnavailable(f"Passage {chunk_id} is no longer in the index; ask the question again.")
        chunk = stored[0]
        start, end = int(chunk.metadata["start"]), int(chunk.metadata["end"])
        window = (max(0, start - chars), end + chars)
        where: dict[str, Any] = {"doc_id": chunk.metadata["doc_id"]}
        if chunk.metadata.get("page"):
            where = {"$and": [where, {"page": chunk.metadata["page"]}]}
        found = self.collection.get(where=where, include=["documents", "metadatas"])
        text = ["\n"] * (window[1] - window[0])
        for piece, meta in zip(found["documents"], found["metadatas"]):
            lo, hi = max(int(meta["start"]), window[0]), min(int(meta["end"]), window[1])
            offset = int(meta["start"])
            for at in range(lo, hi):
                text[at - window[0]] = piece[at - offset]
        joined = "".join(text)
        before = joined[: start - window[0]].lstrip("\n")
        after = joined[end - window[0] :].rstrip("\n")
        return before, chunk, after

    def chunks(self, page: int = 1000, doc_ids: Sequence[str] = ()) -> Iterator[StoredChunk]:
        """Every stored chunk (of `doc_ids` only, if given), a page at a time.

        Chroma on disk cannot return 100,000 in one call (its SQLite query runs out of variables:
        "too many SQL variables").
        """
        where = {"doc_id": {"$in": list(doc_ids)}} if doc_ids else None
        for offset in itertools.count(0, page):
            found = self.collection.get(limit=page, offset=offset, where=where, include=["documents", "metadatas"])
            yield from (StoredChunk(i, t, m, 0.0) for i, t, m in zip(found["ids"], found["documents"], found["metadatas"]))
            if len(found["ids"]) < page:
                return

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        found = self.collection.get(ids=list(ids), include=["documents", "metadatas"])
        return [StoredChunk(i, t, m, 0.0) for i, t, m in zip(found["ids"], found["documents"], found["metadatas"])]


class _Guarded:
    """A Chroma collection whose every method maps a failure to `IndexUnavailable`.

    A server that goes away mid-session (or files damaged under a running app) surface as one
    clear error type that the CLI and the chat word for people, never as an HTTP or SQLite trace.
    """

    def __init__(self, collection: Any, unavailable: Any) -> None:
        self._collection = collection
        self._unavailable = unavailable

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if not callable(attribute):
            return attribute

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except Exception as exc:  # chromadb raises many types for an unreachable or broken store
                raise self._unavailable("is unavailable", exc) from exc

        return guarded


def _top_k(scores: np.ndarray, k: int) -> list[int]:
    """The rows of the `k` best positive scores, best first, without sorting every score.

    >>> _top_k(np.array([0.0, 2.0, 0.5, 3.0, 1.0]), 3)
    [3, 1, 4]
    >>> _top_k(np.array([0.0, 1.0]), 5)
    [1]
    """
    if k <= 0:
        return []
    if k < len(scores):
        candidates = np.argpartition(-scores, k - 1)[:k]
    else:
        candidates = np.arange(len(scores))
    best = candidates[np.argsort(-scores[candidates], kind="stable")]
    return [int(i) for i in best if scores[i] > 0]


def _keyword_text(text: str, metadata: dict[str, Any]) -> str:
    """What BM25 indexes: the passage with its title and heading, as the embedding sees it."""
    return f"{metadata.get('title', '')} {metadata.get('heading', '')} {metadata.get('section', '')} {text}"
