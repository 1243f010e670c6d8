"""The chat window: `python app.py` serves the assistant at http://127.0.0.1:7860.

Thin by design: `build_app(assistant)` returns the Gradio Blocks, so handlers can be tested without
a server; the index is built in the background on first run while the page already answers.
"""

from __future__ import annotations

import html
import os
import threading
from typing import Any

import gradio as gr

from assistant import Assistant, QuestionError, Settings
from assistant.store import IndexUnavailable


def render_answer(record: dict[str, Any]) -> str:
    """Markdown for one answer: the text, notices, unsupported sentences and the sources."""
    lines = [html.escape(record["answer"])]
    lines += [f"\n> **Note:** {html.escape(n)}" for n in record["notices"]]
    if record["unsupported"]:
        lines.append("\n**Not supported by the cited passages:** " + " ".join(html.escape(s) for s in record["unsupported"]))
    if record["refused"]:
        lines.append("\n**Nearest passages:**")
        lines += [f"- *{html.escape(r['doc_id'])}, {html.escape(r['section'] or 'start')}*: {html.escape(r['text'][:240])}"
                  for r in record["retrieved"][:3]]
    else:
        lines.append("\n**Sources**")
        for c in record["citations"]:
            page = f", page {c['page']}" if c["page"] else ""
            lines.append(f"{c['n']}. *{html.escape(c['title'])}*, {html.escape(c['issuer'])}, {c['date']}; "
                         f"{html.escape(c['section'] or 'opening')}{page}")
    return "\n".join(lines)


class IndexBuilder:
    """Builds the index once in the background, so the page serves while the model loads."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.error = ""
        self.ready = threading.Event()

    def start(self) -> None:
        def work() -> None:
            try:
                self.assistant.ingest()
            except Exception as exc:  # noqa: BLE001 -- reported in the chat; the app keeps serving
                self.error = str(exc)
            finally:
                self.ready.set()

        threading.Thread(target=work, daemon=True, name="index-builder").start()


def build_app(assistant: Assistant, builder: IndexBuilder | None = None) -> gr.Blocks:
    def respond(question: str, history: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
        history = history + [{"role": "user", "content": html.escape(question or "")}]
        if builder is not None and not builder.ready.is_set():
            reply = "The index is still being built (the first start takes about a minute); please ask again shortly."
        elif builder is not None and builder.error:
            reply = f"The index could not be built: {html.escape(builder.error)}"
        else:
            try:
                reply = render_answer(assistant.ask(question))
            except (QuestionError, IndexUnavailable) as exc:
                reply = html.escape(str(exc))
        return "", history + [{"role": "assistant", "content": reply}]

    with gr.Blocks(title="AI-governance assistant") as app:
        gr.Markdown("## AI-governance assistant\nAnswers cite the governance documents they come from.")
        chat = gr.Chatbot(label="Conversation", sanitize_html=True)
        question = gr.Textbox(label="Your question", placeholder="e.g. What fines apply to prohibited AI practices?")
        question.submit(respond, [question, chat], [question, chat], api_name="chat")
        gr.Examples(
            ["What fines apply to prohibited AI practices under the EU AI Act?",
             "How much could AI contribute to the global economy by 2030?",
             "What are the OECD principles for responsible stewardship of trustworthy AI?"],
            inputs=question,
        )
    return app


if __name__ == "__main__":
    assistant = Assistant(Settings())
    builder = IndexBuilder(assistant)
    builder.start()
    build_app(assistant, builder).queue(default_concurrency_limit=4).launch(
        server_name="127.0.0.1", server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    )
