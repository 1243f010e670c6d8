"""The evaluator's workbench report: one eval run as `report.md` and a self-contained `report.html`.

The runner hands over plain data (the summary, the per-question records, the failures); this module
only lays it out. Both files are rendered from one list of sections, so the Markdown and the HTML
never disagree, and each renderer escapes for its own format: questions, answers and passages come
from documents that may hold `<script>`, and they must show as text. Output depends only on the
input, so two reports of the same run can be diffed.

    >>> _fmt(0.5), _fmt(None), _fmt(40), _diff(0.75, 0.5, 3)
    ('0.500', '–', '40', '+0.250')
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_KS = (1, 3, 5, 10)
_EXCERPT_CHARS = 300
_DASH = "–"
_CHART_TITLES = {
    "hit_at_k": "Hit@k",
    "latency": "Total latency per question",
    "accuracy_by_document": "Answer accuracy by document",
}
_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}td{max-width:420px}img{max-width:100%}"
)

Cell = str | list[str]
"""A table cell: one line of plain text, or several shown one under another."""


@dataclass(frozen=True)
class _Section:
    """One heading's worth of report: notes, an optional table and an optional chart (by file stem)."""

    title: str
    notes: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    chart: str | None = None


def write_reports(
    out_dir: Path, summary: dict[str, Any], records: list[dict[str, Any]], failures: list[dict[str, Any]]
) -> tuple[Path, Path]:
    """Write out_dir/report.md (with its charts as PNG files beside it) and out_dir/report.html; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = {
        "hit_at_k": _hit_chart(summary),
        "latency": _latency_chart(records),
        "accuracy_by_document": _accuracy_chart(summary.get("by_document") or {}),
    }
    for stem, png in charts.items():
        (out_dir / f"{stem}.png").write_bytes(png)
    sections = _sections(summary, failures)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(_markdown(sections), encoding="utf-8")
    html_path.write_text(_html(sections, charts), encoding="utf-8")
    return md_path, html_path


def _fmt(value: Any, digits: int = 3) -> str:
    """A figure as shown: counts as integers, rates to `digits` places, a missing value as a dash."""
    if value is None:
        return _DASH
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _diff(ours: Any, theirs: Any, digits: int) -> str:
    return _DASH if ours is None or theirs is None else f"{ours - theirs:+.{digits}f}"


def _clip(text: str | None) -> str:
    """Whitespace collapsed and cut at a word near _EXCERPT_CHARS, so one passage cannot swamp a table."""
    flat = " ".join((text or "").split())
    if len(flat) <= _EXCERPT_CHARS:
        return flat or _DASH
    return flat[:_EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"


def _sections(summary: dict[str, Any], failures: list[dict[str, Any]]) -> list[_Section]:
    sections = [
        _Section("Run", headers=["Field", "Value"], rows=_run_rows(summary)),
        _comparison("Metrics", summary, lambda run: run.get("metrics") or {}, 3, "hit_at_k"),
        _comparison("Latency (ms)", summary, lambda run: _flat_latency(run.get("latency_ms")), 1, "latency"),
    ]
    if summary.get("judged"):
        sections.append(_judged(summary["judged"]))
    return sections + [
        _breakdown("By tag", "Tag", summary.get("by_tag") or {}, None),
        _breakdown("By document", "Document", summary.get("by_document") or {}, "accuracy_by_document"),
        _failures(failures),
    ]


def _run_rows(summary: dict[str, Any]) -> list[list[Cell]]:
    def text(key: str) -> str:
        return _DASH if summary.get(key) is None else str(summary[key])

    seconds = summary.get("seconds")
    return [
        ["QA set", text("qa_set")],
        ["Questions", f"{text('questions')} ({text('answerable')} answerable, {text('unanswerable')} unanswerable)"],
        ["Index hash", text("index_hash")],
        ["Corpus hash", text("corpus_hash")],
        ["Engine hash", text("engine_hash")],
        ["Started", text("started")],
        ["Duration", _DASH if seconds is None else f"{seconds:.1f} s"],
    ]


def _flat_latency(latency: dict[str, dict[str, float]] | None) -> dict[str, float | None]:
    """{"retrieve": {"p50": 80}} -> {"retrieve p50": 80}: one row per stage and percentile."""
    return {f"{stage} {p}": value for stage, marks in (latency or {}).items() for p, value in marks.items()}


def _comparison(
    title: str, summary: dict[str, Any], figures: Callable[[dict[str, Any]], dict[str, Any]], digits: int, chart: str
) -> _Section:
    """This run's figures, with the baseline's and the difference beside them when there is a baseline.

    `figures` picks the same figures out of the summary and out of its baseline, which share a shape.
    """
    ours = figures(summary)
    headers = ["Measure", "This run"]
    rows: list[list[Cell]] = [[name, _fmt(value, digits)] for name, value in ours.items()]
    notes = []
    if baseline := summary.get("baseline"):
        theirs = figures(baseline)
        headers += [f"Baseline: {baseline.get('name', 'baseline')}", "Difference"]
        rows = [row + [_fmt(theirs.get(name), digits), _diff(ours[name], theirs.get(name), digits)]
                for row, name in zip(rows, ours)]
        notes.append("Difference is this run minus the baseline.")
    return _Section(title, notes, headers, rows, chart)


def _judged(judged: dict[str, Any]) -> _Section:
    note = (
        f"LLM-judged by {judged.get('model', 'an unnamed model')}. Unlike every other figure in this report, "
        "these scores are not deterministic: they come from a language model and may change between runs and judges."
    )
    rows: list[list[Cell]] = [[name, _fmt(value)] for name, value in judged.items() if name != "model"]
    return _Section("LLM-judged scores (not deterministic)", [note], ["Score", "Value"], rows)


def _breakdown(title: str, label: str, groups: dict[str, dict[str, Any]], chart: str | None) -> _Section:
    columns = list(dict.fromkeys(column for row in groups.values() for column in row))
    rows: list[list[Cell]] = [[name, *(_fmt(row.get(c)) for c in columns)] for name, row in groups.items()]
    return _Section(title, headers=[label, *columns], rows=rows, chart=chart)


def _failures(failures: list[dict[str, Any]]) -> _Section:
    if not failures:
        return _Section("Failures", notes=["No failures."])
    headers = ["ID", "Question", "Kind", "Expected evidence", "Top retrieved passages", "Answer"]
    rows: list[list[Cell]] = [
        [
            str(failure.get("id", _DASH)),
            _clip(failure.get("question")),
            failure.get("kind") or _DASH,
            [_clip(quote) for quote in failure.get("expected") or []] or _DASH,
            [_passage(p) for p in failure.get("retrieved") or []] or _DASH,
            _clip(failure.get("answer")),
        ]
        for failure in failures
    ]
    return _Section("Failures", [f"Failed questions: {len(failures)}."], headers, rows)


def _passage(passage: dict[str, Any]) -> str:
    where = f"{passage.get('doc_id', _DASH)} § {passage.get('section') or 'opening'}"
    return f"{passage.get('rank', _DASH)}. {where}: {_clip(passage.get('text'))}"


def _markdown(sections: list[_Section]) -> str:
    lines = ["# Evaluation report", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += [line for note in section.notes for line in (html.escape(note, quote=False), "")]
        if section.headers:
            lines.append("| " + " | ".join(_md_cell(h) for h in section.headers) + " |")
            lines.append("|" + " --- |" * len(section.headers))
            lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in section.rows]
            lines.append("")
        if section.chart:
            lines += [f"![{_CHART_TITLES[section.chart]}]({section.chart}.png)", ""]
    return "\n".join(lines)


def _md_cell(cell: Cell) -> str:
    """One table cell: HTML escaped too, since Markdown viewers pass raw tags such as `<script>` through."""
    lines = [cell] if isinstance(cell, str) else cell
    return "<br>".join(html.escape(" ".join(line.split()), quote=False).replace("|", "\\|") for line in lines)


def _html(sections: list[_Section], charts: dict[str, bytes]) -> str:
    parts = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Evaluation report</title>',
             f"<style>{_CSS}</style></head><body>", "<h1>Evaluation report</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(note)}</p>" for note in section.notes]
        if section.headers:
            parts.append("<table><tr>" + "".join(f"<th>{_html_cell(h)}</th>" for h in section.headers) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in section.rows]
            parts.append("</table>")
        if section.chart:
            data = base64.b64encode(charts[section.chart]).decode("ascii")
            parts.append(f'<img alt="{html.escape(_CHART_TITLES[section.chart])}" src="data:image/png;base64,{data}">')
    return "\n".join([*parts, "</body></html>", ""])


def _html_cell(cell: Cell) -> str:
    return "<br>".join(html.escape(line) for line in ([cell] if isinstance(cell, str) else cell))


def _number(value: Any) -> float:
    """A figure for plotting: a missing value becomes NaN, which matplotlib leaves out."""
    return math.nan if value is None else float(value)


def _png(figure: Figure) -> bytes:
    """The figure as PNG bytes, without matplotlib's version stamp so the bytes depend only on the data."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _hit_chart(summary: dict[str, Any]) -> bytes:
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.add_subplot()
    curves = [("this run", summary.get("metrics") or {})]
    if baseline := summary.get("baseline"):
        curves.append((f"baseline: {baseline.get('name', 'baseline')}", baseline.get("metrics") or {}))
    for label, metrics in curves:
        axes.plot(_KS, [_number(metrics.get(f"hit@{k}")) for k in _KS], marker="o", label=label)
    axes.set(xlabel="k", ylabel="hit@k", ylim=(0, 1.05), xticks=_KS, title=_CHART_TITLES["hit_at_k"])
    axes.legend()
    return _png(figure)


def _latency_chart(records: list[dict[str, Any]]) -> bytes:
    totals = [t for r in records if (t := (r.get("timings_ms") or {}).get("total")) is not None]
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.add_subplot()
    axes.hist(totals, bins=20)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel="total latency (ms)", ylabel="questions", title=_CHART_TITLES["latency"])
    return _png(figure)


def _accuracy_chart(by_document: dict[str, dict[str, Any]]) -> bytes:
    names = list(by_document)
    figure = Figure(figsize=(6, max(2.5, 1 + 0.3 * len(names))), layout="constrained")
    axes = figure.add_subplot()
    axes.barh(range(len(names)), [_number(row.get("answer_accuracy")) for row in by_document.values()])
    # Document ids are data, not markup: a `$` in one must not switch matplotlib into mathtext.
    axes.set_yticks(range(len(names)), names, parse_math=False)
    axes.invert_yaxis()
    axes.set(xlim=(0, 1), xlabel="answer accuracy", title=_CHART_TITLES["accuracy_by_document"])
    return _png(figure)
