"""The minimal chat: handlers called directly, without a server."""

from __future__ import annotations

import gradio as gr

from app import build_app, render_answer
from assistant import Assistant


def test_build_app_returns_blocks(assistant: Assistant) -> None:
    assert isinstance(build_app(assistant), gr.Blocks)


def test_rendered_answer_lists_sources_and_escapes_markup(assistant: Assistant) -> None:
    record = assistant.ask("How much could AI contribute to the global economy by 2030?")
    record["answer"] += " <script>alert(1)</script>"
    text = render_answer(record)
    assert "15.7 trillion" in text and "**Sources**" in text
    assert "Multilateral AI Diplomacy" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
