"""The eval report writer, on a tiny hand-made run: real files, real PNGs, real escaping."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from assistant.reports import write_reports

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHARTS = ("hit_at_k.png", "latency.png", "accuracy_by_document.png")
METRICS = {"hit@1": 0.5, "hit@3": 0.75, "hit@5": 1.0, "hit@10": 1.0, "mrr": 0.7, "answer_accuracy": 0.5,
           "refusal_recall": None}
LATENCY = {"retrieve": {"p50": 80.0, "p95": 150.0}, "total": {"p50": 200.0, "p95": 420.0}}


def make_summary(**extra: Any) -> dict[str, Any]:
    return {
        "qa_set": "evals/tiny.jsonl", "questions": 4, "answerable": 3, "unanswerable": 1,
        "index_hash": "28e99b189071", "engine_hash": "a1b2c3d4e5f6", "started": "2026-11-23T23:00:00+00:00",
        "seconds": 55.2, "metrics": METRICS, "latency_ms": LATENCY,
        "by_tag": {"date": {"questions": 2, "hit@5": 0.5, "refusal_recall": None}},
        "by_document": {"eu-ai-act-2024": {"questions": 3, "answer_accuracy": 0.25}, "(none)": {"questions": 1}},
        **extra,
    }


RECORDS = [{"id": f"q{i}", "timings_ms": {"retrieve": 10.0 * i, "answer": 5.0, "total": 10.0 * i + 5}} for i in range(4)]
FAILURES = [
    {
        "id": "q1", "question": "What | does Article 5 forbid?", "kind": "missed evidence",
        "expected": ["Prohibited AI practices"],
        "retrieved": [{"rank": 1, "doc_id": "evil-doc", "section": "Annex III", "text": "<script>alert(1)</script>"},
                      {"rank": 2, "doc_id": "eu-ai-act-2024", "section": None, "text": "word " * 200}],
        "answer": "It does not say.\nSecond line.",
    }
]


def write(tmp_path: Path, **extra: Any) -> tuple[str, str]:
    md_path, html_path = write_reports(tmp_path, make_summary(**extra), RECORDS, FAILURES)
    assert (md_path, html_path) == (tmp_path / "report.md", tmp_path / "report.html")
    return md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")


def test_html_is_self_contained_and_escapes_document_text(tmp_path: Path) -> None:
    _, page = write(tmp_path)
    assert page.count('src="data:image/png;base64,') == 3
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"(?!data:)", page), "no external resources"
    assert "evals/tiny.jsonl" in page and "28e99b189071" in page and "a1b2c3d4e5f6" in page and "55.2 s" in page


def test_markdown_links_its_charts_and_escapes_cells(tmp_path: Path) -> None:
    md, _ = write(tmp_path)
    for name in CHARTS:
        assert f"]({name})" in md
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
    assert "What \\| does Article 5 forbid?" in md
    assert "It does not say. Second line." in md
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "eu-ai-act-2024 § opening: word" in md and "word …" in md, "long passages are clipped"
    assert all(line.startswith("|") for line in md.splitlines() if "missed evidence" in line)


def test_missing_figures_render_as_a_dash(tmp_path: Path) -> None:
    md, page = write(tmp_path)
    assert "| refusal_recall | – |" in md
    assert "<td>refusal_recall</td><td>–</td>" in page
    assert "| date | 2 | 0.500 | – |" in md
    assert "| (none) | 1 | – |" in md


def test_baseline_column_only_with_a_baseline(tmp_path: Path) -> None:
    md, page = write(tmp_path / "plain")
    assert "Baseline" not in md and "Baseline" not in page and "Difference" not in md

    naive = {"name": "naive", "metrics": {**METRICS, "hit@1": 0.25}, "latency_ms": {"total": {"p50": 150.0}}}
    md, page = write(tmp_path / "compared", baseline=naive)
    assert "| Measure | This run | Baseline: naive | Difference |" in md
    assert "| hit@1 | 0.500 | 0.250 | +0.250 |" in md
    assert "| total p50 | 200.0 | 150.0 | +50.0 |" in md
    assert "| total p95 | 420.0 | – | – |" in md
    assert "<th>Baseline: naive</th>" in page


def test_llm_judged_section_only_when_judged(tmp_path: Path) -> None:
    md, page = write(tmp_path / "plain")
    assert "LLM-judged" not in md and "LLM-judged" not in page

    judged = {"model": "openai:llama3.1", "faithfulness": 0.8, "correctness": 0.7}
    md, page = write(tmp_path / "judged", judged=judged)
    assert "## LLM-judged scores (not deterministic)" in md
    assert "LLM-judged by openai:llama3.1" in md and "not deterministic" in md
    assert "| faithfulness | 0.800 |" in md
    assert "<h2>LLM-judged scores (not deterministic)</h2>" in page


def test_same_input_gives_same_bytes(tmp_path: Path) -> None:
    first = write(tmp_path / "a", baseline={"name": "naive", "metrics": METRICS})
    second = write(tmp_path / "b", baseline={"name": "naive", "metrics": METRICS})
    assert first == second
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in CHARTS)
