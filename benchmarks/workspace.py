"""Where a benchmark keeps its index and scratch files: a temporary folder, never the repo's `indexes/`.

    >>> with workspace(None, "bench-query-") as (index_dir, scratch):  # doctest: +SKIP
    ...     Assistant(Settings(index_dir=index_dir)).ingest()
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.served_app import REPO


@contextmanager
def workspace(chosen_index: Path | None, prefix: str) -> Iterator[tuple[Path, Path]]:
    """(index folder, scratch folder), both removed afterwards unless the index folder was chosen.

    A chosen index folder (`--index-dir`) is kept, so that a second run reuses the index instead of
    embedding the corpus again; the ingest brings it up to date either way.
    """
    if chosen_index is not None and chosen_index.resolve() == (REPO / "indexes").resolve():
        raise SystemExit("--index-dir must not be the repository's indexes/: benchmarks build their own")
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        scratch = Path(tmp)
        yield (chosen_index.resolve() if chosen_index is not None else scratch / "index"), scratch
