"""Typeset a shipped plain-text document as the multi-page PDF a diplomat would receive.

The corpus ships one document as a PDF so that the PDF path (page numbers in citations, running
headers and footers dropped, a sentence rejoined across a page break, a table read in order) runs
on real data in the tests and the evals. The source text lives in `tools/sources/`; only the PDF
is in `corpus/`, so the words are not indexed twice. The PDF is committed: users need no
reportlab, only whoever re-typesets it (`pip install -e '.[test]'`).

    python tools/typeset_pdf.py            # writes corpus/unu-cpr-2026-05-building-government-ai-capacity.pdf

The layout is a concept note's: a cover page with the event details, then the body under a
running header and a "Page N of M" footer. The list of the Sustainable Development Goals the
event supports becomes a table of goal and title; nothing is added that the text does not say.
The output is byte-for-byte reproducible (reportlab's invariant mode: no timestamp, fixed id).
"""

from __future__ import annotations

import argparse
import re
from html import escape
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_JUSTIFY
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageBreak, PageTemplate, Paragraph, Table, TableStyle

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tools" / "sources" / "unu-cpr-2026-05-building-government-ai-capacity.txt"
TARGET = ROOT / "corpus" / "unu-cpr-2026-05-building-government-ai-capacity.pdf"

HEADER_LEFT = "Building Government AI Capacity"
HEADER_RIGHT = "Side Event, 11th STI Forum"
FOOTER_LEFT = "UNU-CPR | UNU-CRIS | UNDP | UN DESA"
# Lines of the source set as section headings, and the line after which the cover page ends.
HEADINGS = frozenset(
    {
        "Background / Context",
        "Event Objectives and Outcomes",
        "Specific Objectives",
        "Practical Outcomes",
        "Event Format and Agenda",
        "Target Audience",
    }
)
COVER_ENDS_AFTER = "Permanent Mission of Japan to the United Nations"
_SDG = re.compile(r"^- (SDG \d+) \((.+)\)$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_SIDE_EVENT = re.compile(r"^【(.+)】$")  # full-width brackets: not in the PDF base fonts


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["Normal"], fontName="Helvetica", fontSize=12, leading=17,
                          spaceAfter=8, alignment=TA_JUSTIFY)
    return {
        "body": body,
        "bullet": ParagraphStyle("bullet", parent=body, leftIndent=16, bulletIndent=4, spaceAfter=5),
        "heading": ParagraphStyle("heading", parent=body, fontName="Helvetica-Bold", fontSize=14, leading=18,
                                  spaceBefore=10, spaceAfter=8, alignment=0),
        "subheading": ParagraphStyle("subheading", parent=body, fontName="Helvetica-Bold", spaceBefore=4, alignment=0,
                                     leftIndent=16, bulletIndent=0, bulletFontName="ZapfDingbats"),
        "title": ParagraphStyle("title", parent=body, fontName="Helvetica-Bold", fontSize=20, leading=25,
                                spaceBefore=18, spaceAfter=18, alignment=0),
        "label": ParagraphStyle("label", parent=body, fontName="Helvetica-Bold", textColor=colors.HexColor("#1f4e79"),
                                spaceBefore=14, alignment=0),
        "cell": ParagraphStyle("cell", parent=body, spaceAfter=0, alignment=0),
    }


def _markup(line: str) -> str:
    return _BOLD.sub(r"<b>\1</b>", escape(line, quote=False))


def flowables(text: str) -> list[Flowable]:
    """The source text, one paragraph per line, as reportlab flowables."""
    styles = _styles()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    story: list[Flowable] = []
    sdg_rows: list[list[str]] = []
    for line in lines:
        sdg = _SDG.match(line)
        if sdg:
            sdg_rows.append([sdg.group(1), sdg.group(2)])
            continue
        if sdg_rows:
            story.append(_table(sdg_rows, styles["cell"]))
            sdg_rows = []
        side_event = _SIDE_EVENT.match(line)
        if side_event:
            story.append(Paragraph(escape(side_event.group(1)), styles["label"]))
        elif line.startswith("Building Government AI Capacity:"):
            story.append(Paragraph(_markup(line), styles["title"]))
        elif line in HEADINGS:
            story.append(Paragraph(_markup(line), styles["heading"]))
        elif line.startswith("➤"):
            story.append(Paragraph(_markup(line.lstrip("➤ ")), styles["subheading"], bulletText="➤"))
        elif line.startswith("- "):
            story.append(Paragraph(_markup(line[2:]), styles["bullet"], bulletText="•"))
        else:
            story.append(Paragraph(_markup(line), styles["body"]))
        if line == COVER_ENDS_AFTER:
            story.append(PageBreak())
    if sdg_rows:
        story.append(_table(sdg_rows, styles["cell"]))
    return story


def _table(rows: list[list[str]], style: ParagraphStyle) -> Table:
    data = [["Goal", "Title"], *rows]
    table = Table(data, colWidths=[3 * cm, 10 * cm], hAlign="LEFT", spaceBefore=2, spaceAfter=12)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dce6f1")),
                ("FONT", (0, 0), (-1, -1), style.fontName, style.fontSize),
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", style.fontSize),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return table


def typeset(source: Path, target: Path) -> int:
    """Write `target` from `source`; return its number of pages."""
    text = source.read_text(encoding="utf-8")
    pages = _build(text, target, total=0)  # a first pass counts the pages for "Page N of M"
    return _build(text, target, total=pages)


def _build(text: str, target: Path, total: int) -> int:
    width, height = A4
    margin = 2.5 * cm

    def header(canvas: Canvas, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 9)
        canvas.drawString(margin, height - 1.5 * cm, HEADER_LEFT)
        canvas.drawRightString(width - margin, height - 1.5 * cm, HEADER_RIGHT)
        canvas.line(margin, height - 1.7 * cm, width - margin, height - 1.7 * cm)
        canvas.restoreState()

    def footer(canvas: Canvas, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 9)
        canvas.drawString(margin, 1.3 * cm, FOOTER_LEFT)
        canvas.drawRightString(width - margin, 1.3 * cm, f"Page {doc.page} of {total or '?'}")
        canvas.restoreState()

    doc = BaseDocTemplate(
        str(target),
        pagesize=A4,
        title="Building Government AI Capacity: Insights from the City, National and Regional Perspectives",
        author="UNU-CPR, UNU-CRIS, UNDP and UN DESA",
        invariant=1,
    )
    frame = Frame(margin, 2.2 * cm, width - 2 * margin, height - 4.4 * cm, id="body")
    # The header is drawn as a page begins and the footer as it ends, so the text layer reads header,
    # body, footer in turn, as a word processor writes it.
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=header, onPageEnd=footer)])
    doc.build(flowables(text))
    return int(doc.page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args()
    pages = typeset(args.source, args.out)
    print(f"{args.out}: {pages} pages")


if __name__ == "__main__":
    main()
