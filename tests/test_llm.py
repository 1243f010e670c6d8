"""The LLM path through real llama.cpp with the bundled SmolLM2 GGUF.

SmolLM2-135M often invents; the contract is that whatever it writes is verified: every marker left
in the answer points to a retrieved passage, and an answer with no supported sentence is replaced
by the extractive one with a notice.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant
from assistant.answering import FALLBACK_NOTICE
from tests.conftest import free_port

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
def test_the_bundled_models_follow_up_rewrite_is_checked_before_use(assistant: Assistant,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """SmolLM2-135M answers a follow-up instead of rewriting it: its reply is no question, so it is set
    aside and the rule's rewrite is searched. (A scripted model's usable rewrite: test_llm_answers.py.)"""
    from assistant.llms import LlamaCppLLM

    replies: list[str] = []
    real_chat = LlamaCppLLM.chat

    def chat(self: LlamaCppLLM, messages: Any, **kwargs: Any) -> Any:
        reply = real_chat(self, messages, **kwargs)
        replies.append(reply.message.content or "")
        return reply

    monkeypatch.setattr(LlamaCppLLM, "chat", chat)
    bot = Assistant(assistant.settings.model_copy(update={"llm": assistant.settings.llm.model_copy(update={"backend": "llama-cpp"})}))
    standalone = bot.standalone("And what about Africa?", ["What did the UN Foundation meeting say about capacity building?"])
    assert len(replies) == 1 and not replies[0].strip().splitlines()[0].endswith("?"), replies
    assert standalone == "What did the UN Foundation meeting say about Africa?"


def test_unreachable_endpoint_rewrites_follow_ups_by_rule(assistant: Assistant) -> None:
    settings = assistant.settings.model_copy(
        update={"llm": assistant.settings.llm.model_copy(update={"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "timeout_s": 5})}
    )
    bot = Assistant(settings)
    standalone = bot.standalone("And what about Africa?", ["What did the UN Foundation meeting say about capacity building?"])
    assert standalone == "What did the UN Foundation meeting say about Africa?"


@pytest.mark.llm
def test_llm_judged_metrics_are_marked_as_such(assistant: Assistant, tmp_path: Path) -> None:
    from assistant.evaluation import judge_run
    from assistant.reports import write_reports

    bot = Assistant(assistant.settings.model_copy(update={"llm": assistant.settings.llm.model_copy(update={"backend": "llama-cpp"})}))
    items = [{"id": "q1", "question": "How much could AI contribute to the global economy by 2030?",
              "reference_answer": "USD 15.7 trillion.", "evidence": [], "must_include": []}]
    records = [assistant.ask(items[0]["question"])]
    judged = judge_run(bot, items, records)
    assert judged["model"].startswith("llama-cpp") and judged["judged_answers"] <= 1
    assert all(judged[k] is None or 0.0 <= judged[k] <= 1.0 for k in ("faithfulness", "correctness"))
    summary = {"qa_set": "x", "questions": 1, "metrics": {}, "latency_ms": {}, "judged": judged}
    markdown, _ = write_reports(tmp_path, summary, [{"id": "q1", **records[0]}], [])
    assert "LLM-judged" in markdown.read_text() and "not deterministic" in markdown.read_text()


@pytest.fixture()
def llama_server() -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server with the bundled GGUF, on a free loopback port."""
    from assistant.llms import bundled_gguf

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", bundled_gguf(), "--model_alias",
                               "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("llama_cpp.server did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.llm
def test_answers_stream_through_an_openai_compatible_server(assistant: Assistant, llama_server: str) -> None:
    llm = {"backend": "openai", "base_url": llama_server, "model": "smollm2", "timeout_s": 120}
    bot = Assistant(assistant.settings.model_copy(update={"llm": assistant.settings.llm.model_copy(update=llm)}))
    bot.embed_model = assistant.embed_model
    tokens: list[str] = []
    record = bot.ask("How much could AI contribute to the global economy by 2030?", on_token=tokens.append)
    assert record["models"]["llm"] == "openai:smollm2" and not any("failed" in n for n in record["notices"])
    assert len(tokens) > 1 or FALLBACK_NOTICE in record["notices"]  # streamed token by token, or replaced whole
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", record["answer"])}
    assert markers <= {c["n"] for c in record["citations"]}
