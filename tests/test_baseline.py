"""The naive baseline: LlamaIndex defaults over the same corpus, recorded as `ask --json` records."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.baseline import NaiveBaseline
from assistant.store import IndexUnavailable
from tests.conftest import make_settings

QUESTION = "How much could AI contribute to the global economy by 2030?"


def test_baseline_answers_with_top_passage_in_the_ask_record_shape(
    assistant: Assistant, small_corpus: Path, tmp_path: Path
) -> None:
    baseline = NaiveBaseline(make_settings(tmp_path, small_corpus), assistant.embed_model, top_k=5)
    record = baseline.ask(QUESTION)
    ours = assistant.ask(QUESTION)

    assert record.keys() == ours.keys()
    assert [r.keys() for r in record["retrieved"]] == [ours["retrieved"][0].keys()] * len(record["retrieved"])
    assert record["citations"][0].keys() == ours["citations"][0].keys()
    assert [r["rank"] for r in record["retrieved"]] == [1, 2, 3, 4, 5]
    assert any("15.7 trillion" in r["text"] for r in record["retrieved"])

    top = record["citations"][0]
    assert record["answer"] == top["text"] + " [1]"
    assert (top["n"], top["id"], top["section"], top["page"]) == (1, record["retrieved"][0]["id"], "", None)
    assert not record["refused"] and record["models"]["llm"] == "none"
    assert re.fullmatch(r"naive-[0-9a-f]{12}", record["index_hash"])
    assert "baseline" in record["notices"][0].lower()

    # 1,024-token chunks: far fewer than our structure-aware chunks of the same five documents.
    ours_chunks = sum(d["chunks"] for d in assistant.documents() if not d["file"].startswith("eu-ai-act"))
    assert len(baseline.index.docstore.docs) * 3 < ours_chunks


def test_uncatalogued_files_are_named_by_stem_and_unreadable_ones_skipped(assistant: Assistant, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "sandbox-note.txt").write_text("Evaluation sandboxes let regulators test AI models.", encoding="utf-8")
    (corpus / "empty.txt").write_text("   ", encoding="utf-8")
    (corpus / "scan.png").write_bytes(b"\x89PNG\r\n")

    baseline = NaiveBaseline(make_settings(tmp_path, corpus), assistant.embed_model, top_k=3)
    record = baseline.ask("What do evaluation sandboxes let regulators do?")

    assert [(r["rank"], r["doc_id"], r["title"]) for r in record["retrieved"]] == [(1, "sandbox-note", "sandbox-note")]
    assert (record["citations"][0]["issuer"], record["citations"][0]["date"]) == ("", "")

    (corpus / "sandbox-note.txt").unlink()
    with pytest.raises(IndexUnavailable, match="no readable documents"):
        NaiveBaseline(make_settings(tmp_path, corpus), assistant.embed_model).ask("Anything?")
