"""The embed stage: the ONNX exports against torch, stored sentence vectors, the vector cache, one encoder call per ingest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.schema import TextNode

from assistant import Assistant, onnx_encoder
from assistant.embedding import SentenceTransformerEmbedding, resolve_model_path
from assistant.ingestion import READINGS_VERSION
from assistant.onnx_encoder import OnnxEncoder
from assistant.settings import Settings
from tests.conftest import ROOT, make_settings

LONG = " ".join(["Providers of high-risk AI systems shall keep the logs automatically generated."] * 30)
TEXTS = ["AI", "What fines apply to prohibited AI practices?", LONG,
         "Multilateral AI diplomacy: setting the stage for success in 2026.", "数字鸿沟 🌍 digital divide"]


@pytest.fixture(scope="module")
def int8(tmp_path_factory: pytest.TempPathFactory) -> OnnxEncoder:
    return OnnxEncoder(resolve_model_path(""), tmp_path_factory.mktemp("models"))


def test_int8_vectors_stay_close_to_torch_for_padded_batches(int8: OnnxEncoder, assistant: Assistant) -> None:
    torch_vectors = assistant.embed_model.encode(TEXTS)
    onnx_vectors = int8.encode(TEXTS)  # one batch: short texts padded to the longest (truncated at 256)
    cosines = np.sum(torch_vectors * onnx_vectors, axis=1)
    assert onnx_vectors.shape == torch_vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-4)
    assert cosines.min() > 0.98, cosines
    # The order of the texts is kept although the encoder batches them by length.
    assert np.argmax(onnx_vectors @ torch_vectors[2]) == 2


def test_the_int8_model_is_made_once_and_reused(int8: OnnxEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    made = int8.file.stat().st_mtime_ns

    def no_export(*_: Any) -> None:
        raise AssertionError("the cached model was exported again")

    monkeypatch.setattr(onnx_encoder, "export_onnx", no_export)
    again = OnnxEncoder(resolve_model_path(""), int8.file.parent)
    assert again.file == int8.file and again.file.stat().st_mtime_ns == made
    assert not list(int8.file.parent.glob("*.tmp"))  # nothing half-written left behind
    assert np.allclose(again.encode(TEXTS[:2]), int8.encode(TEXTS[:2]))


def test_onnx_backend_indexes_and_answers(tmp_path: Path, small_corpus: Path) -> None:
    bot = Assistant(make_settings(tmp_path, small_corpus, embedding={"backend": "onnx-int8"}))
    assert bot.ingest().embedded > 0
    assert list((tmp_path / "index" / "models").glob("*-int8.onnx"))  # cached under the index folder
    record = bot.ask("How much could AI contribute to the global economy by 2030, according to the UN Foundation summary?")
    assert not record["refused"] and "15.7 trillion" in record["answer"]
    assert bot.model_names()["embedding"].endswith("(onnx-int8)")
    # An index made by one backend is not opened with the other's settings.
    assert Settings(embedding={"backend": "onnx-int8"}).index_hash() != Settings().index_hash()


def test_vectors_are_remembered_by_text(assistant: Assistant, calls: list[list[str]]) -> None:
    embedder = SentenceTransformerEmbedding(resolve_model_path(""))
    embedder._model = assistant.embed_model.model  # the loaded model, not a second copy
    first = embedder.get_text_embedding_batch(["alpha beta gamma", "delta epsilon"])
    second = embedder.get_text_embedding_batch(["delta epsilon", "zeta eta"])
    assert calls == [["alpha beta gamma", "delta epsilon"], ["zeta eta"]]
    assert second[0] == first[1]
    assert embedder.get_query_embedding("alpha beta gamma") == first[0] and len(calls) == 2


def test_an_ingest_embeds_its_nodes_in_one_encoder_call(assistant: Assistant, calls: list[list[str]]) -> None:
    embedder = SentenceTransformerEmbedding(resolve_model_path(""), embed_batch_size=2)
    embedder._model = assistant.embed_model.model
    nodes = [TextNode(text=f"Passage number {i} on AI governance.") for i in range(7)]
    embedder(nodes)
    assert [len(texts) for texts in calls] == [7]  # not four batches of embed_batch_size
    assert all(len(node.embedding or []) == 384 for node in nodes)
    assert embedder._cache == {}  # ingest vectors go to the index, not the question cache


def test_the_light_encoder_agrees_with_torch_and_answers_without_it(assistant: Assistant) -> None:
    """The fp32 export made at ingest gives torch's vectors, so questions need neither torch nor sentence-transformers."""
    light = OnnxEncoder(assistant.embed_model.model_path, assistant.settings.index_dir / "models", quantized=False)
    assert light.file.name.endswith("-fp32.onnx")
    questions = [json.loads(line)["question"] for line in (ROOT / "evals" / "governance_qa.jsonl").read_text().splitlines()[:60]]
    cosines = np.sum(assistant.embed_model.encode(questions) * light.encode(questions), axis=1)
    assert cosines.min() > 0.9999, cosines.min()

    script = ("import sys\nfrom assistant import Assistant, Settings\n"
              f"bot = Assistant(Settings(corpus_dir={str(assistant.settings.corpus_dir)!r}, index_dir={str(assistant.settings.index_dir)!r}))\n"
              "record = bot.ask('What fines apply to prohibited AI practices?')\n"
              "print(record['refused'], 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "False"], done.stderr[-2000:]


def test_stored_sentence_vectors_leave_a_question_one_encoder_call(markup_assistant: Assistant, calls: list[list[str]]) -> None:
    """Every indexed answer sentence and word is embedded at ingest; a question then embeds only itself,
    and those of its own words the documents never use (to find them said in other words)."""
    assert len(markup_assistant.store.sentences) > 100
    question = "What did the sandbox briefing note recommend about evaluation sandboxes?"
    record = markup_assistant.ask(question)
    assert not record["refused"]
    assert calls[0] == [question] and len(calls) <= 2
    assert all(word in question.lower().split() for call in calls[1:] for word in call), calls


def test_sentence_vectors_follow_their_documents(tmp_path: Path, small_corpus: Path) -> None:
    """Stored with a document's chunks, not embedded again while it is unchanged, removed with it."""
    bot = Assistant(make_settings(tmp_path, small_corpus))
    first = bot.ingest()
    folder = tmp_path / "index" / "sentences"
    assert first.readings > 100 and len(list(folder.glob("*.npy"))) == len(list(small_corpus.glob("*.*"))) - 1
    assert bot.ingest().readings == 0  # unchanged: nothing embedded again
    victim = next(p for p in small_corpus.iterdir() if p.name.startswith("un-foundation"))
    texts = json.loads((folder / "un-foundation-2026-02.json").read_text())["texts"]
    stored = bot.store.sentences.lookup(texts)
    assert len(stored) == len(texts)
    assert np.allclose(stored[texts[0]], bot.embed_model.encode([texts[0]])[0], atol=1e-5)
    victim.unlink()
    bot.ingest()
    sentences = [t for t in texts if len(t.split()) > 6]  # its own; its words may stand in other documents too
    assert not list(folder.glob("un-foundation-2026-02.*")) and bot.store.sentences.lookup(sentences) == {}
    (folder / "oecd-ai-2019.json").unlink()  # as an ingest killed between the two writes would leave it
    assert bot.ingest().readings > 0 and (folder / "oecd-ai-2019.json").exists()
    stored = json.loads((folder / "oecd-ai-2019.json").read_text())
    # Texts cut another way (an earlier `answer_sentences`) are stored again, the document's chunks untouched.
    (folder / "oecd-ai-2019.json").write_text(json.dumps(stored | {"version": READINGS_VERSION - 1}))
    again = bot.ingest()
    assert again.readings > 0 and again.embedded == 0
    assert json.loads((folder / "oecd-ai-2019.json").read_text())["version"] == READINGS_VERSION
