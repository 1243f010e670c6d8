"""Load stage: turn a corpus file into plain text, keeping page boundaries.

Each format becomes text with markdown-style `#` headings where the format marks them (so the
chunker finds structure the same way everywhere) and form feeds (`\\f`) between PDF pages (so page
numbers survive cleaning and chunking). A file that cannot be read raises `LoadError` with a reason
a person can act on; ingestion skips it and reports the reason.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

PAGE_BREAK = "\f"
SUPPORTED = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")


class LoadError(ValueError):
    """A file that cannot be ingested; the message says why and what to do."""


def load_text(path: Path) -> str:
    """The text of a supported file; PDF pages are separated by form feeds."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise LoadError(f"unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED)}")
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
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
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
    lines = []
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        level = style.removeprefix("Heading ").strip()
        prefix = "#" * int(level) + " " if style.startswith("Heading ") and level.isdigit() else ""
        lines.append(prefix + paragraph.text)
    return "\n\n".join(lines)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page: no tag, script, style or comment survives."""
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(markup, "html.parser")
    for node in soup(["script", "style", "noscript", "template", "head", "iframe", "object"]):
        node.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.insert_before("\n\n" + "#" * level + " ")
            heading.insert_after("\n\n")
    for block in soup.find_all(["p", "div", "li", "tr", "br", "section", "article"]):
        block.insert_after("\n")
    return soup.get_text()
