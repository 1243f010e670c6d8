"""Clean stage: remove page furniture and undo line-break damage from extracted text.

Extracted governance documents repeat letterheads and running headers on every page (the UN
Foundation letterhead, the Official Journal's `OJ L, 12.7.2024` and `ELI: ... 12/144` lines), split
words across lines with hyphens, and hard-wrap sentences. Left in, the furniture pollutes chunks and
answers and the wraps break sentence splitting. The rules are deliberately conservative: text is
only dropped when it repeats like furniture, never because of what it says.

    >>> page = "Letterhead\\nMission 1/3\\n\\n"
    >>> clean_text(page + "Intro.\\n" + page + "A para-\\ngraph\\n" + page + "that goes on.\\n")
    'Intro.\\nA paragraph that goes on.\\n'
    >>> clean_text("*Generated on: 2025-08-25 00:08:32*\\n\\nIt applies from 2 August\\n\\n**2025.** Codes follow.\\n")
    'It applies from 2 August 2025. Codes follow.\\n'
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from itertools import pairwise

from assistant.chunking import BRACKETED_LABEL
from assistant.loaders import PAGE_BREAK

MIN_REPEATS = 3
_SHORT_LINE = 40  # characters: a line this short is a label or a paragraph's last line, never a full wrapped one
_DIGITS = re.compile(r"\d+")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)  # markup comments (a converter's metadata) are not text
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\s]*\)")  # [text](url) -> text
_INLINE_MARKUP = re.compile(r"</?(?:sup|sub)>")  # 43<sup>rd</sup> -> 43rd
_GLUED_CELLS = re.compile(r"(?<=[a-z]{2})(?=[A-Z][a-z])")  # "agreementsCollaborative": two cells run together
_HYPHEN_BREAK = re.compile(r"([A-Za-z]{2,})-\n[ \t]*([a-z][A-Za-z]*)")
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
# "... apply from 2 August\n\n**2025.** Given ...": a page break split the date, and the converter took
# the year for a bold paragraph number.
_SPLIT_DATE = re.compile(rf"(\b\d{{1,2}} (?:{_MONTHS}))[ \t]*\n(?:[ \t]*\n)*\*\*((?:19|20)\d\d)\.\*\*")
# A converter's stamp on its own line ("*Generated on: 2025-08-25 00:08:32*") says when a file was
# made, not anything the document says; a date question would otherwise be answered with it.
_STAMP = re.compile(r"^[ \t]*\*?(?:Generated|Converted|Exported) on:[ \t]*[\d:./ -]+\*?[ \t]*$", re.MULTILINE)
_LIST_OR_HEADING = re.compile(
    rf"^\s*(#{{1,6}}\s|[-*•➤|]\s|\*\*\d+\.\*\*|\(?[a-z0-9ivx]{{1,4}}[.)]\s|\d{{1,2}}:\d{{2}}|{BRACKETED_LABEL}\s*$)"
)
# A PDF's bullet, drawn apart from its text: extraction may glue the two ("➤Closing Remarks") or
# give the glyph back as a control or private-use character (WinAnsiEncoding's 0x7F or 0x95 read
# raw, the Symbol font's U+F0B7 in Word's PDFs).
_BULLET = re.compile(r"^[ \t]*([\x7f\x95\uf0b7\uf0a7]|[•➤▪◦‣])[ \t]*(?=\S)", re.MULTILINE)
_PAGE_BREAK_LINE = re.compile(rf"[ \t]*\n?{PAGE_BREAK}\n?")
_SENTENCE_END = re.compile(r"[.!?][\"”’')]*(?=\s|$)")


def clean_text(text: str) -> str:
    """Apply every cleaning rule, keeping page breaks (form feeds) where they were."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = _PAGE_BREAK_LINE.sub(f"\n{PAGE_BREAK}\n", text)  # a page break stands on a line of its own
    text = _BULLET.sub(lambda m: (m.group(1) if m.group(1).isprintable() else "•") + " ", text)
    text = _COMMENT.sub("", text)
    text = _STAMP.sub("", text)
    text = _SPLIT_DATE.sub(r"\1 \2.", text)
    text = drop_repeated_furniture(text)
    text = _MD_LINK.sub(r"\1", text)
    text = _INLINE_MARKUP.sub("", text)
    text = split_glued_cells(text)
    text = rejoin_hyphenated(text)
    text = reflow_paragraphs(text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def _shape(line: str) -> str:
    """A line's shape for repeat counting: page numbers and dates vary, furniture does not."""
    return _DIGITS.sub("#", " ".join(line.split()))


def drop_repeated_furniture(text: str) -> str:
    """Drop lines that repeat through a document in the company of other repeated lines.

    Page furniture (a letterhead, a running header and footer) is a group of lines that recur
    together on every page: a line is dropped when its shape recurs at least `MIN_REPEATS` times
    and so does its pairing with the nearest non-blank line before or after it; every line of that
shape goes, wherever it stands (the last page's footer has no header after it). A sentence that
    merely recurs in prose has no such fixed neighbour and is kept; headings are always kept. The
    blank lines around dropped furniture go too, so a sentence broken by a page break can be
    rejoined by `reflow_paragraphs`.
    """
    lines = text.split("\n")
    content = [i for i, line in enumerate(lines) if line.strip() and PAGE_BREAK not in line]
    shapes = {i: _shape(lines[i]) for i in content}
    line_counts = Counter(shapes.values())
    pairs = list(pairwise(content))
    pair_counts = Counter((shapes[a], shapes[b]) for a, b in pairs)
    furniture_shapes: set[str] = set()
    for a, b in pairs:
        repeated = line_counts[shapes[a]] >= MIN_REPEATS and line_counts[shapes[b]] >= MIN_REPEATS
        if repeated and pair_counts[(shapes[a], shapes[b])] >= MIN_REPEATS:
            furniture_shapes.update((shapes[a], shapes[b]))
    furniture = {
        i for i in content if shapes[i] in furniture_shapes and not lines[i].lstrip().startswith("#")
    }
    out: list[str] = []
    pending_gap: list[str] = []
    in_furniture_run = False
    for index, line in enumerate(lines):
        if index in furniture:
            in_furniture_run = True
            pending_gap = [g for g in pending_gap if PAGE_BREAK in g]
        elif not line.strip() or PAGE_BREAK in line:
            pending_gap.append(line)
        else:
            if in_furniture_run:
                pending_gap = [g for g in pending_gap if PAGE_BREAK in g]
            out.extend(pending_gap)
            pending_gap = []
            in_furniture_run = False
            out.append(line)
    out.extend(pending_gap)
    return "\n".join(out)


def split_glued_cells(text: str) -> str:
    """Give back the cells of a table whose extraction ran them together, as `| a | b |` rows.

    A web page's table saved as text loses its cell borders ("Data sharing agreementsCollaborative
    international datasets"), which leaves glued words no keyword search finds and rows that
    read as one sentence. Such rows come as a run of lines with the same number of joins, at
    least two each; a lone word like "GovTech" is left alone.

    >>> split_glued_cells("PillarFunctionImpact\\nData sharingAlign rulesFewer gaps\\nGovTech Tokyo")
    '| Pillar | Function | Impact |\\n| Data sharing | Align rules | Fewer gaps |\\nGovTech Tokyo'
    """
    lines = text.split("\n")
    joins = [len(_GLUED_CELLS.findall(line)) for line in lines]
    for index, line in enumerate(lines):
        in_run = any(0 <= other < len(lines) and joins[other] == joins[index] for other in (index - 1, index + 1))
        if joins[index] >= 2 and in_run:
            lines[index] = "| " + " | ".join(_GLUED_CELLS.split(line.strip())) + " |"
    return "\n".join(lines)


def rejoin_hyphenated(text: str) -> str:
    """Rejoin `gover-\\nnance` as `governance`, but keep `cross-\\nborder` as `cross-border`.

    The document itself decides: if the hyphenated form occurs elsewhere in it, the hyphen is real.
    """
    vocabulary = set(re.findall(r"[a-z]+(?:-[a-z]+)+", text.lower()))

    def join(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        hyphenated = f"{left}-{right}"
        return hyphenated if hyphenated.lower() in vocabulary else left + right

    return _HYPHEN_BREAK.sub(join, text)


def reflow_paragraphs(text: str) -> str:
    """Join hard-wrapped lines of a paragraph into one line.

    A line continues the previous one unless either is blank, a heading, or a list item, or the
    previous line ends a sentence and this one starts with a capital; so a wrapped sentence becomes
    one line while lists, headings and one-item-per-line layouts stay as they are. A capitalised
    line continues an unfinished one only in a hard-wrapped document, and only after a full line:
    in a concept note written a paragraph per line, the last aim (no full stop) is followed by a
    speaker's name, and neither belongs to the other. A sentence that a page break cuts (its page
    furniture already dropped) is joined too, and the break moves to the end of that sentence, so
    the rest of the paragraph keeps its page.

    >>> reflow_paragraphs("Develop a strategy for regional partnerships and parliamentary dialogue\\nJo Hironaka")
    'Develop a strategy for regional partnerships and parliamentary dialogue\\nJo Hironaka'
    >>> reflow_paragraphs("The Commission should take note of and collaborate with\\nthe international partners that are working on\\nMetrology and on benchmarks.")
    'The Commission should take note of and collaborate with the international partners that are working on Metrology and on benchmarks.'
    >>> reflow_paragraphs("The event aims to foster\\n\\f\\ndialogue and cooperation. By bringing\\ntogether experts.")
    'The event aims to foster dialogue and cooperation.\\n\\x0c\\nBy bringing together experts.'
    """
    lines = text.split("\n")
    width = wrap_width(lines)
    out: list[str] = []
    held: list[str] = []  # page breaks met since the last text line, while its sentence may go on
    before = ""  # the last text line as it was, before any joining
    for line in lines:
        if PAGE_BREAK in line and not line.strip(f" \t{PAGE_BREAK}"):
            held.append(line)
            continue
        previous = out[-1] if out else ""
        if (
            line.strip()
            and previous.strip()
            and not _LIST_OR_HEADING.match(line)
            and not previous.lstrip().startswith("#")
            and _continues(before, line, width)
        ):
            if held:  # the sentence crossed a page break: it ends on this page, the break goes after it
                end = _SENTENCE_END.search(line)
                head, line = (line[: end.end()], line[end.end() :]) if end else (line, "")
                out[-1] = previous.rstrip() + " " + head.strip()
                if end:
                    out.extend(held)
                    held = []
                    if line.strip():
                        out.append(line.strip())
            else:
                out[-1] = previous.rstrip() + " " + line.strip()
        else:
            out.extend(held)
            held = []
            out.append(line)
        before = line
    out.extend(held)
    return "\n".join(out)


def wrap_width(lines: list[str]) -> float | None:
    """The width a hard-wrapped document's lines are broken at, or None when it is not wrapped.

    Wrapped text (a PDF's extraction) breaks most long lines within a few characters of one width;
    a paragraph per line gives lengths all over the range. On the bundled corpus 87% of the EU AI
    Act's long lines lie within 15% of their median length, and at most a third of any other's.

    >>> wrap_width(["The Commission should take note of and collaborate with", "the international partners that are working on", "Metrology."])
    50.5
    >>> wrap_width(["A short aim without a stop, and its speaker below it", "A much longer paragraph " * 4, "Another."]) is None
    True
    """
    lengths = [len(line.rstrip()) for line in lines if len(line.rstrip()) > _SHORT_LINE]
    if len(lengths) < 2:
        return None  # one long line shows no width
    width = statistics.median(lengths)
    in_band = sum(abs(length - width) <= 0.15 * width for length in lengths)
    return float(width) if in_band >= 0.5 * len(lengths) else None


def _continues(previous: str, line: str, width: float | None) -> bool:
    """Whether `line` goes on with the sentence of the original line before it, `previous`."""
    ended = previous.rstrip().endswith((".", ":", ";", "!", "?", "”", '"'))
    starts_lower = line.lstrip()[:1].islower() or line.lstrip()[:1] in "(,"
    if starts_lower:
        return True
    return width is not None and not ended and len(previous.rstrip()) >= 0.85 * width
