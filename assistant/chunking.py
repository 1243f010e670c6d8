"""Chunk stage: split cleaned text by its structure, then by sentences, sized by word pieces.

Headings, "Article N", "ANNEX III", numbered paragraphs and plain-text headings give each chunk a
section path such as `Article 99 > 3` or `ANNEX III > 4`, so a citation says where in a document its passage is. Inside a
section whole sentences are packed until the chunk, with its heading prefix, would exceed the
embedding model's limit: a longer chunk would be silently truncated when embedded.

    >>> chunker = StructureChunker(max_tokens=64, count_tokens=lambda t: len(t.split()))
    >>> [(c.section, c.text) for c in chunker.split("## Article 5: Bans\\n\\n**1.** No X.\\n\\n**2.** No Y.\\n")]
    [('Article 5 > 1', '**1.** No X.'), ('Article 5 > 2', '**2.** No Y.')]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from assistant.loaders import PAGE_BREAK
from assistant.sentences import sentence_spans

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_ARTICLE = re.compile(r"^(Article\s+\d+[a-z]?)\b", re.IGNORECASE)
_ANNEX = re.compile(r"^(?:#{1,6}\s+)?(ANNEX\s+[IVXLC]+)\b(.*)$")
_NUMBERED = re.compile(r"^\s*(?:\*\*)?(\d{1,3})\.(?:\*\*)?\s+(\S)")
# An event notice's field label in brackets, "[Format]", "[Moderator]"; answering reads it too.
BRACKETED_LABEL = r"\[([A-Za-z][A-Za-z &/-]{1,40})\]"
_LIST = re.compile(r"^\s*([-*•➤]|\(?[a-z0-9ivx]{1,4}[.)])\s")
# An EU act's closing formula: "Done at Brussels, 13 June 2024." opens the signatures, which belong
# to no article; as a passage of their own they are found for "Who signed the Act, and where?".
_CLOSING = re.compile(r"^Done at [A-Z][\w-]+, \d{1,2} [A-Z][a-z]+ \d{4}\.?$")
_BARE_LABEL = re.compile(r"\(?(?:\d{1,3}|[IVXLCivxlc]{1,6}|[A-Za-z])[.)]?")  # a heading that only numbers: "(1)", "IV."
# How documents define a term: "‘deployer' means ..." (legislative drafting) and a glossary line
# that names the term twice ("- AI actors: AI actors are those who ...").
_DEFINITION = re.compile(
    r"(?<!\w)[‘'\"“]([^’'\"”\n]{2,60})[’'\"”]\s+means\b|^[-*•➤]?\s*([A-Z][\w -]{1,50}?):\s+(?:An?\s+|The\s+)?\2\b",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Chunk:
    """A passage with its place in the document: section path, heading, page, character span."""

    text: str
    section: str
    heading: str
    start: int
    end: int
    page: int | None
    defines: tuple[str, ...] = ()  # the terms it defines, lower-cased: see `defined_terms`


@dataclass
class _Section:
    path: tuple[str, ...]
    heading: str
    start: int
    end: int


class StructureChunker:
    """Structure-first, sentence-aware chunking sized by the embedding model's tokenizer."""

    def __init__(
        self,
        max_tokens: int,
        count_tokens: Callable[[str], int],
        overlap_sentences: int = 1,
    ) -> None:
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens
        self.overlap_sentences = overlap_sentences

    def split(self, text: str, title: str = "") -> list[Chunk]:
        paged = PAGE_BREAK in text
        chunks: list[Chunk] = []
        for section in _sections(text):
            prefix = embed_prefix(title, section.heading, " > ".join(section.path))
            budget = self.max_tokens - self.count_tokens(prefix)
            for start, end in self._pack(text, section, budget):
                chunks.append(
                    Chunk(
                        text=text[start:end],
                        section=" > ".join(section.path),
                        heading=section.heading,
                        start=start,
                        end=end,
                        page=text.count(PAGE_BREAK, 0, start) + 1 if paged else None,
                        defines=defined_terms(text[start:end]),
                    )
                )
        return chunks

    def _pack(self, text: str, section: _Section, budget: int) -> list[tuple[int, int]]:
        """Greedy packing of whole sentences; a sentence over budget is cut at word boundaries.

        A page break ends a passage and no sentence overlaps across it: a citation's page is then
        the page of every word it shows (cleaning has already moved a break that cut a sentence).
        """
        body = text[section.start : section.end]
        pieces: list[tuple[int, int]] = []
        for s, e in sentence_spans(body):
            pieces.extend(self._fit(text, section.start + s, section.start + e, budget))
        packed: list[tuple[int, int]] = []
        current: list[tuple[int, int]] = []
        for piece in pieces:
            candidate = current + [piece]
            if current and PAGE_BREAK in text[current[-1][1] : piece[0]]:
                packed.append((current[0][0], current[-1][1]))
                candidate = [piece]
            elif current and self.count_tokens(text[candidate[0][0] : piece[1]]) > budget:
                packed.append((current[0][0], current[-1][1]))
                overlap = current[-self.overlap_sentences :] if self.overlap_sentences else []
                while overlap and self.count_tokens(text[overlap[0][0] : piece[1]]) > budget:
                    overlap = overlap[1:]
                candidate = overlap + [piece]
            current = candidate
        if current:
            packed.append((current[0][0], current[-1][1]))
        return packed

    def _fit(self, text: str, start: int, end: int, budget: int) -> list[tuple[int, int]]:
        if self.count_tokens(text[start:end]) <= budget:
            return [(start, end)]
        words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
        pieces: list[tuple[int, int]] = []
        first = 0
        while first < len(words):
            last = first
            while last + 1 < len(words) and self.count_tokens(text[words[first][0] : words[last + 1][1]]) <= budget:
                last += 1
            pieces.append((words[first][0], words[last][1]))
            first = last + 1
        return pieces


def defined_terms(text: str) -> tuple[str, ...]:
    """The terms a passage defines, lower-cased, so that "How does the Act define a 'deployer'?"
    can rank the definition itself above the many passages that merely use the word.

    >>> defined_terms("(4) ‘deployer' means a person using an AI system; ‘operator' means a provider.")
    ('deployer', 'operator')
    >>> defined_terms("- AI actors: AI actors are those who play an active role.\\nStakeholders: all of us.")
    ('ai actors',)
    """
    return tuple(dict.fromkeys(next(t for t in m.groups() if t).lower() for m in _DEFINITION.finditer(text)))


def embed_prefix(title: str, heading: str, section: str) -> str:
    """The line put before a chunk's text when it is embedded and keyword-indexed.

    A passage such as "**3.** Non-compliance ... EUR 35 000 000" says nothing of penalties or of
    the AI Act by itself; its document title and heading do.
    """
    parts = [p for p in (title, heading if heading and heading != section else "", section) if p]
    return " | ".join(parts) + "\n" if parts else ""


def _sections(text: str) -> list[_Section]:
    """Cut the text into sections, each with its path of headings."""
    lines = list(re.finditer(r"[^\n]*\n?", text))
    marked = any(_MD_HEADING.match(m.group().strip()) for m in lines)
    heading_counts = Counter(
        h.group(2) for m in lines if (h := _MD_HEADING.match(m.group().strip()))
    )
    stack: list[tuple[int, str]] = []  # (level, label); level 99 marks a numbered paragraph
    heading = ""
    sections: list[_Section] = []
    start = body = 0  # where the section's text begins, and where its body begins after the heading

    def close(at: int) -> None:
        if text[body:at].strip():  # a heading with nothing under it is structure, not a passage
            sections.append(_Section(tuple(label for _, label in stack), heading, start, at))

    in_annex = False
    for index, match in enumerate(lines):
        line = match.group().strip()
        if not line:
            continue
        level, label, title = _structure(line, lines, index, marked, heading_counts, in_annex)
        if level is None:
            continue
        # Articles, annexes and the signatures restart the path.
        top = bool((_ARTICLE.match(label) and not in_annex) or _ANNEX.match(label) or label == "Signatures")
        if not sections and not text[start : match.start()].strip() and level != 99 and not top:
            continue  # the document's own title opens it: not a section of it, but kept in its text
        close(match.start())
        in_annex = in_annex or bool(_ANNEX.match(label))
        if top:
            stack = [(level, label)]
        else:
            stack = [(lv, lb) for lv, lb in stack if lv < level] + [(level, label)]
        if level != 99 and not _BARE_LABEL.fullmatch(title):
            heading = title  # "### (1)" under "Article 3: Definitions" keeps that heading
        start = match.start()  # the heading line stays in the text: it may be the fact asked for
        body = match.start() if level == 99 else match.end()
    close(len(text))
    return sections


def _structure(
    line: str, lines: list[re.Match[str]], index: int, marked: bool, heading_counts: Counter[str], in_annex: bool
) -> tuple[int | None, str, str]:
    """(level, path label, heading text) when the line opens a section, else (None, '', '').

    Annexes follow the articles and hold none, so once inside one an "Article N" heading is a
    reference an extractor promoted to a heading, not the start of an article.
    """
    if _CLOSING.match(line):
        return 1, "Signatures", line
    annex = _ANNEX.match(line)
    if annex and (line.startswith("#") or not annex.group(2).strip()):
        return 1, annex.group(1), line.lstrip("# ").strip()
    md = _MD_HEADING.match(line)
    if md:
        title = md.group(2).strip("* ")
        # A long heading that recurs, or a long all-capitals one, is an extraction artefact (the
        # title of an act cited in a footnote), not structure.
        words = len(title.split())
        if (heading_counts[md.group(2)] > 1 and words >= 4) or (words >= 6 and title.isupper()):
            return None, "", ""
        article = None if in_annex else _ARTICLE.match(title)
        return len(md.group(1)), article.group(1) if article else _short(title), title
    article = None if in_annex else _ARTICLE.match(line)
    if article and len(line) < 120 and not line.rstrip().endswith((".", ";", ",")):
        return 2, article.group(1), line
    # A plain-text heading may be numbered ("2. Opening session" over its paragraphs); a numbered
    # line that heads nothing is a numbered paragraph.
    numbered = _NUMBERED.match(line)
    heading = not marked and _looks_like_heading(line[numbered.start(2):] if numbered else line, lines, index)
    if numbered and not heading:
        return 99, numbered.group(1), ""
    if heading:
        return 2, _short(line), line
    return None, "", ""


def _looks_like_heading(line: str, lines: list[re.Match[str]], index: int) -> bool:
    """A plain-text heading: a short unpunctuated line followed by a paragraph (a long line that ends a
    sentence) or by a field label alone on its line ("Event Format and Agenda" over "[Format]").

    A speaker's name over a long job title ("Dr. Jon Truby" over "Visiting Associate Research
    Professor ... National University of Singapore") heads nothing.
    """
    if len(line) > 70 or len(line.split()) > 9 or _LIST.match(line) or line.endswith((".", ",", ";", ":")):
        return False
    if not line[:1].isupper():
        return False
    preceding = next((m.group().strip() for m in reversed(lines[:index]) if m.group().strip()), "")
    if re.fullmatch(BRACKETED_LABEL, preceding):
        return False  # the value of a field label ("[Format]" over "Hybrid event ..."), not a heading
    following = next((m.group().strip() for m in lines[index + 1 :] if m.group().strip()), "")
    paragraph = len(following.split()) >= 12 and following.endswith((".", "!", "?", ":", ";", "”", '"', ")"))
    return paragraph or bool(re.fullmatch(BRACKETED_LABEL, following))


def _short(title: str) -> str:
    """A section label: the heading up to its first colon, at most 60 characters."""
    label = title.split(":")[0].strip() if re.match(r"^(ANNEX|CHAPTER|SECTION|Section)\b", title) else title
    return label if len(label) <= 60 else label[:57].rstrip() + "..."
