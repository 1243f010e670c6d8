"""The corpus catalog (`corpus/catalog.toml`): what each document is, who issued it, and when.

Citations show these facts, filters select on them, and staff check sources against them, so they
come from a hand-kept catalog rather than being guessed from file contents. A file the catalog does
not list is still ingested, described from its own name and first line, with a warning.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CATALOG_FILE = "catalog.toml"
KINDS = ("meeting summary", "concept note", "article", "regulation", "recommendation")


class CatalogError(ValueError):
    """The catalog file is unreadable or an entry is malformed."""


@dataclass(frozen=True)
class DocumentInfo:
    """One catalog entry.

    >>> DocumentInfo("oecd-ai-2019", "oecd.md", "OECD AI Principles", "OECD", "2019-05-22",
    ...              "recommendation", "OECD", "cite").date_key
    20190522
    """

    id: str
    file: str
    title: str
    issuer: str
    date: str
    kind: str
    source: str
    reuse: str
    aliases: tuple[str, ...] = ()
    catalogued: bool = True

    @property
    def date_key(self) -> int:
        """The date as YYYYMMDD for range filters; a missing month or day counts as 01."""
        return date_key(self.date)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def date_key(iso: str) -> int:
    """`2026-02-05` -> 20260205, `2026` -> 20260101, '' -> 0."""
    parts = [int(p) for p in re.findall(r"\d+", iso)[:3]]
    if not parts:
        return 0
    year, month, day = (parts + [1, 1])[:3]
    return year * 10000 + month * 100 + day


def load_catalog(corpus_dir: Path) -> dict[str, DocumentInfo]:
    """Catalog entries keyed by file name; an absent catalog is an empty one."""
    path = corpus_dir / CATALOG_FILE
    if not path.exists():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path} is not valid TOML: {exc}") from exc
    entries: dict[str, DocumentInfo] = {}
    for position, item in enumerate(raw.get("document", []), start=1):
        try:
            fields: dict[str, Any] = {k: tuple(map(str, v)) if isinstance(v, list) else str(v) for k, v in item.items()}
            info = DocumentInfo(**fields)
        except TypeError as exc:
            raise CatalogError(f"{path}: document #{position} is malformed: {exc}") from exc
        if info.kind not in KINDS:
            raise CatalogError(f"{path}: document {info.id!r} has unknown kind {info.kind!r}")
        entries[info.file] = info
    ids = [e.id for e in entries.values()]
    if len(ids) != len(set(ids)):
        raise CatalogError(f"{path}: document ids are not unique")
    return entries


def uncatalogued(path: Path, first_line: str) -> DocumentInfo:
    """An entry for a file missing from the catalog: its id from the file name, title from its text."""
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "document"
    title = re.sub(r"^[#\s]+", "", first_line).strip()[:120] or path.stem
    return DocumentInfo(
        id=slug,
        file=path.name,
        title=title,
        issuer="unknown",
        date="",
        kind="unknown",
        source=path.name,
        reuse="unknown: not in the catalog",
        catalogued=False,
    )
