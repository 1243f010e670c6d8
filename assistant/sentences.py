"""Sentence boundaries, shared by chunking (pack whole sentences), answering (extract sentences)
and verification (check each sentence), so all three agree on what a sentence is.

    >>> split_sentences("See Art. 5, e.g. here. Done!\\n- An item")
    ['See Art. 5, e.g. here.', 'Done!', '- An item']
    >>> split_sentences("It amends Regulation 2018/858.' [1]. Next.")
    ["It amends Regulation 2018/858.' [1].", 'Next.']
"""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "e.g", "i.e", "etc", "no", "nos", "art", "arts", "p", "pp", "para", "mr", "mrs", "ms", "dr",
    "prof", "h.e", "st", "vs", "cf", "fig", "u.s", "u.k", "approx", "ca", "op", "ibid", "vol",
}
# A stop before a capital, a figure or a bullet; never before a citation marker, which belongs to
# the sentence it follows ("... laying down rules on AI.' [1].").
_END = re.compile(r"[.!?…]+[\"”’')\]]*(?=\s+(?!\[\d{1,3}\])[\"“‘(\[]?[A-Z0-9•\-–])")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of `text`; a line break always ends a sentence."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n\f]+", text):
        start = line.start()
        for match in _END.finditer(line.group()):
            end = line.start() + match.end()
            word = re.search(r"([\w.]+)[.!?…]*$", text[start:end].rstrip("\"”’')]"))
            if word and word.group(1).lower().rstrip(".") in _ABBREVIATIONS:
                continue
            if word and re.fullmatch(r"[A-Z]", word.group(1).rstrip(".")):
                continue  # an initial, as in "J. Smith"
            if re.fullmatch(r"[-*•\s]*\(?\d{1,3}[.)]", text[start:end].strip()):
                continue  # a paragraph number, as in "3. Non-compliance ..."
            _append(spans, text, start, end)
            start = end
        _append(spans, text, start, line.end())
    return spans


def _append(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def split_sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]
