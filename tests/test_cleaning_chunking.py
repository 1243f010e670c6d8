"""Cleaning and chunking rules, on small tables and on the real documents."""

from __future__ import annotations

import pytest

from assistant.chunking import StructureChunker, embed_prefix
from assistant.cleaning import clean_text, rejoin_hyphenated
from assistant.embedding import TokenCounter, resolve_model_path
from assistant.loaders import load_text
from assistant.sentences import split_sentences
from tests.conftest import CORPUS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("the gover-\nnance of AI", "the governance of AI"),
        ("cross-border and cross-\nborder", "cross-border and cross-border"),
        ("AI-\nbased goods", "AIbased goods"),
    ],
)
def test_rejoin_hyphenated(raw: str, expected: str) -> None:
    assert rejoin_hyphenated(raw) == expected


def test_furniture_removed_and_prose_kept() -> None:
    un = clean_text(load_text(CORPUS / "un-foundation-2026-02-multilateral-ai-diplomacy.txt"))
    assert "Republic of Kenya" not in un.splitlines()
    assert "Mission to the United Nations" not in un
    assert "Only around 2% of global AI research currently originates in Africa" in un
    eu = clean_text(load_text(CORPUS / "eu-ai-act-regulation-2024-1689.md"))
    assert "OJ L, 12.7.2024" not in eu.splitlines()
    assert "ELI: http://data.europa.eu/eli/reg/2024/1689/oj 12/144" not in eu
    assert not any(line.strip() == "EN" for line in eu.splitlines())
    # A sentence broken by a page header is whole again.
    assert "through the clear manifestation of will by the person" in eu


def test_markup_comments_are_not_text() -> None:
    assert clean_text("<!-- METADATA: Parser: x -->\n# Title\n\nBody text.\n") == "# Title\n\nBody text.\n"


def test_sentences_respect_abbreviations_and_paragraph_numbers() -> None:
    assert split_sentences("3. Non-compliance is fined. See Art. 5, e.g. here.") == [
        "3. Non-compliance is fined.",
        "See Art. 5, e.g. here.",
    ]


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter(resolve_model_path(""))


def test_eu_chunks_carry_article_paths_and_fit_the_model(counter: TokenCounter) -> None:
    text = clean_text(load_text(CORPUS / "eu-ai-act-regulation-2024-1689.md"))
    title = "Regulation (EU) 2024/1689"
    chunks = StructureChunker(198, counter.count).split(text, title)
    sections = {c.section for c in chunks}
    assert {"Article 99 > 3", "Article 5 > 1", "Article 113", "Article 3 > (1)", "ANNEX III > 4"} <= sections
    # Annexes hold no articles: a heading an extractor made of "Article 49" inside Annex VIII is not one.
    annex_viii = [c for c in chunks if "Information to be submitted by providers" in c.text]
    assert annex_viii and all(not c.section.startswith("Article") for c in annex_viii)
    penalty = next(c for c in chunks if c.section == "Article 99 > 3")
    assert "EUR 35 000 000" in penalty.text
    assert text[penalty.start : penalty.end] == penalty.text
    lengths = [counter.count(embed_prefix(title, c.heading, c.section) + c.text) for c in chunks]
    assert max(lengths) <= counter.model_limit
    # A definition, headed only "### (1)", keeps its article's heading and records the term it defines.
    definition = next(c for c in chunks if c.section == "Article 3 > (1)")
    assert (definition.heading, definition.defines) == ("Article 3: Definitions", ("ai system",))
    assert next(c for c in chunks if c.section == "Article 3 > (4)").defines == ("deployer",)
    # The closing formula opens the signatures: the last article ends at its own last sentence.
    application = next(c for c in chunks if c.section == "Article 113")
    signatures = next(c for c in chunks if c.section == "Signatures")
    assert application.text.rstrip().endswith("directly applicable in all Member States.")
    assert signatures.text.startswith("Done at Brussels, 13 June 2024.") and "METSOLA" in signatures.text


def test_plain_text_headings_become_sections(counter: TokenCounter) -> None:
    text = clean_text(load_text(CORPUS / "modern-diplomacy-ai-new-frontier-of-global-diplomacy.txt"))
    sections = {c.section for c in StructureChunker(198, counter.count).split(text, "t")}
    assert "The Barriers to Implementation" in sections


def test_numbered_plain_text_headings_become_sections(counter: TokenCounter) -> None:
    """A chair's summary numbers its headings; its numbered paragraphs and lists stay paragraphs."""
    paragraph = "The meeting brought together ministers, heads of national institutes and researchers from 47 countries."
    text = (f"Chair's Summary: A Meeting\n\nAccra, 17-18 March 2026\n\n1. Purpose and participation\n\n{paragraph}\n\n2. Opening session\n\n{paragraph}\n\n"
            f"3. The commitments are kept under review by the secretariat every year.\n")
    sections = [c.section for c in StructureChunker(198, counter.count).split(text, "t")]
    assert sections == ["", "1. Purpose and participation", "2. Opening session", "2. Opening session > 3"]
