"""The command line as a user meets it: clear messages, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from assistant import Assistant
from tests.conftest import ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True, text=True, check=False, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300,
    )


def test_empty_question_fails_clearly() -> None:
    result = run("ask", "   ")
    assert result.returncode != 0
    assert "question is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_overlong_question_fails_clearly() -> None:
    result = run("ask", "x" * 2500)
    assert result.returncode != 0 and "limit is 2,000" in result.stderr and "Traceback" not in result.stderr


def test_missing_index_names_ingest(tmp_path: Path) -> None:
    result = run("ask", "What is AI?", env={"ASSISTANT_INDEX_DIR": str(tmp_path / "none")})
    assert result.returncode == 1
    assert "python -m assistant ingest" in result.stderr and "Traceback" not in result.stderr


def test_ask_json_and_ingest_json(assistant: Assistant) -> None:
    env = {"ASSISTANT_INDEX_DIR": str(assistant.settings.index_dir)}
    summary = json.loads(run("ingest", "--json", env=env).stdout)
    assert summary["embedded"] == 0 and summary["documents"] == 6
    assert set(summary) >= {"documents", "chunks", "embedded", "skipped", "seconds"}
    result = run("ask", "--json", "When does the AI Act enter into force?", env=env)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["question"] == "When does the AI Act enter into force?"
    assert record["citations"] and record["citations"][0]["doc_id"] == "eu-ai-act-2024"
