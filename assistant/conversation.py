"""Follow-up questions: rewrite "And what did they say about Africa?" into a standalone question.

Retrieval sees one question at a time, so a follow-up must carry what it leaves out. With no LLM
the rewrite is a deterministic rule a staff member can predict: a follow-up ("And…", "What about…",
or one that leans on "they", "it", "their") takes the previous question's subject (the document it
named) and, for "What about Y?", the previous question with its topic replaced by Y. With an LLM the
LLM rewrites, and the rule is the fallback when its output is unusable. The rewritten question is
always shown, so nobody has to guess what was searched.

    >>> aliases = {"unf": ["UN Foundation"]}
    >>> rewrite_follow_up("And what did they say about Africa?",
    ...                   "What did the UN Foundation meeting say about capacity building?", aliases)
    'What did the UN Foundation say about Africa?'
    >>> rewrite_follow_up("What about general-purpose AI models?", "What fines apply to providers?", aliases)
    'What fines apply to general-purpose AI models?'
    >>> rewrite_follow_up("Who chaired the meeting?", "What fines apply?", aliases)
    'Who chaired the meeting?'
    >>> rewrite_follow_up("And who pays them?", "What fines apply to providers?", aliases)
    'Who pays them (regarding providers)?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import LLM

from assistant.prompts import REWRITE_SYSTEM, REWRITE_USER

_LEAD = re.compile(r"^\s*(?:and|but|also|so|then|ok(?:ay)?|now)\b[\s,]*", re.IGNORECASE)
_WHAT_ABOUT = re.compile(r"^(?:what|how)\s+about\s+(?P<topic>.+?)\s*\??\s*$", re.IGNORECASE)
_BACK_REFERENCE = re.compile(r"\b(they|them|their|it|its|this document|that document|the document)\b", re.IGNORECASE)
_TOPIC = re.compile(r"\b(?:about|on|regarding|concerning|for|to)\s+(?P<topic>[^?]+?)\s*\??\s*$", re.IGNORECASE)
_REPLACEMENT = {"their": "{subject}'s", "its": "{subject}'s"}


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the one before it."""
    return bool(_LEAD.match(question) or _WHAT_ABOUT.match(question) or _BACK_REFERENCE.search(question))


def _subject(previous: str, aliases: dict[str, Sequence[str]]) -> str:
    """The document the previous question named, as it named it ("the UN Foundation"), or ''."""
    for names in aliases.values():
        for name in names:
            found = re.search(rf"(?:\bthe\s+)?(?<![\w/-]){re.escape(name)}(?![\w/-])", previous,
                              0 if name.isupper() else re.IGNORECASE)
            if found:
                return found.group()
    return ""


def rewrite_follow_up(question: str, previous: str | None, aliases: dict[str, Sequence[str]]) -> str:
    """The standalone form of `question`, given the previous (standalone) question; see the module."""
    question = question.strip()
    if not previous or not is_follow_up(question):
        return question
    if _subject(question, aliases) and not _WHAT_ABOUT.match(_LEAD.sub("", question)):
        return question  # it names its own document: "it" refers to that
    body = _LEAD.sub("", question) or question
    what_about = _WHAT_ABOUT.match(body)
    if what_about:
        topic = what_about.group("topic")
        earlier = _TOPIC.search(previous)
        if earlier and not _subject(earlier.group("topic"), aliases):  # never drop the document named
            return f"{previous[: earlier.start('topic')]}{topic}?"
        return f"{previous.rstrip(' ?')}, regarding {topic}?"
    subject = _subject(previous, aliases)
    if subject and _BACK_REFERENCE.search(body):
        def replace(match: re.Match[str]) -> str:
            return _REPLACEMENT.get(match.group(1).lower(), "{subject}").format(subject=subject)

        body = _BACK_REFERENCE.sub(replace, body, count=1)
    elif not subject:
        earlier = _TOPIC.search(previous)
        context = earlier.group("topic") if earlier else previous.rstrip(" ?")
        body = f"{body.rstrip(' ?')} (regarding {context})?"
    return body[0].upper() + body[1:]


def rewrite_with_llm(llm: LLM, question: str, history: Sequence[str]) -> str | None:
    """The LLM's standalone rewrite, or None when its output is not a usable question."""
    earlier = "\n".join(f"- {q}" for q in history[-3:])
    reply = llm.chat([
        ChatMessage(role="system", content=REWRITE_SYSTEM),
        ChatMessage(role="user", content=REWRITE_USER.format(history=earlier, question=question)),
    ])
    text = (reply.message.content or "").strip().strip('"').splitlines()
    rewritten = text[0].strip() if text else ""
    if not rewritten or len(rewritten) > 3 * len(question) + 200 or not rewritten.endswith("?"):
        return None
    return rewritten
