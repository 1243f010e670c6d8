"""Follow-up questions: rewrite "And what about Africa?" into a question that stands alone.

Retrieval sees one question at a time, so a follow-up must carry what it leaves out. With no LLM
the rewrite is a deterministic rule a staff member can predict. A follow-up leans on the previous
question: it opens with "And", "What about", leans on "they", "it", "their", or is a few words
long ("Which article?", "Moderated by whom?"). "What about Y?" takes the previous question with its
topic (what follows "about", "on", "regarding") replaced by Y; any other follow-up is searched with
the previous question beside it, "(following: ...)", which says what "they" or "that one" are
without guessing. With an LLM the LLM rewrites, and the rule is the fallback when its output is
unusable. The rewritten question is always shown, so nobody has to guess what was searched.

    >>> rewrite_follow_up("And what did they say about Africa?", "What did the UN Foundation meeting say about capacity building?")
    'What did they say about Africa? (following: What did the UN Foundation meeting say about capacity building?)'
    >>> rewrite_follow_up("What about general-purpose AI models?", "What does the Act say about fines?")
    'What does the Act say about general-purpose AI models?'
    >>> rewrite_follow_up("Which article?", "Must staff be trained in AI?")
    'Which article? (following: Must staff be trained in AI?)'
    >>> rewrite_follow_up("What about registration, is there a deadline?", "Whom do I contact about the event?")
    'What about registration, is there a deadline? (following: Whom do I contact about the event?)'
    >>> rewrite_follow_up("Who chaired the meeting at the UN Foundation?", "What fines apply?")
    'Who chaired the meeting at the UN Foundation?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import LLM

from assistant.prompts import REWRITE_SYSTEM, REWRITE_USER
from assistant.questions import FOLLOWING

_LEAD = re.compile(r"^\s*(?:and|but|also|so|then|ok(?:ay)?|now)\b[\s,]*", re.IGNORECASE)
# "What about Y?" with nothing after Y: "What about registration, is there a deadline?" asks its own question.
_WHAT_ABOUT = re.compile(r"^(?:what|how)\s+about\s+(?P<topic>[^,;]+?)\s*\??\s*$", re.IGNORECASE)
_BACK_REFERENCE = re.compile(r"\b(they|them|their|it|its|these|those|he|she|his|her|(?:that|this) one)\b", re.IGNORECASE)
_TOPIC = re.compile(r"\b(?:about|on|regarding|concerning)\s+(?P<topic>[^?]+?)\s*\??\s*$", re.IGNORECASE)
SHORT = 4  # words: a question this short ("Which article?", "For what term?") leans on the one before


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the one before it."""
    return bool(_LEAD.match(question) or re.match(r"\s*(?:what|how)\s+about\b", question, re.IGNORECASE)
                or _BACK_REFERENCE.search(question)
                or len(question.split()) <= SHORT)


def rewrite_follow_up(question: str, previous: str | None) -> str:
    """The standalone form of `question`, given the previous (standalone) question; see the module."""
    question = question.strip()
    if not previous or not is_follow_up(question):
        return question
    previous = previous.split(FOLLOWING)[0]  # what an earlier follow-up leant on is not carried on
    body = _LEAD.sub("", question) or question
    body = body[0].upper() + body[1:]
    what_about = _WHAT_ABOUT.match(body)
    earlier = _TOPIC.search(previous)
    if what_about and earlier:
        return f"{previous[: earlier.start('topic')]}{what_about.group('topic')}?"
    return f"{body.rstrip()}{FOLLOWING}{previous.strip()})"


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
