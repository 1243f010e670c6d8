"""The chat window diplomats use and the source view staff check: `python app.py`.

`build_app(assistant)` returns the Gradio Blocks, so the handlers can be tested without a server;
`main()` launches it. The page serves at once: the index is opened (or built, on the first run) in
the background while the page says so. Rendering lives in `assistant.views`; this module wires
events to the `Assistant`.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from assistant import Assistant, Filters, QuestionError, Settings
from assistant.catalog import CatalogError, load_catalog
from assistant.exports import answer_markdown, append_feedback, audit_record, feedback_entry
from assistant.store import IndexUnavailable
from assistant.views import answer_view, citation_label, passage_view, status_view

log = logging.getLogger(__name__)

EXAMPLES = [  # (the kind of answer it shows, the question): one of each shape a newcomer should see
    ("A fact", "What fines apply to prohibited AI practices under the EU AI Act?"),
    ("A figure", "How much could AI contribute to the global economy by 2030?"),
    ("A briefing", "What do the documents say about the digital divide?"),
    ("A comparison", "How do the OECD Recommendation and the AI Act differ on transparency?"),
]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SHIPPED_SET = Path(__file__).resolve().parent / "evals" / "governance_qa.jsonl"
_DOWNLOADS = tempfile.TemporaryDirectory(prefix="assistant-downloads-")  # audit records, eval runs
CSS = """
.passage-context { max-height: 28em; overflow-y: auto; font-size: 0.92em;
                   border-left: 3px solid #ccc; padding-left: 0.6em; }
.passage-context h1, .passage-context h2, .passage-context h3, .passage-context h4, .passage-context h5,
.passage-context h6 { font-size: 1em; font-weight: 700; margin: 0.6em 0 0.2em; }
.passage-context p, .passage-context ul, .passage-context ol { margin: 0.3em 0; }
.passage-context table { border-collapse: collapse; margin: 0.4em 0; }
.passage-context th, .passage-context td { border: 1px solid #ccc; padding: 2px 6px; }
.passage-context mark.cited-span { display: block; background: #fff1b8; color: inherit; padding: 2px 6px;
                                    border-left: 3px solid #e0a800; margin: 0.3em 0; }
.catalog-entry th { text-align: left; padding-right: 1em; font-weight: 600; }
.passage-context .addresses-assistant { background: #fde2e1; border: 1px dashed #b91c1c; padding: 0 2px; }
.status-dot { display: inline-block; width: 0.65em; height: 0.65em; border-radius: 50%; margin-right: 0.3em;
              background: #9ca3af; vertical-align: baseline; }
.status-dot.status-ready { background: #16a34a; }
.status-dot.status-loading { background: #f59e0b; }
.status-dot.status-failed { background: #dc2626; }
#chat .bubble-wrap { margin-top: 2.6em; height: calc(100% - 2.6em); }  /* scrolled text stays clear of the label and buttons */
"""


class IndexBuilder:
    """Opens the index, building or updating it on first run, in the background.

    The page is served meanwhile and says that the model is loading; a failure is kept and shown
    (the app keeps serving, and the message says what to run).
    """

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.error = ""
        self.ready = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._work, daemon=True, name="index-builder").start()

    def _work(self) -> None:
        try:
            if self.assistant.settings.serve.ingest_on_start:
                self.assistant.ingest()
            else:
                self.assistant.store.check_ready()
            # The question encoder and the stored sentence vectors, loaded now: the first question answers at full speed.
            self.assistant.embed_model.get_query_embedding("warm-up")
            self.assistant.store.sentences.lookup(())
        except Exception as exc:  # noqa: BLE001 -- reported in the page; the app keeps serving
            self.error = str(exc)
        finally:
            self.ready.set()


def _filters(docs: list[str], issuers: list[str], kinds: list[str], date_from: str, date_to: str) -> Filters:
    return Filters(tuple(docs or ()), tuple(issuers or ()), tuple(kinds or ()), (date_from or "").strip(), (date_to or "").strip())


def _stream(assistant: Assistant, question: str, filters: Filters, shape: str | None = None) -> Iterator[str | dict[str, Any]]:
    """Tokens as the answer is written (the extractive answer arrives whole), then the record."""
    tokens: queue.Queue[str] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["record"] = assistant.ask(question, filters, on_token=tokens.put, shape=shape)
        except Exception as exc:  # noqa: BLE001 -- handed back to the handler, which words it
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    while worker.is_alive() or not tokens.empty():
        try:
            yield tokens.get(timeout=0.05)
        except queue.Empty:
            continue
    if "error" in outcome:
        raise outcome["error"]
    yield outcome["record"]


def _audit_file(record: dict[str, Any], asked: str, assistant: Assistant) -> str:
    """The answer's audit record as a JSON file for the download button (removed when the app exits)."""
    audit = audit_record(record, asked, assistant.settings.index_shape())
    path = Path(_DOWNLOADS.name) / f"audit-{audit['time'].replace(':', '')}-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(audit, ensure_ascii=False, indent=2), encoding="utf-8")
    return str(path)


def _sources(record: dict[str, Any]) -> list[tuple[str, str]]:
    """Radio choices (label, passage id): the citations, or a refusal's nearest passages."""
    if record.get("citations"):
        return [(citation_label(c), c["id"]) for c in record["citations"]]
    return [(f"nearest {r['rank']}: {r.get('title', r['doc_id'])} — {r['section'] or 'opening'}", r["id"])
            for r in record.get("retrieved", [])[:5]]


class ChatHandlers:
    """The page's event handlers, as plain methods that tests call without a server.

    Per-browser-session state (`new_state()`) holds the conversation's standalone questions (for
    follow-ups), the record behind each answer (for feedback) and the labels of the listed sources.
    """

    def __init__(self, assistant: Assistant, builder: IndexBuilder | None = None) -> None:
        self.assistant = assistant
        self.builder = builder

    @staticmethod
    def new_state() -> dict[str, Any]:
        return {"history": [], "records": {}, "labels": {}}

    def blocked(self) -> str | None:
        """Why questions cannot be answered yet, or None."""
        if self.builder is None:
            return None
        if not self.builder.ready.is_set():
            return "The index is still loading (the first start builds it: about a minute); please ask again shortly."
        return f"The index could not be opened: {self.builder.error}" if self.builder.error else None

    def respond(self, question: str, chat: list[dict[str, Any]], state: dict[str, Any], compare: bool = False,
                docs: list[str] | None = None, issuers: list[str] | None = None, kinds: list[str] | None = None,
                date_from: str = "", date_to: str = "") -> Iterator[tuple[Any, ...]]:
        """Stream one turn: (question box, chat, state, rewritten question, sources, Markdown copy,
        audit download, source panel)."""
        chat = list(chat or []) + [{"role": "user", "content": html.escape((question or "").strip())}]
        unchanged = gr.update()

        def show(reply: str, rewritten: str = "", record: dict[str, Any] | None = None) -> tuple[Any, ...]:
            messages = chat + [{"role": "assistant", "content": reply}]
            if record is None:
                return "", messages, state, rewritten, gr.update(choices=[], value=None), unchanged, unchanged, unchanged
            answered = "answer" in record
            choices = _sources(record)
            state["labels"] = {passage_id: label for label, passage_id in choices}
            audit = _audit_file(record, question, self.assistant) if answered else None
            return ("", messages, state, rewritten, gr.update(choices=choices, value=None),
                    answer_markdown(record) if answered else "", gr.update(value=audit, visible=answered), "")

        problem = self.blocked()
        if problem:
            yield show(problem)
            return
        try:
            standalone = self.assistant.standalone(question, state["history"])
            rewritten = f"**Searched as:** {html.escape(standalone)}" if standalone != question.strip() else ""
            filters = _filters(docs or [], issuers or [], kinds or [], date_from, date_to)
            yield show("Searching the documents…", rewritten)
            partial, record = "", {}
            for piece in _stream(self.assistant, standalone, filters, "comparison" if compare else None):
                if isinstance(piece, str):
                    partial += piece
                    yield show(html.escape(partial), rewritten)
                else:
                    record = piece
            reply = answer_view(record)
        except (QuestionError, IndexUnavailable) as exc:
            yield show(html.escape(str(exc)))
            return
        state["history"].append(standalone)
        state["records"][len(chat)] = record
        yield show(reply, rewritten, record)

    def open_passage(self, chunk_id: str | None, state: dict[str, Any]) -> str:
        """The source panel for a clicked source: the passage highlighted in its surrounding text."""
        if not chunk_id:
            return ""
        try:
            found = self.assistant.passage_context(chunk_id)
        except IndexUnavailable as exc:
            return f"<p>{html.escape(str(exc))}</p>"
        label = state["labels"].get(chunk_id, found["passage"]["title"])
        return passage_view({**found["passage"], "label": label}, found["before"], found["after"], found["document"])

    def feedback(self, state: dict[str, Any], comment: str, data: gr.LikeData) -> str:
        """Append a thumbs up/down on an answer, with the comment, to the feedback file."""
        index = data.index if isinstance(data.index, int) else data.index[0]
        record = state["records"].get(index)
        if record is None or data.liked not in (True, False):
            return "Feedback is recorded for answers."
        path = self.assistant.settings.serve.feedback_path
        append_feedback(path, feedback_entry(record, bool(data.liked), comment or ""))
        return f"Thank you: your thumbs {'up' if data.liked else 'down'} was saved to {path}."

    def evaluate(self, qa_file: str | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 -- Gradio injects progress through this default
        """The Evaluate tab: run a QA set (the shipped one when none is uploaded) and show the run.

        Returns (summary Markdown, three chart paths, failure rows, run folder as a zip).
        """
        from assistant.evaluation import failures_of, run_eval, run_markdown  # matplotlib: only when asked
        from assistant.qa_sets import QASetError

        nothing: tuple[Any, ...] = (None, None, None, [], gr.update(visible=False))
        problem = self.blocked()
        if qa_file and not self.assistant.settings.serve.uploads:
            problem = "Uploads are off; set ASSISTANT_SERVE__UPLOADS=true to evaluate your own QA sets here."
        if problem:
            return (problem, *nothing)
        qa_path = Path(qa_file) if qa_file else SHIPPED_SET
        out_dir = Path(_DOWNLOADS.name) / f"eval-{uuid.uuid4().hex[:8]}"

        def tick(done: int, total: int) -> None:
            progress((done, total), desc="Asking the questions")

        try:
            summary = run_eval(self.assistant, qa_path, out_dir, on_progress=tick)
        except QASetError as exc:
            return ("**The QA set is not valid:**\n\n" + "\n".join(f"- {html.escape(e)}" for e in exc.errors), *nothing)
        except IndexUnavailable as exc:
            return (html.escape(str(exc)), *nothing)
        # Dataframe cells are shown as plain text, so document text needs no escaping here.
        failed = [[f["id"], f["question"], f["kind"], " / ".join(f["expected"]), f["answer"][:300]] for f in failures_of(out_dir)]
        archive = shutil.make_archive(str(out_dir), "zip", out_dir)
        charts = [str(out_dir / f"{name}.png") for name in ("hit_at_k", "latency", "accuracy_by_document")]
        return (run_markdown(summary), *charts, failed, gr.update(value=archive, visible=True))

    def document_rows(self) -> list[list[Any]]:
        """The Documents tab: the catalog with chunk counts and when each document was indexed."""
        try:
            documents = self.assistant.documents()
        except IndexUnavailable as exc:
            return [[str(exc), "", "", "", 0, "", "", ""]]
        return [[d["title"], d.get("issuer", ""), d.get("date", ""), d.get("kind", ""), d["chunks"],
                 d.get("indexed_at", ""), d.get("source", ""), d.get("reuse", "")] for d in documents]

    def ask(self, question: str) -> dict[str, Any]:
        """Answer one question; returns the same record as `python -m assistant ask --json`."""
        problem = self.blocked()
        if problem:
            raise gr.Error(problem)
        try:
            return self.assistant.ask(question)
        except (QuestionError, IndexUnavailable) as exc:
            raise gr.Error(str(exc)) from exc

    def status(self) -> tuple[str, Any]:
        """The status line, and the timer that polls it switched off once the index is ready."""
        return self.status_line(), gr.Timer(active=self.builder is not None and not self.builder.ready.is_set())

    def status_line(self) -> str:
        """Loading, ready or failed (with the reason), as `status_view` shows it."""
        if self.builder is None:
            return status_view("ready")
        if not self.builder.ready.is_set():
            return status_view("loading")
        return status_view("failed", self.builder.error) if self.builder.error else status_view("ready")


def pick_example(data: gr.SelectData) -> str:
    return str(data.value["text"])


def build_app(assistant: Assistant, builder: IndexBuilder | None = None) -> gr.Blocks:
    """The chat (Ask tab) and the catalog (Documents tab) over `assistant`."""
    handlers = ChatHandlers(assistant, builder)
    try:
        catalog = list(load_catalog(assistant.settings.corpus_dir).values())
    except CatalogError:
        catalog = []

    with gr.Blocks(title="AI-governance assistant", delete_cache=(3600, 86400)) as app:
        gr.Markdown("## AI-governance assistant\nAnswers quote the governance documents they come from; "
                    "every sentence carries its source.")
        status_line = gr.HTML(handlers.status_line(), elem_id="status")
        with gr.Tab("Ask"), gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", sanitize_html=True, height=520, elem_id="chat",
                                  examples=[{"text": q, "display_text": f"{kind}: {q}"} for kind, q in EXAMPLES],
                                  placeholder="Ask about the indexed AI-governance documents.")
                rewritten = gr.Markdown(elem_id="rewritten")
                with gr.Row():
                    question = gr.Textbox(label="Your question", scale=5, elem_id="question",
                                          placeholder="e.g. What fines apply to prohibited AI practices?")
                    compare = gr.Checkbox(label="Compare documents", value=False, scale=1, elem_id="compare")
                with gr.Accordion("Filters", open=False):
                    with gr.Row():
                        docs = gr.Dropdown([(d.title, d.id) for d in catalog], multiselect=True, label="Documents")
                        issuers = gr.Dropdown(sorted({d.issuer for d in catalog}), multiselect=True, label="Issuing body")
                        kinds = gr.Dropdown(sorted({d.kind for d in catalog}), multiselect=True, label="Kind")
                    with gr.Row():
                        date_from = gr.Textbox(label="From date (YYYY, YYYY-MM or YYYY-MM-DD)")
                        date_to = gr.Textbox(label="To date")
                with gr.Accordion("Copy, download, feedback", open=False):
                    copy = gr.Textbox(label="Answer with citations (Markdown)", lines=4, buttons=["copy"],
                                      interactive=False, elem_id="copy")
                    audit = gr.DownloadButton("Download audit record (JSON)", visible=False, elem_id="audit")
                    comment = gr.Textbox(label="Comment on an answer (optional; then click thumbs up or down under it)")
                    thanks = gr.Markdown()
            with gr.Column(scale=2):
                sources = gr.Radio([], label="Sources: click one to read it in context", elem_id="sources")
                panel = gr.HTML("<p>Click a source to see the passage within its document.</p>", elem_id="passage")
        with gr.Tab("Evaluate"):
            uploads = assistant.settings.serve.uploads
            gr.Markdown("Run a QA set (see `evals/README.md`; RAGAS-style JSONL or CSV also work) through the same "
                        "engine as the chat. " + ("Leave the file empty to run the shipped `evals/governance_qa.jsonl`."
                                                   if uploads else "This runs the shipped `evals/governance_qa.jsonl` "
                                                   "(uploads are off: `ASSISTANT_SERVE__UPLOADS=true` turns them on)."))
            with gr.Row():
                qa_file = gr.File(label="QA set", file_types=[".jsonl", ".csv"], type="filepath", visible=uploads,
                                  elem_id="qa-file")
                run = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
            run_summary = gr.Markdown(elem_id="eval-summary")
            with gr.Row():
                charts = [gr.Image(label=label, type="filepath", show_label=True)
                          for label in ("Hit@k", "Latency", "Accuracy by document")]
            failed = gr.Dataframe(headers=["id", "Question", "Failure", "Expected evidence", "Answer"],
                                  interactive=False, wrap=True, label="Failures")
            run_zip = gr.DownloadButton("Download the run folder (zip)", visible=False)
        with gr.Tab("Documents"):
            gr.Markdown("The documents the assistant answers from, as `corpus/catalog.toml` describes them. *Passages* "
                        "is how many pieces each is split into for searching. To add one, put the file in `corpus/`, "
                        "give it a catalog entry and restart (or run `python -m assistant ingest`).")
            table = gr.Dataframe(headers=["Title", "Issuing body", "Date", "Kind", "Passages", "Indexed", "Source", "Reuse"],
                                 interactive=False, wrap=True, elem_id="documents")
            refresh = gr.Button("Refresh")

        state = gr.State(ChatHandlers.new_state())  # Gradio copies it for each browser session
        inputs = [question, chat, state, compare, docs, issuers, kinds, date_from, date_to]
        outputs = [question, chat, state, rewritten, sources, copy, audit, panel]
        question.submit(handlers.respond, inputs, outputs, api_visibility="private")
        chat.example_select(pick_example, None, question, api_visibility="private").then(
            handlers.respond, inputs, outputs, api_visibility="private")
        sources.change(handlers.open_passage, [sources, state], panel, api_visibility="private")
        chat.like(handlers.feedback, [state, comment], thanks, api_visibility="private")
        refresh.click(handlers.document_rows, None, table, api_visibility="private")
        app.load(handlers.document_rows, None, table, api_visibility="private")
        if builder is not None:
            timer = gr.Timer(1.0)
            timer.tick(handlers.status, None, [status_line, timer], api_visibility="private")
            timer.tick(handlers.document_rows, None, table, api_visibility="private")
        run.click(handlers.evaluate, qa_file, [run_summary, *charts, failed, run_zip],
                  concurrency_limit=1, api_visibility="private")
        gr.api(handlers.ask, api_name="ask")
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the AI-governance assistant's chat.")
    parser.add_argument("--host", help="address to bind (default: settings `serve.host`, 127.0.0.1)")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback address or share link without sign-in")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        host = args.host or settings.serve.host
        users = settings.serve.credentials()
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    exposed = args.share or host not in LOOPBACK
    if exposed and not users and not args.insecure:
        print(f"error: serving on {host}{' with a share link' if args.share else ''} needs sign-in: set "
              "ASSISTANT_SERVE__USERS='name:password' or ASSISTANT_SERVE__USERS_FILE, "
              "or pass --insecure to serve without it.", file=sys.stderr)
        return 2
    if exposed:
        print(f"Serving on {host}{' and a public share link' if args.share else ''}: "
              + (f"sign-in required ({len(users)} user(s))." if users else
                 "WITHOUT sign-in (--insecure): anyone who can reach it can use the assistant."), file=sys.stderr)
    assistant = Assistant(settings)
    builder = IndexBuilder(assistant)
    builder.start()
    app = build_app(assistant, builder).queue(default_concurrency_limit=settings.serve.concurrency)
    app.launch(server_name=host, server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
               share=args.share, auth=users or None, css=CSS, max_file_size=int(settings.serve.max_upload_mb * 2**20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
