"""How answers, comparisons and passages look in the chat: Markdown and HTML built from records.

Pure functions of the `ask --json` record (no Gradio here), so they are tested directly. Every
piece of document or user text passes through `html.escape` before it reaches the page: a
document that contains `<script>` or `<img onerror=…>` shows those characters and runs nothing.

    >>> answer_view({"answer": "Fines apply [1]. <b>x</b> [unsupported].", "refused": False,
    ...              "notices": [], "unsupported": [], "citations": []})
    'Fines apply **[1]**. &lt;b&gt;x&lt;/b&gt; ⚠️ *unsupported*.'
"""

from __future__ import annotations

import html
import re
from typing import Any

from assistant.verification import UNSUPPORTED_MARK

_MARKER = re.compile(r"\[(\d+)\]")
_PREVIEW_CHARS = 240


def _text(value: object) -> str:
    return html.escape(str(value or ""))


def _markers(escaped: str) -> str:
    """Citation markers in bold and unsupported sentences flagged, in already-escaped text."""
    flagged = escaped.replace(html.escape(UNSUPPORTED_MARK), "⚠️ *unsupported*")
    return _MARKER.sub(r"**[\1]**", flagged)


def citation_label(citation: dict[str, Any]) -> str:
    """'[n] Title — section, page p': the line a staff member clicks to open the passage."""
    page = f", page {citation['page']}" if citation.get("page") else ""
    return f"[{citation['n']}] {citation['title']} — {citation['section'] or 'opening'}{page}"


SHAPE_LINES = {
    "briefing": "Briefing across {n} of {m} documents",
    "which-documents": "{n} of {m} documents raise the point",
    "comparison": "Comparison of {m} documents",
}


def plan_line(record: dict[str, Any]) -> str:
    """One line saying what shape the answer took, e.g. "Briefing across 4 of 6 documents".

    >>> plan_line({"plan": {"shape": "briefing", "reason": "asks what the documents say"}, "groups": [{}, {}], "silent": ["x"]})
    '*Briefing across 2 of 3 documents (asks what the documents say)*'
    >>> plan_line({"plan": {"shape": "fact", "reason": "asks for one point"}})
    '*Fact (asks for one point)*'
    """
    plan = record.get("plan") or {}
    shape = plan.get("shape", "fact")
    spoke = len(record.get("groups") or [])
    line = SHAPE_LINES.get(shape, shape.capitalize()).format(n=spoke, m=spoke + len(record.get("silent") or []))
    return f"*{line} ({_text(plan.get('reason', ''))})*" if plan.get("reason") else f"*{line}*"


def answer_view(record: dict[str, Any]) -> str:
    """The answer as chat Markdown: the plan's line, the text with markers (a table for a comparison),
    notices, unsupported sentences, sources."""
    lines = [plan_line(record), ""] if record.get("plan") else []
    if record.get("plan", {}).get("shape") == "comparison" and record.get("groups"):
        lines.append(comparison_table(record))
    else:
        lines.append(_markers(_text(record["answer"])))
    lines += [f"\n> **Note:** {_text(n)}" for n in record["notices"]]
    if record["unsupported"]:
        lines.append("\n**Not supported by the cited passages:** " + " ".join(f"“{_text(s)}”" for s in record["unsupported"]))
    if record["refused"]:
        nearest = record.get("retrieved", [])[:3]
        if nearest:
            lines.append("\n**Nearest passages** (open them under *Sources*):")
            lines += [f"- *{_text(r.get('title', r['doc_id']))}*, {_text(r['section'] or 'opening')}: "
                      f"{_text(_preview(r['text']))}" for r in nearest]
    elif record["citations"]:
        lines.append("\n**Sources**")
        lines += [f"{c['n']}. *{_text(c['title'])}*, {_issued(c)}; {_text(c['section'] or 'opening')}{_page(c)}"
                  for c in record["citations"]]
    return "\n".join(lines)


def comparison_table(record: dict[str, Any]) -> str:
    """A comparison as a table: one row per document, its cited statements with their sections, silent ones said so."""
    lines = ["| Document | Issuer, date | What it says |", "| --- | --- | --- |"]
    for group in record["groups"]:
        says = " ".join(_markers(_text(s["text"])) + (f" *({_text(s['section'])})*" if s["section"] else "")
                        for s in group["sentences"])
        lines.append(f"| {_cell(_text(group['title']))} | {_cell(_issued(group))} | {_cell(says)} |")
    lines += [f"| {_cell(_text(title))} |  | *Says nothing on this point.* |" for title in record.get("silent", [])]
    return "\n".join(lines)


def passage_view(citation: dict[str, Any], before: str, after: str, entry: dict[str, Any]) -> str:
    """The side panel: the passage highlighted within its surrounding text, and its catalog entry."""
    facts = [("Issued by", entry.get("issuer")), ("Date", entry.get("date")), ("Kind", entry.get("kind")),
             ("Section", citation.get("section") or "opening"), ("Page", citation.get("page")),
             ("Source", entry.get("source")), ("Reuse", entry.get("reuse")), ("Passage id", citation.get("id"))]
    rows = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in facts if v)
    return (
        f'<div class="passage-view"><h3>{_text(citation.get("label") or citation.get("title"))}</h3>'
        f'<div class="passage-context">{_text(_trim_start(before))}'
        f'<mark class="cited-span">{_text(citation["text"])}</mark>{_text(_trim_end(after))}</div>'
        f'<h4>{_text(entry.get("title") or citation.get("title"))}</h4>'
        f'<table class="catalog-entry">{rows}</table></div>'
    )


def _issued(item: dict[str, Any]) -> str:
    """'issuer, date', leaving out what the catalog does not give."""
    return _text(", ".join(str(item[k]) for k in ("issuer", "date") if item.get(k) and item[k] != "unknown") or "issuer unknown")


def _cell(markdown: str) -> str:
    return markdown.replace("|", "\\|").replace("\n", " ")


def _page(citation: dict[str, Any]) -> str:
    return f", page {citation['page']}" if citation.get("page") else ""


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[:_PREVIEW_CHARS].rsplit(" ", 1)[0] + " …"


def _trim_start(text: str) -> str:
    """Surrounding text before a passage, from a word boundary, marked as cut."""
    return text if not text or text[0].isupper() else "… " + text.split(" ", 1)[-1]


def _trim_end(text: str) -> str:
    return text if not text or text.rstrip()[-1:] in ".;:!?" else text.rsplit(" ", 1)[0] + " …"
