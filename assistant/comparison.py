"""Compare mode: how each document speaks to one question, side by side.

"How do these documents frame the digital divide?" is searched in each document on its own (the
same hybrid retrieval as any question). The refusal threshold, calibrated for questions that want
one fact, does not fit a theme; instead a document's statements are the sentences of its best
passages that contain every key term of the question (`digital`, `divide`), quoted verbatim in
retrieval order. A document with no such sentence is listed as saying nothing on the point rather
than padded with a passage that does not speak to it.

    >>> topic_terms("How do these documents frame the digital divide?")
    ['digit', 'divid']
    >>> topic_statements(["digit", "divid"], ["Skills matter. Digital divides widen.", "The digital divide closes."], 3)
    [('Digital divides widen.', 0), ('The digital divide closes.', 1)]
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.sentences import split_sentences
from assistant.store import keyword_tokens

# Words that ask for a comparison rather than name its subject, as keyword tokens.
_FRAMING = frozenset(keyword_tokens(
    "document documents text texts frame framing say says said position positions view views approach "
    "approaches treat treats describe describes address addresses discuss discusses compare comparison "
    "differ differs difference stance handle handles deal talk mention mentions regard regarding each "
    "one point issue topic"
))


def topic_terms(question: str) -> list[str]:
    """The question's key terms: its keyword tokens less the words that only ask for a comparison."""
    return list(dict.fromkeys(t for t in keyword_tokens(question) if t not in _FRAMING))


def topic_statements(terms: Sequence[str], passages: Sequence[str], limit: int) -> list[tuple[str, int]]:
    """Up to `limit` distinct sentences containing every term, with the index of their passage."""
    found: list[tuple[str, int]] = []
    seen: set[str] = set()
    for index, passage in enumerate(passages):
        for sentence in split_sentences(passage):
            tokens = set(keyword_tokens(sentence))
            if sentence in seen or not terms or not all(t in tokens for t in terms):
                continue
            seen.add(sentence)
            found.append((sentence, index))
            if len(found) == limit:
                return found
    return found
