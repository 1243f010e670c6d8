"""Evaluate: run a QA set through the same engine as the chat and write what an evaluator needs.

`python -m assistant eval SET --out DIR` writes, in DIR:
    qa_set.jsonl      the validated questions (so a run folder is self-contained)
    results.jsonl     per question, `id` plus exactly the `ask --json` record
    summary.json      the metrics (see `metrics`), latency, breakdowns, settings hashes
    ragas.jsonl       the run as a RAGAS EvaluationDataset, for RAGAS, DeepEval or TruLens
    failures.jsonl    the questions it got wrong, with what was expected, retrieved and answered
    report.md/.html   figures, charts and failures (see `reports`)
    baseline/         with `--baseline naive`: the naive pipeline's results on the same set
`python -m assistant eval-compare DIR_A DIR_B` puts two runs side by side, per metric and per
question (fixed, broken), so a change is judged on evidence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.engine import QuestionError
from assistant.metrics import breakdown, contains_evidence, failure_kind, failures, latency, summarise
from assistant.qa_sets import ragas_rows, read_qa_set
from assistant.reports import write_reports

Progress = Callable[[int, int], None]
NO_DOCUMENT = "(none)"


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ask_all(ask: Callable[[str], dict[str, Any]], items: Sequence[dict[str, Any]],
            standalone: Callable[[str, list[str]], str] | None = None, on_progress: Progress | None = None,
            show_progress: bool = False) -> list[dict[str, Any]]:
    """Every question through `ask`, in order; a question the engine rejects is recorded as refused.

    A follow-up (an item with `history`) is first rewritten by `standalone`, as the chat rewrites it.
    """
    from tqdm import tqdm

    records = []
    for done, item in enumerate(tqdm(items, desc="questions", unit="q", disable=not show_progress), start=1):
        try:
            question = standalone(item["question"], item["history"]) if standalone and item.get("history") else item["question"]
            records.append(ask(question))
        except QuestionError as exc:
            records.append({"question": item["question"], "answer": str(exc), "refused": True, "citations": [],
                            "retrieved": [], "unsupported": [], "notices": [str(exc)],
                            "timings_ms": {"retrieve": 0.0, "answer": 0.0, "total": 0.0}})
        if on_progress:
            on_progress(done, len(items))
    return records


def select_items(items: Sequence[dict[str, Any]], split: str | None = None,
                 documents: Collection[str] | None = None, exclude: Collection[str] = ()) -> list[dict[str, Any]]:
    """The items of one split (`dev`, `test`; None: all) about the given documents (None: any), less `exclude`.

    A question is about the document its first tag names (the sets tag every question so).

    >>> items = [{"id": "a", "split": "dev", "tags": ["eu"]}, {"id": "b", "split": "test", "tags": ["oecd"]}]
    >>> [i["id"] for i in select_items(items, "dev")], [i["id"] for i in select_items(items, exclude=["eu"])]
    (['a'], ['b'])
    """
    def document(item: dict[str, Any]) -> str:
        return (item.get("tags") or [NO_DOCUMENT])[0]

    return [item for item in items
            if (split is None or item.get("split") == split)
            and (documents is None or document(item) in documents) and document(item) not in exclude]


def evidence_documents(passages: Sequence[tuple[str, str]], items: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """The documents holding each question's evidence, from (doc_id, text) pairs; `(none)` if none.

    >>> evidence_documents([("eu", "Fines apply."), ("oecd", "Be fair.")], [{"id": "q", "evidence": ["fines"]}])
    {'q': ['eu']}
    """
    found = {}
    for item in items:
        docs = sorted({doc for doc, text in passages if item["evidence"] and contains_evidence(text, item["evidence"])})
        found[item["id"]] = docs or [NO_DOCUMENT]
    return found


def run_eval(assistant: Any, qa_path: Path, out_dir: Path, baseline: str | None = None, judge: bool = False,
             split: str | None = None, document: str | None = None, holdout: bool = False,
             on_progress: Progress | None = None, show_progress: bool = False) -> dict[str, Any]:
    """Run the set (or one of its splits, or its questions about one `document`); write the run folder;
    return the summary (also in summary.json).

    With `holdout`, the refusal model is first fitted anew on the dev questions of the other
    documents (see `calibration.calibrate`) and `document`'s questions are asked with it: the
    closest thing to a document nobody has seen yet.
    """
    items = select_items(read_qa_set(qa_path), split, documents=[document] if document else None)
    if not items:
        raise ValueError(f"{qa_path} has no questions in the {split or 'whole'} set"
                         + (f" about {document!r}" if document else "")
                         + "; `python -m assistant split` assigns splits, and a question's first tag names its document")
    held_out: dict[str, Any] = {}
    if holdout and document:
        from dataclasses import asdict

        from assistant.calibration import calibrate

        assistant.refusal_model = calibrate(assistant, [qa_path], "dev", leave_out=[document])
        held_out = {"document": document, "refusal_model": asdict(assistant.refusal_model)}
    started = datetime.now(UTC)
    began = time.perf_counter()
    records = ask_all(assistant.ask, items, assistant.standalone, on_progress, show_progress)
    seconds = time.perf_counter() - began
    rows = [{"id": item["id"], **record} for item, record in zip(items, records)]
    documents = evidence_documents([(c.metadata["doc_id"], c.text) for c in assistant.store.chunks()], items)
    summary: dict[str, Any] = {
        "qa_set": str(qa_path),
        "split": split or "all",
        "questions": len(items),
        "answerable": sum(1 for item in items if item.get("answerable", True)),
        "unanswerable": sum(1 for item in items if not item.get("answerable", True)),
        "index_hash": assistant.settings.index_hash(),
        "corpus_hash": assistant.store.check_ready().corpus_hash(),
        "engine_hash": assistant.settings.engine_hash(),
        "models": assistant.model_names(),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "metrics": summarise(items, records),
        "latency_ms": latency(records),
        "by_tag": breakdown(items, records, {item["id"]: item["tags"] or ["(untagged)"] for item in items}),
        "by_document": breakdown(items, records, documents),
    }
    if held_out:
        summary["holdout"] = held_out
    if baseline == "naive":
        from assistant.baseline import NaiveBaseline

        naive = NaiveBaseline(assistant.settings, assistant.embed_model)
        naive_records = ask_all(naive.ask, items, assistant.standalone, show_progress=show_progress)
        _write_jsonl(out_dir / "baseline" / "results.jsonl",
                     [{"id": item["id"], **record} for item, record in zip(items, naive_records)])
        summary["baseline"] = {"name": "naive", "metrics": summarise(items, naive_records), "latency_ms": latency(naive_records)}
    if judge:
        summary["judged"] = judge_run(assistant, items, records)
    _write_jsonl(out_dir / "qa_set.jsonl", items)
    _write_jsonl(out_dir / "results.jsonl", rows)
    _write_jsonl(out_dir / "ragas.jsonl", ragas_rows(items, records))
    failed = failures(items, records)
    _write_jsonl(out_dir / "failures.jsonl", failed)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    write_reports(out_dir, summary, rows, failed)
    return summary


def failures_of(run_dir: Path) -> list[dict[str, Any]]:
    """The failures a run folder recorded (see `metrics.failures`)."""
    return _read_jsonl(run_dir / "failures.jsonl")


def run_markdown(summary: dict[str, Any]) -> str:
    """A run's headline figures as Markdown: what the Evaluate tab shows above the charts."""
    def show(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    baseline = summary.get("baseline", {}).get("metrics", {})
    header = "| metric | this run |" + (" naive baseline |" if baseline else "")
    opening = (f"**{summary['questions']} questions** ({summary['unanswerable']} unanswerable) from `{summary['qa_set']}`, "
               f"index `{summary['index_hash']}`, corpus `{summary.get('corpus_hash', '?')}`, engine `{summary['engine_hash']}`, "
               f"{summary['seconds']} s.")
    lines = [opening, "", header, "| --- | --- |" + (" --- |" if baseline else "")]
    for name, value in summary["metrics"].items():
        lines.append(f"| {name} | {show(value)} |" + (f" {show(baseline.get(name))} |" if baseline else ""))
    total = summary["latency_ms"]["total"]
    lines.append(f"\nLatency per question: p50 {total['p50']} ms, p95 {total['p95']} ms.")
    return "\n".join(lines)


def judge_run(assistant: Any, items: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """LLM-judged faithfulness and correctness (LlamaIndex evaluators), for answers given.

    Marked as LLM-judged in every report: such judges vary between identical runs, unlike the
    deterministic metrics. Needs an LLM configured (`ASSISTANT_LLM__BACKEND`).
    """
    from llama_index.core.evaluation import CorrectnessEvaluator, FaithfulnessEvaluator

    llm = assistant.llm
    if llm is None:
        raise ValueError("LLM-judged metrics need an LLM: set ASSISTANT_LLM__BACKEND (see the README).")
    faithful, correct = FaithfulnessEvaluator(llm=llm), CorrectnessEvaluator(llm=llm)
    faith_scores: list[float] = []
    correct_scores: list[float] = []
    for item, record in zip(items, records):
        if record["refused"]:
            continue
        contexts = [c["text"] for c in record["citations"]]
        try:
            faith_scores.append(float(faithful.evaluate(query=item["question"], response=record["answer"], contexts=contexts).score or 0.0))
            if item.get("reference_answer"):
                result = correct.evaluate(query=item["question"], response=record["answer"], reference=item["reference_answer"])
                correct_scores.append(float(result.score or 0.0) / 5.0)
        except Exception:  # noqa: BLE001, S112 -- an unparseable judgement is left out, not guessed
            continue
    return {
        "model": assistant.model_names()["llm"],
        "faithfulness": round(sum(faith_scores) / len(faith_scores), 4) if faith_scores else None,
        "correctness": round(sum(correct_scores) / len(correct_scores), 4) if correct_scores else None,
        "judged_answers": len(faith_scores),
    }


def compare_runs(dir_a: Path, dir_b: Path) -> dict[str, Any]:
    """Two run folders side by side: every metric with its change, and the questions fixed or broken."""
    runs = []
    for folder in (dir_a, dir_b):
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            items = {item["id"]: item for item in _read_jsonl(folder / "qa_set.jsonl")}
            results = {row["id"]: row for row in _read_jsonl(folder / "results.jsonl")}
        except (OSError, ValueError, KeyError) as exc:
            raise FileNotFoundError(f"{folder} is not a complete eval run folder ({exc}); run `python -m assistant eval` into it") from exc
        runs.append((summary, items, results))
    (sum_a, items_a, res_a), (sum_b, items_b, res_b) = runs
    metrics = {name: {"a": sum_a["metrics"].get(name), "b": value,
                      "change": round(value - sum_a["metrics"][name], 4) if value is not None and sum_a["metrics"].get(name) is not None else None}
               for name, value in sum_b["metrics"].items()}
    shared = [qid for qid in items_a if qid in items_b]
    verdicts = {qid: (failure_kind(items_a[qid], res_a[qid]), failure_kind(items_b[qid], res_b[qid])) for qid in shared}
    return {
        "a": {"dir": str(dir_a), "index_hash": sum_a["index_hash"], "corpus_hash": sum_a.get("corpus_hash"), "engine_hash": sum_a.get("engine_hash")},
        "b": {"dir": str(dir_b), "index_hash": sum_b["index_hash"], "corpus_hash": sum_b.get("corpus_hash"), "engine_hash": sum_b.get("engine_hash")},
        "metrics": metrics,
        "fixed": [{"id": qid, "was": a} for qid, (a, b) in verdicts.items() if a and not b],
        "broken": [{"id": qid, "now": b} for qid, (a, b) in verdicts.items() if b and not a],
        "only_in_a": sorted(set(items_a) - set(items_b)),
        "only_in_b": sorted(set(items_b) - set(items_a)),
    }


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """`eval-compare` as Markdown: the metric table, then the fixed and broken questions."""
    def show(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    a, b = comparison["a"], comparison["b"]
    lines = [f"A: {a['dir']} (index {a['index_hash']}, corpus {a['corpus_hash']}, engine {a['engine_hash']})",
             f"B: {b['dir']} (index {b['index_hash']}, corpus {b['corpus_hash']}, engine {b['engine_hash']})", ""]
    if a["corpus_hash"] != b["corpus_hash"]:
        lines += ["The two runs were not on the same documents (their corpus hashes differ).", ""]
    lines += ["| metric | A | B | change |", "| --- | --- | --- | --- |"]
    for name, row in comparison["metrics"].items():
        change = "–" if row["change"] is None else f"{row['change']:+.4f}"
        lines.append(f"| {name} | {show(row['a'])} | {show(row['b'])} | {change} |")
    lines += ["", f"Fixed in B ({len(comparison['fixed'])}): " + (", ".join(f"{f['id']} (was {f['was']})" for f in comparison["fixed"]) or "none")]
    lines += [f"Broken in B ({len(comparison['broken'])}): " + (", ".join(f"{f['id']} ({f['now']})" for f in comparison["broken"]) or "none")]
    if comparison["only_in_a"] or comparison["only_in_b"]:
        lines.append(f"Questions in one run only: A {comparison['only_in_a']}, B {comparison['only_in_b']}")
    return "\n".join(lines)
