"""Incremental ingestion, bad files, and settings that do not match the index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant, ingestion
from assistant.store import SYNC_THRESHOLD, ChunkStore, IndexUnavailable
from tests.conftest import make_settings


def _chunk_ids(bot: Assistant, doc_id: str) -> set[str]:
    return set(bot.store.collection.get(where={"doc_id": doc_id}, include=[])["ids"])


def test_incremental_reingest(tmp_path: Path, small_corpus: Path) -> None:
    bot = Assistant(make_settings(tmp_path, small_corpus))
    first = bot.ingest()
    assert first.documents == 5 and first.embedded == first.chunks > 0

    again = bot.ingest()
    assert again.embedded == 0 and again.chunks == first.chunks

    changed = small_corpus / "cpa-parliamentary-module-cross-border-ai-governance.txt"
    old_ids = _chunk_ids(bot, "cpa-module-2026")
    changed.write_text(changed.read_text() + "\nThe module closes with a vote of thanks to the hosts of the conference.\n")
    oecd_ids = _chunk_ids(bot, "oecd-ai-2019")
    third = bot.ingest()
    new_ids = _chunk_ids(bot, "cpa-module-2026")
    assert third.embedded == len(new_ids)
    assert new_ids != old_ids
    assert _chunk_ids(bot, "oecd-ai-2019") == oecd_ids
    assert bot.store.count() == third.chunks

    (small_corpus / "oecd-recommendation-of-the-council-on-ai-2019.md").unlink()
    fourth = bot.ingest()
    assert _chunk_ids(bot, "oecd-ai-2019") == set()
    assert fourth.documents == 4 and bot.store.count() == fourth.chunks
    bot.store.check_ready()
    hits = bot.store.keyword_search("OECD Recommendation Council", 50)
    assert all(h.metadata["doc_id"] != "oecd-ai-2019" for h in hits)


def test_a_large_ingest_is_embedded_and_stored_in_slices(
    tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch, calls: list[list[str]]
) -> None:
    """Slices bound an ingest's memory; the index they build is the one a single pass builds."""
    whole = Assistant(make_settings(tmp_path / "whole", small_corpus))
    whole.ingest()
    calls.clear()
    monkeypatch.setattr(ingestion, "SLICE_CHARS", 8_000)  # the five documents hold about 44,000 characters
    sliced = Assistant(make_settings(tmp_path / "sliced", small_corpus))
    summary = sliced.ingest()
    assert len(calls) >= 3  # one encoder call per slice, for its chunks, and for its sentences and words
    assert summary.embedded == summary.chunks and summary.readings > summary.chunks
    assert sum(len(texts) for texts in calls) == summary.embedded + summary.readings
    assert set(sliced.store.collection.get(include=[])["ids"]) == set(whole.store.collection.get(include=[])["ids"])
    sliced.store.check_ready()


def test_new_bm25_parameters_rebuild_only_the_keyword_index(tmp_path: Path, small_corpus: Path) -> None:
    Assistant(make_settings(tmp_path, small_corpus)).ingest()
    before = Assistant(make_settings(tmp_path, small_corpus)).store.keyword_search("scientific panel experts", 5)
    changed = Assistant(make_settings(tmp_path, small_corpus, retrieval={"bm25_k1": 1.5, "bm25_b": 0.75}))
    assert changed.store.keyword_outdated()
    assert changed.ingest().embedded == 0
    assert not changed.store.keyword_outdated()
    changed.store.check_ready()
    after = changed.store.keyword_search("scientific panel experts", 5)
    assert [c.id for c in after] and [c.score for c in after] != [c.score for c in before]


def test_a_vector_graph_that_lost_chunks_to_deletions_is_rebuilt(tmp_path: Path) -> None:
    """Chroma 1.5 stops finding some live chunks after deletions and re-adds (chroma-core/chroma#7758)."""
    store = ChunkStore(make_settings(tmp_path))
    vectors = np.random.default_rng(7).normal(size=(1500, 32)).tolist()
    ids = [f"doc-{i % 5}:{i:05d}" for i in range(1500)]

    def fill() -> None:
        store.upsert(ids, ids, vectors, [{"doc_id": i.split(":")[0]} for i in ids])

    with store.writer_lock():
        fill()
        for _ in range(10):  # what `--rebuild` did before it dropped the collection: delete every chunk, add it again
            store.collection.delete(ids=ids)
            fill()
            if store.unreachable() > ingestion.LOST_SHARE * 1500:  # in our runs, by the fifth round
                break
        else:
            pytest.skip("this Chroma finds every chunk after deletions: chroma-core/chroma#7758 is fixed")
        store.compact()
        assert store.unreachable() <= ingestion.LOST_SHARE * 1500 and store.count() == 1500
        found = store.collection.query(query_embeddings=vectors[:300], n_results=1, include=[])["ids"]
        assert sum(hit[0] != i for hit, i in zip(found, ids)) <= 1  # each chunk is its own nearest neighbour again
        for _ in range(5):
            store.clear()  # drops the collection: refilled, its graph has no holes
            fill()
            assert store.unreachable() <= ingestion.LOST_SHARE * 1500
    # Only the live collection's vector folder is left: Chroma leaves dropped ones (chroma-core/chroma#5259).
    folders = [p for p in (tmp_path / "index" / "chroma").iterdir() if p.is_dir()]
    assert len(folders) == 1, folders


_SEARCH_IN_A_NEW_PROCESS = """
import json, sys
import numpy as np
from assistant.store import ChunkStore
from tests.conftest import make_settings
store = ChunkStore(make_settings(__import__("pathlib").Path(sys.argv[1])))
queries = np.random.default_rng(11).normal(size=(100, 384)).tolist()
print(json.dumps(store.collection.query(query_embeddings=queries, n_results=10, include=[])["ids"]))
"""


def test_every_process_searches_the_same_vector_graph(tmp_path: Path) -> None:
    """Chroma re-inserts the writes since its last save, in no fixed order, in each process that loads them."""
    store = ChunkStore(make_settings(tmp_path))
    vectors = np.random.default_rng(7).normal(size=(1500, 384)).tolist()
    ids = [f"doc:{i:05d}" for i in range(1500)]
    with store.writer_lock():
        store.upsert(ids, ids, vectors, [{"doc_id": "doc"} for _ in ids])  # saved at 1,000: 500 left to re-insert
        store.settle()
    searches = [
        subprocess.run([sys.executable, "-c", _SEARCH_IN_A_NEW_PROCESS, str(tmp_path)], capture_output=True,
                       text=True, check=True, cwd=Path(__file__).parent.parent).stdout
        for _ in range(2)
    ]
    assert json.loads(searches[0]) == json.loads(searches[1])
    assert store.collection.configuration["hnsw"]["sync_threshold"] == SYNC_THRESHOLD  # writes do not each save it
    assert store.count() == 1500


def test_an_ingest_that_writes_saves_the_vector_graph_whole(
    tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves: list[int] = []
    settle = ChunkStore.settle
    monkeypatch.setattr(ChunkStore, "settle", lambda self: saves.append(self.count()) or settle(self))
    bot = Assistant(make_settings(tmp_path, small_corpus))
    first = bot.ingest()
    bot.ingest()  # unchanged: nothing written, nothing to save
    assert saves == [first.chunks]


def test_ingest_rebuilds_a_vector_graph_that_lost_chunks(
    tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = Assistant(make_settings(tmp_path, small_corpus))
    bot.ingest()
    before = bot.store.collection.id
    reports = iter([4])  # the check above finds real losses; here the ingest's handling of one is tested
    monkeypatch.setattr(ChunkStore, "unreachable", lambda self: next(reports, 0))
    summary = bot.ingest()
    assert summary.embedded == 0 and any("chroma-core/chroma#7758" in w for w in summary.warnings)
    assert bot.store.collection.id != before  # a new collection holds the same chunks
    assert bot.store.count() == summary.chunks
    bot.store.check_ready()


def test_bad_files_are_skipped_with_reasons(tmp_path: Path, small_corpus: Path) -> None:
    (small_corpus / "empty.txt").write_text("")
    (small_corpus / "random.txt").write_bytes(bytes(range(256)) * 4)
    (small_corpus / "latin1.txt").write_bytes("Déclaration sur l'IA".encode("latin-1"))
    (small_corpus / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    (small_corpus / "broken.docx").write_bytes(b"not a zip")
    (small_corpus / "page.html").write_text(
        "<html><head><script>alert(1)</script></head><body><h1>Extra note</h1>"
        "<p>The extra note records that the delegation welcomed the new scientific panel warmly.</p></body></html>"
    )
    summary = Assistant(make_settings(tmp_path, small_corpus)).ingest()
    reasons = {s["file"]: s["reason"] for s in summary.skipped}
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["random.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "PDF" in reasons["broken.pdf"]
    assert "DOCX" in reasons["broken.docx"]
    assert summary.documents == 6  # the five documents and the uncatalogued HTML page
    assert any("page.html is not in catalog.toml" in w for w in summary.warnings)


def test_other_settings_need_rebuild(tmp_path: Path, small_corpus: Path) -> None:
    Assistant(make_settings(tmp_path, small_corpus)).ingest()
    other = Assistant(make_settings(tmp_path, small_corpus, chunking={"max_tokens": 128}))
    with pytest.raises(IndexUnavailable, match="--rebuild"):
        other.ask("What is the CPA module about?")
    rebuilt = other.ingest(rebuild=True)
    assert rebuilt.embedded == rebuilt.chunks > 0
    assert other.ask("What is the CPA module about?")["retrieved"]


def test_a_reader_picks_up_what_another_ingest_wrote(tmp_path: Path, small_corpus: Path, assistant: Assistant) -> None:
    """An app replica sharing the index folder sees a later ingest at its next question, no restart."""
    writer = Assistant(make_settings(tmp_path, small_corpus))
    writer.embed_model = assistant.embed_model
    writer.ingest()
    reader = Assistant(make_settings(tmp_path, small_corpus))  # its own store handle, as another process has
    reader.embed_model = assistant.embed_model
    question = "What does the Lagos accord on seabed drones require of operators?"
    assert reader.ask(question)["refused"]
    (small_corpus / "lagos-accord.txt").write_text(
        "The Lagos accord on seabed drones\n\nThe Lagos accord on seabed drones requires operators to "
        "register every seabed drone with the coastal state before deployment.\n", encoding="utf-8")
    writer.ingest()
    record = reader.ask(question)
    assert not record["refused"] and "register every seabed drone" in record["answer"]
    assert any(r["doc_id"] == "lagos-accord" for r in record["retrieved"][:3])


def test_chunks_are_read_page_by_page(assistant: Assistant) -> None:
    """A large index is read in pages (Chroma on disk fails on 100,000 ids in one call)."""
    ids = [chunk.id for chunk in assistant.store.chunks(page=97)]
    assert len(ids) == len(set(ids)) == assistant.store.count() > 97 * 3
