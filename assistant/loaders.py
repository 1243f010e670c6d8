"""Load stage: turn a corpus file into plain text, keeping page boundaries.

Each format becomes text with markdown-style `#` headings where the format marks them (so the
chunker finds structure the same way everywhere), a DOCX table as `| a | b |` rows in reading
order, and form feeds (`\\f`) between PDF pages (so page numbers survive cleaning and chunking).
A DOCX has no fixed pages (they depend on how it is rendered), so its passages carry none; its
running headers and footers live outside the body and are never read. A file that cannot be read
raises `LoadError` with a reason a person can act on; ingestion skips it and reports the reason.
Corpus files are untrusted input: a hostile or broken file must end in `LoadError`, never in a
crash or an ingest that runs for hours.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

PAGE_BREAK = "\f"
SUPPORTED = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")
# Sixteen times the largest bundled document (the EU AI Act, 0.6 MB, about a minute to embed on two
# cores); a larger file would hold up the ingest for far longer than anyone waits, so it is skipped.
MAX_FILE_MB = 10
_DROPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "iframe", "object"})
_BLOCK_TAGS = frozenset({"p", "div", "li", "tr", "br", "section", "article"})
_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}


class LoadError(ValueError):
    """A file that cannot be ingested; the message says why and what to do."""


def load_text(path: Path) -> str:
    """The text of a supported file; PDF pages are separated by form feeds."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise LoadError(f"unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED)}")
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_FILE_MB:
        raise LoadError(f"file is larger than {MAX_FILE_MB} MB ({size_mb:,.1f} MB); split it into smaller files")
    data = path.read_bytes()
    if not data.strip():
        raise LoadError("empty file")
    if suffix == ".pdf":
        text = _pdf_text(path)
    elif suffix == ".docx":
        text = _docx_text(path)
    else:
        text = _decode(data)
        if suffix in (".html", ".htm"):
            text = html_to_text(text)
    if not text.strip():
        raise LoadError("no text found in the file")
    return text


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError("binary content, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(
            f"not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "save the file as UTF-8 and ingest again"
        ) from exc


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many unrelated types for malformed files
        raise LoadError(f"corrupt or unreadable PDF ({exc.__class__.__name__}: {exc})") from exc
    if not any(p.strip() for p in pages):
        raise LoadError("PDF has no text layer (probably scanned); run OCR on it first")
    return PAGE_BREAK.join(pages)


def _docx_text(path: Path) -> str:
    if not zipfile.is_zipfile(path):
        raise LoadError("corrupt DOCX (not a zip archive)")
    import docx

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises many unrelated types for broken packages
        raise LoadError(f"corrupt DOCX ({exc.__class__.__name__}: {exc})") from exc
    from docx.oxml.ns import qn
    from docx.table import Table

    for page_break in [br for br in document.element.body.iter(qn("w:br")) if br.get(qn("w:type")) == "page"]:
        # python-docx reads a page break as nothing, gluing the words on either side of it together
        space = page_break.makeelement(qn("w:t"), {"{http://www.w3.org/XML/1998/namespace}space": "preserve"})
        space.text = " "
        page_break.getparent().replace(page_break, space)
    lines = []
    for block in document.iter_inner_content():  # paragraphs and tables in document order
        if isinstance(block, Table):
            lines.append("\n".join(_docx_row(row.cells) for row in block.rows))
            continue
        style = block.style.name if block.style is not None else ""
        level = style.removeprefix("Heading ").strip()
        prefix = "#" * int(level) + " " if style.startswith("Heading ") and level.isdigit() else ""
        lines.append(prefix + block.text)
    return "\n\n".join(lines)


def _docx_row(cells: list[Any]) -> str:
    """A table row as `| a | b |`, its cells in order; a merged cell, which python-docx repeats, once."""
    texts = [" ".join(cell.text.split()) for index, cell in enumerate(cells)
             if index == 0 or cell._tc is not cells[index - 1]._tc]
    return "| " + " | ".join(texts) + " |"


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page: no tag, script, style or comment survives.

    Headings become `#` lines and block elements end their line. The tree is walked with a stack
    and never edited: BeautifulSoup's `insert_after` walks the whole subtree, so marking blocks in
    place took minutes for a page of 50,000 nested `<div>`s, and a recursive walk would overflow.

        >>> html_to_text("<h2>Scope</h2><div><p>One.</p>Two<br>three</div><script>x()</script>")
        '\\n\\n## Scope\\n\\nOne.\\nTwo\\nthree\\n'
    """
    from bs4 import BeautifulSoup, CData, NavigableString, PageElement, Tag

    pending: list[PageElement | str] = [BeautifulSoup(markup, "html.parser")]
    out: list[str] = []
    while pending:
        item = pending.pop()
        if isinstance(item, Tag):
            if item.name in _DROPPED_TAGS:
                continue
            if item.name in _HEADING_LEVELS:
                out.append("\n\n" + "#" * _HEADING_LEVELS[item.name] + " ")
                pending.append("\n\n")
            elif item.name in _BLOCK_TAGS:
                pending.append("\n")
            pending.extend(reversed(item.contents))
        elif isinstance(item, str) and type(item) in (str, NavigableString, CData):
            out.append(item)  # a line end queued above, or visible text (not a comment or doctype)
    return "".join(out)
