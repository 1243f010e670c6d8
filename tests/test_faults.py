"""Faults: an ingest killed mid-way, two ingests at once, a damaged index, a Chroma server that goes
away and comes back, an LLM endpoint that hangs or answers garbage. Real processes, real servers,
loopback only; every server started here is stopped by the test that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from app import ChatHandlers
from assistant import Assistant, Settings
from assistant.answering import FALLBACK_NOTICE
from assistant.exports import audit_record
from assistant.store import ChunkStore, IndexUnavailable
from benchmarks.server_mode import ChromaServer
from tests.conftest import ROOT, make_settings

QUESTION = "How much could AI contribute to the global economy by 2030?"


def ingest_process(settings: Settings) -> subprocess.Popen[str]:
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_INDEX_DIR": str(settings.index_dir)}
    return subprocess.Popen([sys.executable, "-m", "assistant", "ingest", "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def index_state(settings: Settings) -> dict[str, Any]:
    """What an index holds: chunk ids in Chroma and in the keyword index, and the manifest's documents."""
    store = ChunkStore(settings)
    manifest = store.check_ready()
    rows = json.loads((store.keyword_dir / "rows.json").read_text())
    documents = {k: {f: v for f, v in d.items() if f != "indexed_at"} for k, d in manifest.documents.items()}
    return {"chroma": sorted(store.collection.get(include=[])["ids"]), "keyword": sorted(r["id"] for r in rows),
            "documents": documents}


def test_an_ingest_killed_at_any_point_is_completed_by_the_next(tmp_path: Path, small_corpus: Path) -> None:
    clean = make_settings(tmp_path / "clean", small_corpus)
    began = time.perf_counter()
    assert ingest_process(clean).wait(timeout=300) == 0
    duration = time.perf_counter() - began
    expected = index_state(clean)
    assert expected["chroma"] == expected["keyword"] and len(expected["chroma"]) > 50
    # Kill points spread over a clean run (model loading, chunking, embedding, writing), whatever the machine's speed.
    for delay in (0.4 * duration, 0.7 * duration, 0.85 * duration, 0.95 * duration):
        crashed = make_settings(tmp_path / f"killed-{delay:.1f}", small_corpus)
        process = ingest_process(crashed)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        finish = ingest_process(crashed)
        assert finish.wait(timeout=300) == 0, finish.stderr.read() if finish.stderr else ""
        assert index_state(crashed) == expected, f"killed after {delay:.1f} s of {duration:.1f} s"


def test_chunks_left_by_a_killed_ingest_of_a_file_since_removed_are_swept(tmp_path: Path, small_corpus: Path,
                                                                         assistant: Assistant) -> None:
    """A killed ingest may have stored a document the manifest never listed; if its file is gone by
    the next ingest, that ingest still removes its chunks, and the index is whole again."""
    bot = Assistant(make_settings(tmp_path, small_corpus))
    bot.embed_model = assistant.embed_model
    bot.ingest()
    expected = index_state(bot.settings)
    # What a killed ingest of "ghost.txt" leaves: its chunks in Chroma, no manifest entry, no keyword rows.
    bot.store.upsert(ids=["ghost-1", "ghost-2"], texts=["A ghost passage.", "Another ghost passage."],
                     embeddings=[[0.1] * 384, [0.2] * 384], metadatas=[{"doc_id": "ghost", "file": "ghost.txt"}] * 2)
    with pytest.raises(IndexUnavailable, match="incomplete"):
        Assistant(bot.settings).store.check_ready()
    assert bot.ingest().embedded == 0
    assert index_state(bot.settings) == expected


def test_a_second_ingest_stops_with_a_message_naming_the_lock(tmp_path: Path, small_corpus: Path) -> None:
    settings = make_settings(tmp_path, small_corpus)
    with ChunkStore(settings).writer_lock():
        second = ingest_process(settings)
        _, stderr = second.communicate(timeout=300)
    assert second.returncode == 1 and "Another ingest is writing this index" in stderr and ".ingest.lock" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("damage", ["delete keyword rows", "truncate chroma", "garble manifest"])
def test_a_damaged_index_is_reported_with_the_rebuild_command(damage: str, tmp_path: Path, small_corpus: Path) -> None:
    settings = make_settings(tmp_path, small_corpus)
    Assistant(settings).ingest()
    index = Path(settings.index_dir)
    if damage == "delete keyword rows":
        (index / "keyword" / "rows.json").unlink()
    elif damage == "truncate chroma":
        database = index / "chroma" / "chroma.sqlite3"
        database.write_bytes(database.read_bytes()[:4096])
    else:
        (index / "manifest.json").write_text('{"shape": ')
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(small_corpus), "ASSISTANT_INDEX_DIR": str(index)}
    result = subprocess.run([sys.executable, "-m", "assistant", "ask", QUESTION], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1 and "ingest --rebuild" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture()
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A real `chroma run` on a free loopback port; `stop()` and `start()` take it away and back."""
    with ChromaServer(tmp_path / "chroma-server") as server:
        yield server


def test_chroma_server_mode_survives_the_server_going_away(chroma_server: ChromaServer, tmp_path: Path,
                                                          small_corpus: Path, assistant: Assistant) -> None:
    settings = make_settings(tmp_path, small_corpus, chroma_url=chroma_server.url)
    bot = Assistant(settings)
    bot.embed_model = assistant.embed_model  # share the loaded model
    summary = bot.ingest()
    assert summary.embedded > 50 and not (Path(settings.index_dir) / "chroma").exists()  # vectors live in the server
    handlers = ChatHandlers(bot)
    assert "15.7 trillion" in list(handlers.respond(QUESTION, [], handlers.new_state()))[-1][1][-1]["content"]

    chroma_server.stop()
    with pytest.raises(IndexUnavailable, match="Chroma server"):
        bot.ask(QUESTION)
    down = list(handlers.respond(QUESTION, [], handlers.new_state()))[-1][1][-1]["content"]
    assert "unavailable" in down.lower() and "Chroma server" in down  # said in the chat; the app keeps serving

    chroma_server.start()
    assert "15.7 trillion" in bot.ask(QUESTION)["answer"]  # back, without a restart


class _BadLLM(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that hangs (`/slow`) or answers garbage (`/garbage`)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/slow"):
            time.sleep(60)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"<html>not json at all")
        except (BrokenPipeError, ConnectionResetError):
            return  # on `/slow` the client has given up long before, as it should

    def log_message(self, format: str, *args: Any) -> None:  # silence the test output
        return None


@pytest.mark.parametrize("behaviour", ["slow", "garbage"])
def test_a_hanging_or_garbled_llm_endpoint_falls_back_to_extractive(behaviour: str, assistant: Assistant) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        llm = {"backend": "openai", "base_url": f"http://127.0.0.1:{server.server_port}/{behaviour}/v1", "timeout_s": 1.0,
               "api_key": SecretStr("sk-secret-value")}
        bot = Assistant(assistant.settings.model_copy(update={"llm": assistant.settings.llm.model_copy(update=llm)}))
        bot.embed_model = assistant.embed_model
        began = time.perf_counter()
        record = bot.ask(QUESTION)
        assert time.perf_counter() - began < 30  # the 1 s timeout, not the 60 s endpoint, decides: never a hang
    finally:
        server.shutdown()
    # A timeout or an unreadable reply fails the call; garbage that parses as an empty stream has no
    # supported sentence: either way the extractive answer comes, with a notice saying why.
    assert "15.7 trillion" in record["answer"]
    assert any("language model failed" in n or n == FALLBACK_NOTICE for n in record["notices"]), record["notices"]
    audit = audit_record(record, QUESTION, bot.settings.index_shape())
    assert "sk-secret-value" not in json.dumps(record) + json.dumps(audit)  # no secret in records or audits
    assert bot.settings.engine_hash() == Assistant(bot.settings.model_copy(update={"llm": bot.settings.llm.model_copy(
        update={"api_key": SecretStr("another")})})).settings.engine_hash()  # nor in the hash stamped on eval runs
