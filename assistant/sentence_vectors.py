"""Store stage, second half: the vectors of every text the question path embeds for a passage.

Answering a question scores each sentence of some twenty passages, in two readings, and looks for
the question's words among the passages' words (`reranking.score_sentences`,
`evidence.closeness`). Embedded at question time, that is a few hundred encoder calls: 1.8 to
4.4 s for a question in a process that has not seen those passages yet. Embedded once at ingest
and read here, a question costs one encoder call, for itself.

Layout, under `index_dir/sentences/`, one pair of files per document:
    <doc_id>.npy     float32 vectors, one row per text, memory-mapped when read
    <doc_id>.json    the texts, in row order, the document's content hash and how its texts were cut

They are written with the document's chunks and deleted with them, so an unchanged document is
not embedded again and a removed one leaves nothing. The JSON file is written last: a document
without it has no vectors here, and its texts are embedded when a question needs them. Vectors
are looked up by text, so a reading this index lacks (after a change to how sentences are cut) is
embedded at question time, never answered with a wrong vector. Only documents the manifest lists
are read, and again whenever an ingest (here or in another process) rewrote the manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class SentenceVectors:
    """The stored vectors of an index folder, by text."""

    def __init__(self, folder: Path, manifest_path: Path) -> None:
        self.folder = folder
        self.manifest_path = manifest_path
        self._lock = threading.Lock()
        self._stamp = 0  # the manifest's mtime when loaded
        self._rows: dict[str, tuple[np.ndarray, int]] = {}  # text -> (its document's matrix, row)

    def write(self, doc_id: str, sha256: str, texts: Sequence[str], vectors: np.ndarray, version: int) -> None:
        """Store a document's texts and vectors, replacing what it had; `version` is how its texts were cut."""
        self.folder.mkdir(parents=True, exist_ok=True)
        base = self.folder / doc_id
        self.delete(doc_id)
        partial = base.with_suffix(".npy.tmp")
        with open(partial, "wb") as handle:
            np.save(handle, np.asarray(vectors, dtype=np.float32))
        os.replace(partial, base.with_suffix(".npy"))
        partial = base.with_suffix(".json.tmp")
        partial.write_text(json.dumps({"sha256": sha256, "version": version, "texts": list(texts)}))
        os.replace(partial, base.with_suffix(".json"))

    def holds(self, doc_id: str, sha256: str, version: int) -> bool:
        """Whether the vectors of that version of the document are stored, its texts cut the `version` way."""
        try:
            stored = json.loads((self.folder / doc_id).with_suffix(".json").read_text())
            return bool(stored["sha256"] == sha256 and stored.get("version") == version)
        except (OSError, ValueError, KeyError):
            return False

    def delete(self, doc_id: str) -> None:
        """Forget a document's vectors: its texts go first, so that no reader pairs them with other rows."""
        for suffix in (".json", ".npy"):
            (self.folder / doc_id).with_suffix(suffix).unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        with self._lock:
            self._rows, self._stamp = {}, 0

    def lookup(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those of `texts` the index holds."""
        self._load()
        rows = self._rows
        return {text: found[0][found[1]] for text in texts if (found := rows.get(text)) is not None}

    def __len__(self) -> int:
        self._load()
        return len(self._rows)

    def _load(self) -> None:
        try:
            stamp = self.manifest_path.stat().st_mtime_ns
        except OSError:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            manifest = json.loads(self.manifest_path.read_text())
            listed = {entry["doc_id"]: entry["sha256"] for entry in manifest.get("documents", {}).values()}
            rows: dict[str, tuple[np.ndarray, int]] = {}
            for doc_id, sha256 in listed.items():
                base = self.folder / doc_id
                try:
                    stored = json.loads(base.with_suffix(".json").read_text())
                    # Still paged in from the file, but read as a plain array: a memmap row costs ten times more to take.
                    matrix = np.load(base.with_suffix(".npy"), mmap_mode="r").view(np.ndarray)
                except (OSError, ValueError):
                    continue  # not embedded yet, or being rewritten: its texts are embedded when asked
                if stored["sha256"] != sha256 or len(stored["texts"]) != len(matrix):
                    continue  # another version of the document than the index holds
                rows.update((text, (matrix, row)) for row, text in enumerate(stored["texts"]))
            self._rows, self._stamp = rows, stamp
