"""End to end over the real bundled corpus: retrieval, cited answers, refusals, filters, the record."""

from __future__ import annotations

import re

import pytest

from assistant import Assistant, Filters
from assistant.prompts import CANNOT_ANSWER

# (question, document, a phrase its passage must contain)
FINDABLE = [
    ("How much could AI add to the world economy by 2030?", "un-foundation-2026-02", "USD 15.7 trillion"),
    ("Who is the Deputy Speaker of the UK House of Commons speaking at the CPA module?", "cpa-module-2026", "Nusrat Ghani"),
    ("Where was the side event on government AI capacity held?", "unu-cpr-2026-05", "One Dag Hammarskjöld Plaza"),
    ("What do cross-border registries of AI systems allow regulators to do?", "modern-diplomacy-2026", "registries"),
    ("What should AI actors do about transparency and responsible disclosure?", "oecd-ai-2019", "transparency and responsible disclosure"),
    ("What fines apply to non-compliance with the prohibited AI practices?", "eu-ai-act-2024", "EUR 35 000 000"),
]
UNANSWERABLE = [
    "What is the capital of Peru?",
    "Who won the 2022 football World Cup final?",
    "What was the annual budget in US dollars allocated to the Scientific Panel for 2027?",
]


@pytest.mark.parametrize(("question", "doc_id", "phrase"), FINDABLE)
def test_each_document_answers_in_top_five(assistant: Assistant, question: str, doc_id: str, phrase: str) -> None:
    record = assistant.ask(question)
    top5 = record["retrieved"][:5]
    assert any(r["doc_id"] == doc_id and phrase.lower() in r["text"].lower() for r in top5), top5
    assert not record["refused"]
    assert record["citations"], record["answer"]
    for citation in record["citations"]:
        assert f"[{citation['n']}]" in record["answer"]
        assert citation["id"] in {r["id"] for r in record["retrieved"]}


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_out_of_corpus_questions_are_refused(assistant: Assistant, question: str) -> None:
    record = assistant.ask(question)
    assert record["refused"], record["answer"]
    assert record["answer"].startswith(CANNOT_ANSWER)
    assert "Regulation (EU) 2024/1689" in record["answer"]  # names the documents searched
    assert record["citations"] == []
    assert len(record["retrieved"]) >= 5  # the nearest passages are offered


def test_extractive_answer_is_made_of_source_sentences(assistant: Assistant) -> None:
    record = assistant.ask("What fines apply to non-compliance with the prohibited AI practices?")
    assert "35 000 000" in record["answer"]
    assert record["unsupported"] == []
    cited = {c["n"]: re.sub(r"\s+", " ", c["text"].replace("**", "")) for c in record["citations"]}
    for sentence, n in re.findall(r"(.+?) \[(\d+)\][.!?]", record["answer"]):
        assert sentence.strip() in cited[int(n)]
    assert record["citations"][0]["section"] == "Article 99 > 3"


def test_record_has_the_promised_shape(assistant: Assistant) -> None:
    record = assistant.ask("What is the purpose of the Independent International Scientific Panel on AI?")
    assert {"question", "answer", "refused", "citations", "retrieved", "unsupported", "timings_ms"} <= set(record)
    assert set(record["citations"][0]) >= {"n", "doc_id", "title", "section", "page", "text", "score"}
    assert set(record["retrieved"][0]) >= {"rank", "doc_id", "text", "score"}
    assert [r["rank"] for r in record["retrieved"]] == list(range(1, len(record["retrieved"]) + 1))
    assert set(record["timings_ms"]) == {"retrieve", "answer", "total"}
    assert record["index_hash"] == assistant.settings.index_hash()


def test_filters_restrict_retrieval(assistant: Assistant) -> None:
    record = assistant.ask("What do the documents say about transparency?", Filters(kinds=("recommendation",)))
    assert {r["doc_id"] for r in record["retrieved"]} == {"oecd-ai-2019"}
    dated = assistant.ask("What do the documents say about transparency?", Filters(date_to="2020"))
    assert {r["doc_id"] for r in dated["retrieved"]} == {"oecd-ai-2019"}
