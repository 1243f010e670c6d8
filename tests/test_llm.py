"""The LLM path through real llama.cpp with the bundled SmolLM2 GGUF.

SmolLM2-135M often invents; the contract is that whatever it writes is verified: every marker left
in the answer points to a retrieved passage, and an answer with no supported sentence is replaced
by the extractive one with a notice.
"""

from __future__ import annotations

import re

import pytest

from assistant import Assistant
from assistant.answering import FALLBACK_NOTICE

pytest.importorskip("llama_cpp", reason="install the `llm` extra: pip install -e '.[llm]'")


@pytest.mark.llm
@pytest.mark.parametrize(
    "question",
    ["How much could AI contribute to the global economy by 2030?", "What fines apply to prohibited AI practices?"],
)
def test_llm_answers_are_verified_or_replaced(assistant: Assistant, question: str) -> None:
    bot = Assistant(assistant.settings.model_copy(update={"llm": assistant.settings.llm.model_copy(update={"backend": "llama-cpp"})}))
    bot.embed_model = assistant.embed_model  # share the loaded embedder
    tokens: list[str] = []
    record = bot.ask(question, on_token=tokens.append)
    assert tokens, "the answer was not streamed"
    assert record["models"]["llm"].startswith("llama-cpp")
    numbers = {c["n"] for c in record["citations"]}
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", record["answer"])}
    assert markers <= numbers
    retrieved_ids = {r["id"] for r in record["retrieved"]}
    assert all(c["id"] in retrieved_ids for c in record["citations"])
    if FALLBACK_NOTICE in record["notices"]:
        assert record["citations"], "the extractive fallback cites its sentences"
    elif not record["refused"]:
        supported = [s for s in re.split(r"(?<=[.!?])\s+", record["answer"]) if "[unsupported]" not in s]
        assert any(re.search(r"\[\d+\]", s) for s in supported)


def test_unreachable_endpoint_falls_back_to_extractive(assistant: Assistant) -> None:
    settings = assistant.settings.model_copy(
        update={"llm": assistant.settings.llm.model_copy(update={"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "timeout_s": 5})}
    )
    bot = Assistant(settings)
    bot.embed_model = assistant.embed_model
    record = bot.ask("How much could AI contribute to the global economy by 2030?")
    assert "15.7 trillion" in record["answer"]
    assert any("language model failed" in n for n in record["notices"])


@pytest.mark.llm
def test_follow_up_is_rewritten_by_the_llm_or_the_rule(assistant: Assistant) -> None:
    from assistant.conversation import rewrite_follow_up, rewrite_with_llm

    bot = Assistant(assistant.settings.model_copy(update={"llm": assistant.settings.llm.model_copy(update={"backend": "llama-cpp"})}))
    previous = "What did the UN Foundation meeting say about capacity building?"
    assert bot.llm is not None
    by_llm = rewrite_with_llm(bot.llm, "And what about Africa?", [previous])
    rule = rewrite_follow_up("And what about Africa?", previous, {"unf": ["UN Foundation"]})
    standalone = bot.standalone("And what about Africa?", [previous])
    assert standalone == (by_llm or rule)  # the LLM's question when usable, else the rule's
    assert standalone.endswith("?") and standalone != "And what about Africa?"


def test_unreachable_endpoint_rewrites_follow_ups_by_rule(assistant: Assistant) -> None:
    settings = assistant.settings.model_copy(
        update={"llm": assistant.settings.llm.model_copy(update={"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "timeout_s": 5})}
    )
    bot = Assistant(settings)
    standalone = bot.standalone("And what about Africa?", ["What did the UN Foundation meeting say about capacity building?"])
    assert standalone == "What did the UN Foundation meeting say about Africa?"
