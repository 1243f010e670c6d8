"""Command line: `python -m assistant ingest|ask|eval|eval-compare|validate|split|feedback-to-qa|calibrate|settings`.

Every failure a user can cause (an empty question, a missing index, settings that do not match the
index, a second ingest running) ends with one clear line on stderr and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from assistant.catalog import CatalogError
from assistant.qa_sets import SPLITS, QASetError
from assistant.settings import Settings, settings_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="index the corpus folder (only what changed)")
    ingest.add_argument("--rebuild", action="store_true", help="drop the index and build it anew")
    ingest.add_argument("--json", action="store_true", help="print a summary object instead of a progress bar")

    ask = commands.add_parser("ask", help="answer a question with citations")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the full answer record")
    ask.add_argument("--doc", action="append", default=[], help="only this document id (repeatable)")
    ask.add_argument("--issuer", action="append", default=[], help="only this issuing body (repeatable)")
    ask.add_argument("--kind", action="append", default=[], help="only this kind of document (repeatable)")
    ask.add_argument("--part", action="append", default=[], help="only this article or annex, e.g. 'Article 5' (repeatable)")
    ask.add_argument("--from", dest="date_from", default="", help="documents dated on or after (YYYY[-MM[-DD]])")
    ask.add_argument("--to", dest="date_to", default="", help="documents dated on or before (YYYY[-MM[-DD]])")

    calibrate = commands.add_parser("calibrate", help="fit the refusal model on the dev split of QA sets")
    calibrate.add_argument("qa_sets", type=Path, nargs="+", help="the sets; cross-document questions fit the document threshold")
    calibrate.add_argument("--split", choices=SPLITS, default="dev", help="the split to fit on (default: dev)")
    calibrate.add_argument("--write", action="store_true", help="store the model as the bundled assistant/refusal_model.json")

    evaluate = commands.add_parser("eval", help="run a QA set; write results, summary and reports to a folder")
    evaluate.add_argument("qa_set", type=Path, help="our JSONL, or a RAGAS-style JSONL or CSV")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for the run's files")
    evaluate.add_argument("--baseline", choices=["naive"], help="also run the naive LlamaIndex pipeline, for comparison")
    evaluate.add_argument("--judge", action="store_true", help="add LLM-judged faithfulness and correctness (needs an LLM)")
    evaluate.add_argument("--split", choices=SPLITS, help="only the questions of this split (default: all)")
    evaluate.add_argument("--document", metavar="ID", help="only the questions about this document (their first tag)")
    evaluate.add_argument("--holdout-document", metavar="ID",
                          help="fit the refusal model without this document's dev questions, then ask only its questions")

    compare = commands.add_parser("eval-compare", help="two eval runs side by side: metrics, fixed and broken questions")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument("--json", action="store_true", help="print the comparison object")

    validate = commands.add_parser("validate", help="check a QA set; print line-numbered errors")
    validate.add_argument("qa_set", type=Path)

    split = commands.add_parser("split", help="give every question of a QA set without one a dev or test split")
    split.add_argument("qa_set", type=Path)
    split.add_argument("--test-share", type=float, default=0.3, help="share of each stratum sent to test (default 0.3)")

    drafts = commands.add_parser("feedback-to-qa", help="turn the chat's thumbs-down feedback into draft QA items")
    drafts.add_argument("feedback", type=Path, nargs="?", default=None, help="feedback file (default: the setting serve.feedback_path)")
    drafts.add_argument("--out", type=Path, required=True, help="JSONL file the drafts are written to")
    drafts.add_argument("--include-liked", action="store_true", help="also keep thumbs-up lines (already complete items)")

    commands.add_parser("settings", help="print the settings table (Markdown)")

    args = parser.parse_args(argv)
    shown = logging.StreamHandler()
    shown.setLevel(logging.WARNING)  # on the handler: bm25s sets its own logger to DEBUG when imported
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", handlers=[shown])
    if args.command == "settings":
        print(settings_table())
        return 0
    try:
        return _run(args)
    except ValidationError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
    except QASetError as exc:
        print(f"error: the QA set has {len(exc.errors)} problem(s):", file=sys.stderr)
        for problem in exc.errors:
            print(f"  {problem}", file=sys.stderr)
    except (CatalogError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to finish", file=sys.stderr)
        return 130
    except Exception as exc:
        from assistant.engine import QuestionError
        from assistant.store import IndexUnavailable

        if not isinstance(exc, QuestionError | IndexUnavailable):
            raise
        print(f"error: {exc}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    from assistant.engine import Assistant, check_question
    from assistant.ingestion import progress_wanted
    from assistant.retrieval import Filters

    settings = Settings()
    if args.command == "validate":
        from assistant.qa_sets import read_qa_set

        items = read_qa_set(args.qa_set)
        unanswerable = sum(1 for item in items if not item["answerable"])
        print(f"{args.qa_set}: {len(items)} questions ({unanswerable} unanswerable), valid")
        return 0
    if args.command == "split":
        from assistant.qa_sets import assign_splits, read_qa_set

        items = assign_splits(read_qa_set(args.qa_set), args.test_share)
        args.qa_set.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
        tested = sum(item["split"] == "test" for item in items)
        print(f"{args.qa_set}: {len(items) - tested} dev and {tested} test questions")
        return 0
    if args.command == "eval-compare":
        from assistant.evaluation import compare_runs, comparison_markdown

        comparison = compare_runs(args.run_a, args.run_b)
        print(json.dumps(comparison, indent=2) if args.json else comparison_markdown(comparison))
        return 0
    if args.command == "feedback-to-qa":
        from assistant.qa_sets import feedback_drafts

        source = args.feedback or settings.serve.feedback_path
        drafted = feedback_drafts(source.read_text(encoding="utf-8").splitlines(), args.include_liked)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in drafted), encoding="utf-8")
        print(f"{len(drafted)} draft QA items written to {args.out}; review them, then add them to a QA set")
        return 0
    if args.command == "ask":
        check_question(args.question, settings.answer.max_question_chars)  # before loading any model
    assistant = Assistant(settings)
    if args.command == "ingest":
        summary = assistant.ingest(rebuild=args.rebuild, show_progress=not args.json and progress_wanted())
        if args.json:
            print(json.dumps(summary.as_dict(), ensure_ascii=False))
        else:
            print(f"{summary.documents} documents, {summary.chunks} chunks ({summary.embedded} embedded now) "
                  f"in {summary.seconds:.1f} s")
            for skipped in summary.skipped:
                print(f"skipped {skipped['file']}: {skipped['reason']}")
        return 0
    if args.command == "calibrate":
        from dataclasses import asdict

        from assistant.calibration import calibrate
        from assistant.evidence import BUNDLED_MODEL

        model = calibrate(assistant, args.qa_sets, args.split)
        print(json.dumps(asdict(model), indent=2))
        if args.write:
            model.save(BUNDLED_MODEL)
            print(f"written to {BUNDLED_MODEL}", file=sys.stderr)
        return 0
    if args.command == "eval":
        from assistant.evaluation import run_eval

        run = run_eval(assistant, args.qa_set, args.out, baseline=args.baseline, judge=args.judge, split=args.split,
                       document=args.holdout_document or args.document, holdout=bool(args.holdout_document),
                       show_progress=progress_wanted())
        print(json.dumps({"metrics": run["metrics"], "latency_ms": run["latency_ms"],
                          "index_hash": run["index_hash"], "corpus_hash": run["corpus_hash"], "engine_hash": run["engine_hash"],
                          "report": str(args.out / "report.html")}, indent=2))
        return 0
    filters = Filters(tuple(args.doc), tuple(args.issuer), tuple(args.kind), args.date_from, args.date_to, tuple(args.part))
    record = assistant.ask(args.question, filters)
    if args.json:
        print(json.dumps(record, ensure_ascii=False))
        return 0
    print(record["answer"])
    for notice in record["notices"]:
        print(f"\nNote: {notice}")
    if record["unsupported"]:
        print("\nNot supported by the cited passages:")
        for sentence in record["unsupported"]:
            print(f"  - {sentence}")
    if record["refused"]:
        print("\nNearest passages:")
        for item in record["retrieved"][:3]:
            print(f"  - {item['doc_id']}, {item['section'] or 'start'}: {item['text'][:200]}")
    else:
        print()
        for c in record["citations"]:
            page = f", page {c['page']}" if c["page"] else ""
            print(f"[{c['n']}] {c['title']} ({c['issuer']}, {c['date']}), {c['section'] or 'opening'}{page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
