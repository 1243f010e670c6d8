"""The chat window and source view: handlers called directly, without a server.

The server tests (gradio_client, browser) are in test_serving.py.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

import app
from app import ChatHandlers, build_app
from assistant import Assistant
from assistant.settings import ServeSettings


def turn(handlers: ChatHandlers, question: str, state: dict[str, Any], chat: list[Any] | None = None,
         **options: Any) -> list[tuple[Any, ...]]:
    return list(handlers.respond(question, chat or [], state, **options))


def reply(output: tuple[Any, ...]) -> str:
    return str(output[1][-1]["content"])


def test_only_the_ask_endpoint_is_public(assistant: Assistant) -> None:
    blocks = build_app(assistant)
    public = [d["api_name"] for d in blocks.config["dependencies"] if d.get("api_visibility") == "public"]
    assert isinstance(blocks, gr.Blocks) and public == ["ask"]


def test_answer_streams_then_lists_sources_copy_and_audit(assistant: Assistant) -> None:
    handlers = ChatHandlers(assistant)
    outputs = turn(handlers, "What fines apply to prohibited AI practices under the EU AI Act?", handlers.new_state())
    assert reply(outputs[0]) == "Searching the documents…"
    final = outputs[-1]
    assert "EUR 35 000 000" in reply(final) and "**[1]**" in reply(final) and "**Sources**" in reply(final)
    assert "**[1]** *(Article 99 &gt; 3)*" in reply(final)  # the quoted sentence says where it stands
    labels = [label for label, _ in final[4]["choices"]]
    assert labels[0].startswith("[1] Regulation (EU) 2024/1689") and "Article 99" in labels[0]
    assert "[^1]" in final[5] and "[^1]: *Regulation (EU) 2024/1689" in final[5]
    audit = json.loads(Path(final[6]["value"]).read_text())
    assert audit["question"].startswith("What fines apply") and audit["rewritten_question"] is None
    assert audit["citations"][0]["id"] == final[4]["choices"][0][1] and "35 000 000" in audit["citations"][0]["text"]
    assert audit["index_hash"] == assistant.settings.index_hash() and audit["index_settings"]["chunking_version"]
    assert audit["models"]["embedding"] and audit["time"].endswith("+00:00")


def test_follow_up_is_rewritten_and_shown(assistant: Assistant) -> None:
    handlers = ChatHandlers(assistant)
    state = handlers.new_state()
    first = turn(handlers, "What does the OECD Recommendation say about transparency?", state)[-1]
    follow = turn(handlers, "And what about accountability?", state, first[1])[-1]
    assert follow[3] == "**Searched as:** What does the OECD Recommendation say about accountability?"
    assert "Searched only Recommendation of the Council on Artificial Intelligence" in reply(follow)
    assert state["history"][-1] == "What does the OECD Recommendation say about accountability?"


def test_refusal_names_documents_and_offers_nearest_passages(assistant: Assistant) -> None:
    handlers = ChatHandlers(assistant)
    final = turn(handlers, "What did the FIFA World Cup committee decide about stadium AI cameras?", handlers.new_state())[-1]
    assert "do not answer this question" in reply(final) and "Documents searched" in reply(final)
    assert "**Nearest passages**" in reply(final) and "\n> " in reply(final)  # each passage quoted as Markdown
    assert "###" not in reply(final)  # a heading shows as a heading, not as its Markdown
    assert final[4]["choices"] and all(label.startswith("nearest ") for label, _ in final[4]["choices"])


def test_filters_narrow_retrieval(assistant: Assistant) -> None:
    handlers = ChatHandlers(assistant)
    state = handlers.new_state()
    final = turn(handlers, "What is said about human oversight?", state, docs=["oecd-ai-2019"])[-1]
    record = state["records"][1]
    assert record["retrieved"] and {r["doc_id"] for r in record["retrieved"]} == {"oecd-ai-2019"}
    assert "doc_id=oecd-ai-2019" in reply(final) or not record["refused"]


def test_compare_box_puts_the_documents_side_by_side(assistant: Assistant) -> None:
    handlers = ChatHandlers(assistant)
    final = turn(handlers, "How do the CPA module and the UNU-CPR note frame the digital divide?", handlers.new_state(), compare=True)[-1]
    table = reply(final)
    assert table.startswith("*Comparison of 2 documents (asked for)*")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(rows) - {"Document"} == {"Parliamentary module on cross-border AI governance: aims, speakers, context and agenda",
                                        "Building Government AI Capacity: Insights from the City, National and Regional Perspectives"}
    assert any("**[1]**" in row for row in rows.values()) and final[4]["choices"][0][0].startswith("[1] ")


def test_a_briefing_is_grouped_by_document_with_sections(assistant: Assistant) -> None:
    record = assistant.ask("What do these documents say about the digital divide?")
    assert record["plan"]["shape"] == "briefing" and not record["refused"], record["answer"]
    assert len(record["groups"]) >= 2 and len({g["doc_id"] for g in record["groups"]}) == len(record["groups"])
    for group in record["groups"]:
        assert f"**{group['title']}**" in record["answer"] and 1 <= len(group["sentences"]) <= 3
    cited = {c["n"]: c for c in record["citations"]}
    assert all(cited[s["n"]]["doc_id"] == g["doc_id"] and s["section"] == cited[s["n"]]["section"]
               for g in record["groups"] for s in g["sentences"])
    assert record["silent"] == [] or record["answer"].endswith(f"Nothing on this point in: {'; '.join(record['silent'])}.")


def test_which_documents_lists_the_documents_that_raise_the_point(assistant: Assistant) -> None:
    record = assistant.ask("Which documents mention UNESCO?")
    assert record["plan"]["shape"] == "which-documents"
    assert [g["doc_id"] for g in record["groups"]] == ["cpa-module-2026"], record["answer"]  # the only one that does
    assert "UNESCO" in record["answer"] and all(len(g["sentences"]) == 1 for g in record["groups"])


def test_example_questions_show_a_fact_a_briefing_and_a_comparison(assistant: Assistant) -> None:
    shapes = {assistant.ask(question)["plan"]["shape"] for _, question in app.EXAMPLES}
    assert shapes >= {"fact", "briefing", "comparison"}


def test_no_icon_needs_an_emoji_font(assistant: Assistant) -> None:
    """Emoji show as empty boxes where the browser has no emoji font: the page uses words and CSS."""
    emoji = re.compile("[\u2600-\u27bf\U0001f300-\U0001faff]")
    builder = app.IndexBuilder(assistant)  # never started: loading
    handlers = ChatHandlers(assistant, builder)
    shown = [handlers.status_line()]
    builder.error = "no index"
    builder.ready.set()
    shown.append(handlers.status_line())
    shown += [ChatHandlers(assistant).status_line(), json.dumps(build_app(assistant).config, ensure_ascii=False, default=str)]
    assert 'class="status-dot status-loading"' in shown[0] and "status-failed" in shown[1] and "Ready" in shown[2]
    assert not [e for text in shown for e in emoji.findall(text)]


def test_clicked_source_opens_highlighted_passage_with_catalog_entry(assistant: Assistant) -> None:
    handlers = ChatHandlers(assistant)
    state = handlers.new_state()
    final = turn(handlers, "What fines apply to prohibited AI practices under the EU AI Act?", state)[-1]
    label, passage_id = final[4]["choices"][0]
    panel = handlers.open_passage(passage_id, state)
    cited = assistant.passage_context(passage_id)
    assert f"<h3>{html.escape(label)}</h3>" in panel
    assert '<mark class="cited-span">' in panel and "35 000 000" in panel.split('<mark class="cited-span">')[1].split("</mark>")[0]
    assert cited["before"] and cited["after"]  # the passage is shown within its surrounding text
    assert "EUR-Lex reuse with attribution" in panel and "Official Journal of the European Union" in panel


def test_feedback_appends_a_qa_set_line(assistant: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "feedback.jsonl"
    monkeypatch.setattr(assistant.settings.serve, "feedback_path", path)
    handlers = ChatHandlers(assistant)
    state = handlers.new_state()
    turn(handlers, "How much could AI contribute to the global economy by 2030?", state)
    liked = gr.LikeData(None, {"index": 1, "value": "", "liked": True})
    disliked = gr.LikeData(None, {"index": 1, "value": "", "liked": False})
    assert "saved" in handlers.feedback(state, "  exact figure  ", liked)
    assert "saved" in handlers.feedback(state, "", disliked)
    up, down = [json.loads(line) for line in path.read_text().splitlines()]
    assert up["question"] == "How much could AI contribute to the global economy by 2030?" and up["verdict"] == "up"
    assert any("15.7 trillion" in quote for quote in up["evidence"]) and up["comment"] == "exact figure"
    assert up["cited_passages"] and up["answerable"] is True and "feedback" in up["tags"]
    assert down["verdict"] == "down" and down["evidence"] == [] and "15.7" in down["answer_given"]


def test_documents_tab_lists_catalog_with_counts(assistant: Assistant) -> None:
    rows = ChatHandlers(assistant).document_rows()
    assert len(rows) == 6
    eu = next(r for r in rows if r[0].startswith("Regulation (EU) 2024/1689"))
    assert eu[1] == "European Parliament and Council of the European Union" and eu[3] == "regulation"
    assert eu[4] > 100 and eu[5].startswith("20") and "EUR-Lex" in eu[7]


def test_empty_question_is_answered_with_a_message(assistant: Assistant) -> None:
    handlers = ChatHandlers(assistant)
    state = handlers.new_state()
    assert "question is empty" in reply(turn(handlers, "   ", state)[-1]) and state["history"] == []


def test_markup_in_documents_is_shown_as_text(markup_assistant: Assistant) -> None:
    handlers = ChatHandlers(markup_assistant)
    state = handlers.new_state()
    final = turn(handlers, "What did the sandbox briefing note say about evaluation sandboxes?", state)[-1]
    passage_id = next(pid for label, pid in final[4]["choices"] if "Sandbox briefing" in label)
    shown = reply(final) + handlers.open_passage(passage_id, state)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown
    assert "<script" not in shown and "<img" not in shown


def test_index_still_loading_is_said_plainly(assistant: Assistant) -> None:
    builder = app.IndexBuilder(assistant)  # never started: still loading
    handlers = ChatHandlers(assistant, builder)
    assert "still loading" in reply(turn(handlers, "What fines apply?", handlers.new_state())[-1])
    assert "Loading the embedding model" in handlers.status()[0]
    with pytest.raises(gr.Error, match="still loading"):
        handlers.ask("What fines apply?")


def test_a_replica_only_opens_the_shared_index(assistant: Assistant, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With `serve.ingest_on_start` off the app never writes the index: it opens it, or says why not."""
    def no_ingest(*_: Any, **__: Any) -> None:
        raise AssertionError("a replica ingested")

    monkeypatch.setattr(Assistant, "ingest", no_ingest)
    replica = Assistant(assistant.settings.model_copy(update={"serve": ServeSettings(ingest_on_start=False)}))
    replica.embed_model = assistant.embed_model
    builder = app.IndexBuilder(replica)
    builder._work()
    assert builder.error == "" and "Ready" in ChatHandlers(replica, builder).status_line()
    assert not replica.ask("What fines apply to prohibited AI practices under the EU AI Act?")["refused"]

    empty = Assistant(app.Settings(corpus_dir=assistant.settings.corpus_dir, index_dir=tmp_path / "none",
                                   serve={"ingest_on_start": False}))
    builder = app.IndexBuilder(empty)
    builder._work()
    assert "No index" in builder.error and "python -m assistant ingest" in builder.error


def test_building_the_page_loads_no_model(tmp_path: Path) -> None:
    fresh = Assistant(app.Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index"))
    build_app(fresh, app.IndexBuilder(fresh))
    assert "embed_model" not in vars(fresh) and "llm" not in vars(fresh)


@pytest.mark.parametrize(
    ("argv", "environment"),
    [(["--host", "0.0.0.0"], {}), (["--share"], {}), (["--host", "0.0.0.0"], {"ASSISTANT_SERVE__USERS": "broken-entry"})],
)
def test_exposed_server_needs_sign_in(argv: list[str], environment: dict[str, str],
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert app.main(argv) == 2
    message = capsys.readouterr().err
    assert "ASSISTANT_SERVE__USERS" in message or "name:password" in message


def test_source_view_reads_passages_by_id_from_the_index_only(assistant: Assistant) -> None:
    handlers = ChatHandlers(assistant)
    for request in ("../../../../etc/passwd", "/etc/hostname", str(Path(__file__).resolve())):
        panel = handlers.open_passage(request, handlers.new_state())
        assert "no longer in the index" in panel and "root:" not in panel and "import" not in panel
