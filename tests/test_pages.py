"""Pages and layout: the shipped PDF (five typeset pages with a running header, a "Page N of 5"
footer and a table) and a DOCX made here (headings, a table, a running header and footer, a manual
page break), read through the real load, clean and chunk stages and, for the citations, a real
index of the two in a temporary folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_BREAK
from pypdf import PdfReader

from assistant import Assistant
from assistant.chunking import Chunk, StructureChunker
from assistant.cleaning import clean_text
from assistant.loaders import PAGE_BREAK, load_text
from assistant.views import answer_view, citation_label
from tests.conftest import CORPUS, make_settings

PDF = CORPUS / "unu-cpr-2026-05-building-government-ai-capacity.pdf"
DOCX_NAME = "sandbox-capacity-note.docx"
FURNITURE = ("Side Event, 11th STI Forum", "UNU-CPR | UNU-CRIS | UNDP | UN DESA", "Page 1 of 5", "Page 5 of 5")


def chunks_of(path: Path) -> list[Chunk]:
    chunker = StructureChunker(max_tokens=200, count_tokens=lambda text: len(text.split()))
    return chunker.split(clean_text(load_text(path)))


def flat(text: str) -> str:
    """Text without bullets and with single spaces, to compare a passage with a page's extraction."""
    return " ".join(re.sub(r"[\x7f•➤]", " ", text).split())


@pytest.fixture(scope="module")
def pdf_pages() -> list[str]:
    """The text of each page of the PDF, as pypdf extracts it, before any cleaning."""
    return [page.extract_text() for page in PdfReader(PDF).pages]


def stands_on(text: str, page: int, pdf_pages: list[str]) -> bool:
    """Whether a passage starts on this page of the PDF and goes on, at most, into the next page's
    body (the last sentence of a page may end on the next one)."""
    bodies = ["\n".join(p.splitlines()[2:-2]) for p in pdf_pages]  # without the header's and footer's lines
    return flat(text)[:60] in flat(bodies[page - 1]) and flat(text) in flat(" ".join(bodies[page - 1 : page + 1]))


def test_the_shipped_pdf_has_pages_furniture_and_a_table(pdf_pages: list[str]) -> None:
    assert len(pdf_pages) == 5
    for number, page in enumerate(pdf_pages, start=1):
        assert f"Page {number} of 5" in page and "Side Event, 11th STI Forum" in page
    assert "SDG 11\nSustainable Cities and Communities" in pdf_pages[2]


def test_headers_footers_and_page_numbers_are_dropped() -> None:
    pages = clean_text(load_text(PDF)).split(PAGE_BREAK)
    assert len(pages) == 5, "every page break is kept, so pages can still be counted"
    for page in pages:
        lines = [line.strip() for line in page.splitlines()]
        assert not any(mark in page for mark in FURNITURE)
        assert not any(re.fullmatch(r"Page \d+ of \d+", line) for line in lines)
        assert "Building Government AI Capacity" not in lines, "the running header's left half"


def test_a_sentence_cut_by_a_page_break_is_joined_on_its_first_page(pdf_pages: list[str]) -> None:
    assert "the event aims to foster constructive\n" in pdf_pages[3]
    assert "dialogue and strengthen international cooperation" in pdf_pages[4]
    pages = clean_text(load_text(PDF)).split(PAGE_BREAK)
    sentence = ("the event aims to foster constructive dialogue and strengthen international cooperation "
                "on building government AI capacity.")
    assert any(line.endswith(sentence) for line in pages[3].splitlines())
    assert pages[4].strip().startswith("For further information"), "the rest of the last page keeps its page"


def test_the_table_cells_are_kept_in_order() -> None:
    lines = clean_text(load_text(PDF)).splitlines()
    cells = ["Goal", "Title", "SDG 9", "Industry, Innovation and Infrastructure", "SDG 11",
             "Sustainable Cities and Communities", "SDG 17", "Partnerships for the Goals"]
    start = lines.index("Goal")
    assert lines[start : start + len(cells)] == cells
    holding = [c for c in chunks_of(PDF) if "SDG 17\nPartnerships for the Goals" in c.text]
    assert [c.page for c in holding] == [3]


def test_every_passage_stands_on_its_page(pdf_pages: list[str]) -> None:
    chunks = chunks_of(PDF)
    assert {c.page for c in chunks} == {1, 2, 3, 4, 5}
    for chunk in chunks:
        assert chunk.page is not None and PAGE_BREAK not in chunk.text
        assert stands_on(chunk.text, chunk.page, pdf_pages), (chunk.page, chunk.text[:80])


def write_docx(path: Path) -> None:
    """A short note with what a DOCX adds: headings, a table, header and footer, a page break."""
    document = docx.Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = "Sandbox briefing note | restricted"
    section.footer.paragraphs[0].text = "Capacity unit, page 1"
    document.add_heading("Sandbox capacity note", level=1)
    document.add_paragraph("Evaluation sandboxes let regulators test AI models before deployment.")
    document.add_heading("Staffing plan", level=2)
    paragraph = document.add_paragraph("The capacity unit recruits twelve evaluators and")
    paragraph.add_run().add_break(WD_BREAK.PAGE)
    paragraph.add_run("shares their test reports with partner regulators every quarter.")
    document.add_heading("Budget lines", level=2)
    table = document.add_table(rows=3, cols=3)
    for row, cells in zip(table.rows, [["Line", "Amount", "Year"], ["Evaluators", "EUR 1.2 million", "2027"],
                                       ["Compute credits", "EUR 0.4 million", "2028"]]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    document.save(str(path))


def test_a_docx_keeps_headings_table_and_sentences_and_drops_header_and_footer(tmp_path: Path) -> None:
    path = tmp_path / DOCX_NAME
    write_docx(path)
    text = clean_text(load_text(path))
    assert "Sandbox briefing note" not in text and "Capacity unit, page" not in text
    assert ("The capacity unit recruits twelve evaluators and shares their test reports with partner "
            "regulators every quarter.") in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows == ["| Line | Amount | Year |", "| Evaluators | EUR 1.2 million | 2027 |",
                    "| Compute credits | EUR 0.4 million | 2028 |"]
    chunks = chunks_of(path)
    assert {c.section for c in chunks} == {"", "Staffing plan", "Budget lines"}, "the first heading is the title"
    assert all(c.page is None for c in chunks), "a DOCX has no fixed pages"


@pytest.fixture(scope="module")
def paged_assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    """The PDF (with its catalog entry) and the DOCX, ingested into an index of their own."""
    tmp = tmp_path_factory.mktemp("paged")
    corpus = tmp / "corpus"
    corpus.mkdir()
    shutil.copy(PDF, corpus / PDF.name)
    shutil.copy(CORPUS / "catalog.toml", corpus / "catalog.toml")
    write_docx(corpus / DOCX_NAME)
    bot = Assistant(make_settings(tmp, corpus))
    bot.ingest()
    return bot


@pytest.mark.parametrize(
    ("question", "page"),
    [
        ("When does the UNU-CPR side event 'Building Government AI Capacity' take place?", 1),
        ("What concrete steps have governments taken to build AI know-how inside the state, according to the UNU-CPR concept note?", 2),
        ("Which Sustainable Development Goals does the UNU-CPR side event aim to support?", 3),
        ("Who moderates the panel discussion at the UNU-CPR side event?", 4),
        ("Whom should people contact for further information about the UNU-CPR side event?", 5),
    ],
)
def test_cited_passages_carry_the_page_they_stand_on(
    paged_assistant: Assistant, pdf_pages: list[str], question: str, page: int
) -> None:
    record = paged_assistant.ask(question)
    assert not record["refused"] and record["citations"]
    for citation in record["citations"]:
        if citation["doc_id"] == "unu-cpr-2026-05":
            assert stands_on(citation["text"], citation["page"], pdf_pages)
            assert citation_label(citation).endswith(f", p. {citation['page']}")
    assert page in {c["page"] for c in record["citations"] if c["doc_id"] == "unu-cpr-2026-05"}
    assert f", p. {page}" in answer_view(record)


def test_a_docx_passage_is_cited_by_its_section_without_a_page(paged_assistant: Assistant) -> None:
    record = paged_assistant.ask("How many evaluators does the capacity unit recruit?")
    cited = [c for c in record["citations"] if c["doc_id"] != "unu-cpr-2026-05"]
    assert cited and all(c["page"] is None for c in cited)
    assert "Staffing plan" in {c["section"] for c in cited}
    assert "p. " not in citation_label(cited[0])


def test_the_source_view_shows_a_pdf_passage_within_its_page(paged_assistant: Assistant, pdf_pages: list[str]) -> None:
    """The text around a cited passage comes from its own page only, so "p. N" holds for all that is shown."""
    for chunk in paged_assistant.store.chunks(doc_ids=["unu-cpr-2026-05"]):
        context = paged_assistant.passage_context(chunk.id, chars=4000)
        page = context["passage"]["page"]
        assert page and stands_on(chunk.text, page, pdf_pages)
        for around in (context["before"], context["after"]):
            lines = [line for line in around.splitlines() if len(line.split()) >= 6]
            assert all(stands_on(line, page, pdf_pages) for line in lines), (page, lines)
