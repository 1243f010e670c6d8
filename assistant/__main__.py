"""Command line: `python -m assistant ingest|ask|eval|calibrate|settings`.

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

    calibrate = commands.add_parser("calibrate", help="choose the refusal threshold on a QA set")
    calibrate.add_argument("qa_set", type=Path)

    evaluate = commands.add_parser("eval", help="run a QA set; write results.jsonl and summary.json")
    evaluate.add_argument("qa_set", type=Path)
    evaluate.add_argument("--out", type=Path, required=True, help="folder for the run's files")

    commands.add_parser("settings", help="print the settings table (Markdown)")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.command == "settings":
        print(settings_table())
        return 0
    try:
        return _run(args)
    except ValidationError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
    except (CatalogError, FileNotFoundError) as exc:
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
        from assistant.calibration import calibrate

        print(json.dumps(calibrate(assistant, args.qa_set), indent=2))
        return 0
    if args.command == "eval":
        from assistant.evaluation import run_eval

        print(json.dumps(run_eval(assistant, args.qa_set, args.out), indent=2))
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
