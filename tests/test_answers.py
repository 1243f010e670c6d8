"""End to end over the real bundled corpus: retrieval, cited answers, refusals, filters, the record."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from assistant import Assistant, Filters
from assistant.answering import extractive_answer
from assistant.evidence import closeness, measure
from assistant.prompts import CANNOT_ANSWER
from assistant.reranking import SentenceRerank, score_sentences
from assistant.retrieval import HybridRetriever

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
    # The calibrated threshold may refuse a loosely worded question; an answer must cite what it uses.
    assert record["refused"] or record["citations"], record["answer"]
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


@pytest.mark.parametrize(
    "question",
    [
        "What share of global AI research originates in Asia, according to the UN Foundation summary?",
        "Which Member State chaired the European Artificial Intelligence Board in 2025?",
        "How many people attended the UNU-CPR side event on building government AI capacity?",
        "Which countries have already joined a global AI model and audit registry, according to the Modern Diplomacy article?",
        "Who will chair the second meeting of the Global Dialogue on AI Governance?",
        "How does the EU AI Act tax companies that sell AI systems?",
    ],
)
def test_near_miss_questions_are_refused_with_the_reason(assistant: Assistant, question: str) -> None:
    record = assistant.ask(question)
    assert record["refused"] and record["citations"] == [], record["answer"]
    evidence = record["evidence"]
    assert evidence["probability"] < assistant.refusal_model.threshold or evidence["missing"]
    if evidence["missing"] or evidence["uncovered"]:  # the reason names what the passages lack
        assert "passages found do not mention" in record["answer"]


def test_a_figure_the_question_states_and_no_passage_holds_is_refused_whatever_the_model() -> None:
    node = NodeWithScore(node=TextNode(text="The Board was established in 2024.", metadata={"section": ""}), score=1.0)
    assert measure("Who chaired the Board in 2031?", [node], [], None, None).missing == ["2031"]  # type: ignore[arg-type]


def test_a_named_document_scopes_the_search(assistant: Assistant) -> None:
    record = assistant.ask("What does the OECD Recommendation say about transparency?")
    assert {r["doc_id"] for r in record["retrieved"]} == {"oecd-ai-2019"}
    assert any("which the question names" in n for n in record["notices"])
    chosen = assistant.ask("What does the OECD say about fines?", Filters(doc_ids=("eu-ai-act-2024",)))
    assert {r["doc_id"] for r in chosen["retrieved"]} == {"eu-ai-act-2024"}  # an explicit filter wins


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("How much could AI contribute to the global economy by 2030, according to the UN Foundation summary?", "15.7 trillion"),
        ("Who is Kenya's Permanent Representative to the UN?", "Ekitela Lokaale"),
        ("How does the AI Act define an 'AI regulatory sandbox'?", "controlled framework"),
        ("Who moderates the panel discussion at the UNU-CPR side event?", "Yu Ping"),  # the agenda's "[Moderator]" field
    ],
)
def test_answerable_questions_are_answered_with_the_fact(assistant: Assistant, question: str, fact: str) -> None:
    record = assistant.ask(question)
    assert not record["refused"], record["evidence_score"]
    assert fact in record["answer"] and record["citations"]


def test_a_speaker_is_answered_with_their_own_line(assistant: Assistant) -> None:
    # The concept note gives an aim, then each speaker's name and title on lines of their own.
    record = assistant.ask("What position does Jo Hironaka hold?")
    assert "UNESCO Regional Advisor" in record["answer"], record["answer"]
    assert "Jon Truby" not in record["answer"] and "Develop a strategy" not in record["answer"]


def test_a_list_item_is_quoted_once_with_its_introduction(assistant: Assistant) -> None:
    # "purpose" names the answer's role; the answer gives it ("to prevent ...") without the word.
    record = assistant.ask(
        "What purpose does the Modern Diplomacy article give for aligning AI auditing and transparency requirements across jurisdictions?"
    )
    assert record["answer"].count("prevent regulatory arbitrage") == 1, record["answer"]
    assert record["answer"].index("several mechanisms:") < record["answer"].index("prevent regulatory arbitrage")


def test_a_venue_question_is_answered_with_the_address(assistant: Assistant) -> None:
    record = assistant.ask("Where did the UN Foundation meeting on multilateral AI diplomacy take place?")
    assert "320 E 43rd Street" in record["answer"], record["answer"]


@pytest.mark.parametrize(
    ("question", "named", "answer"),
    [
        # "These systems enable continuous, decentralized accountability" answers; alone it does not say which systems.
        ("How do remote auditing and monitoring tools change the nature of oversight compared with occasional inspection?",
         "Remote auditing and monitoring tools reduce", "These systems enable continuous"),
        # "It" is the reliability of the sentence two back: "That bet is won or lost ..." sits between them.
        ("Can mutual reliability between countries sharing data be established just by signing an agreement?",
         "making a bet on each other", "It cannot be signed into existence"),
    ],
)
def test_a_sentence_that_points_back_is_quoted_with_what_it_points_to(
    assistant: Assistant, question: str, named: str, answer: str
) -> None:
    nodes = assistant.query_engine(None).retrieve(QueryBundle(question))
    ranked = score_sentences(question, nodes[: assistant.settings.answer.passages], assistant.embed_model)
    text, _ = extractive_answer(ranked, assistant.settings.answer)
    assert 0 <= text.find(named) < text.find(answer), text
    assert text.count(named) == 1, text  # quoted once, though ranked alone and with what follows


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


def test_a_cited_article_is_searched_by_its_parts(assistant: Assistant) -> None:
    only = assistant.ask("What must providers and deployers ensure?", Filters(parts=("Article 4",)))
    assert {r["section"].split(" > ")[0] for r in only["retrieved"]} == {"Article 4"}
    cited = assistant.ask("What does Article 4 of the AI Act require of providers and deployers?")
    assert cited["retrieved"][0]["section"] == "Article 4" and "AI literacy" in cited["retrieved"][0]["text"]


@pytest.mark.parametrize(
    ("question", "section", "fact"),
    [
        ("How does Article 3 of the EU AI Act define an 'AI system'?", "Article 3 > (1)", "machine-based system"),
        ("How does the 2019 OECD Recommendation define an AI system?", "", "AI system: An AI system is"),
    ],
)
def test_a_definition_question_finds_the_definition(assistant: Assistant, question: str, section: str, fact: str) -> None:
    # Dozens of passages use the term; without the ranking of the passages that define it, the EU
    # definition was not in the top 10 and the OECD one fourth.
    record = assistant.ask(question)
    assert any(r["section"] == section and fact in r["text"] for r in record["retrieved"][:2]), record["retrieved"][:2]
    # The answer opens with the definition, not with a sentence that merely uses the term.
    assert fact in record["answer"].split(" [1]")[0] and record["citations"][0]["section"] == section, record["answer"]


def _sections(assistant: Assistant, question: str, **retrieval: float) -> list[str]:
    """The sections of the passages retrieved for `question` with these retrieval settings changed."""
    settings = assistant.settings.retrieval.model_copy(update=retrieval)
    nodes = HybridRetriever(assistant.store, assistant.embed_model, settings).retrieve(question)
    return [n.node.metadata["section"] for n in nodes]


def test_an_article_ranks_before_the_recital_restating_it(assistant: Assistant) -> None:
    question = "Does the EU AI Act ban social scoring of people?"
    assert _sections(assistant, question, recital_weight=1.0)[0].startswith("Whereas Clauses")  # recital 31 explains the ban...
    assert _sections(assistant, question)[0] == "Article 5 > 1"  # ...Article 5 states it
    asked = "What does the AI Act's preamble say about social scoring?"
    assert _sections(assistant, asked) == _sections(assistant, asked, recital_weight=1.0)


def test_a_passage_that_states_the_asked_date_ranks_up(assistant: Assistant) -> None:
    # Hundreds of passages say what applies to general-purpose AI models; Article 113 says from when.
    question = "From when do the obligations for general-purpose AI models (Chapter V) and the governance chapter apply?"
    assert "Article 113" not in _sections(assistant, question, kind_weight=1.0)[:5]
    assert _sections(assistant, question)[0] == "Article 113"
    record = assistant.ask(question)
    assert "2 August 2025" in record["answer"] and record["citations"][0]["section"] == "Article 113", record["answer"]


def test_the_passage_whose_sentence_answers_is_reranked_first(assistant: Assistant) -> None:
    # The speaker list holds Dr. Jon Truby's title on a line of its own; passages on research across
    # academic institutions fuse above it, and his line is what answers.
    question = "At which university is Dr. Jon Truby a Visiting Associate Research Professor?"
    fused = HybridRetriever(assistant.store, assistant.embed_model, assistant.settings.retrieval).retrieve(question)
    assert len(fused) == assistant.settings.retrieval.fused_top_k
    assert "National University of Singapore" not in fused[0].node.get_content()
    rerank = SentenceRerank(embed_model=assistant.embed_model, weight=assistant.settings.retrieval.rerank_weight, top_n=10)
    reranked = rerank.postprocess_nodes(fused, query_str=question)
    assert len(reranked) == 10 and "National University of Singapore" in reranked[0].node.get_content()
    assert [n.node.node_id for n in SentenceRerank(embed_model=assistant.embed_model, weight=0.0).postprocess_nodes(fused, query_str=question)] == [
        n.node.node_id for n in fused[:10]
    ]  # weight 0 keeps the fused order
    record = assistant.ask(question)
    assert record["retrieved"][0]["id"] == reranked[0].node.node_id
    assert "National University of Singapore" in record["answer"], record["answer"]


def test_a_short_line_under_a_long_title_is_read_alone_too(assistant: Assistant) -> None:
    # "With the support of: Permanent Mission of Japan to the United Nations" sits under the concept
    # note's long title; read under it, the line is mostly title and the audience paragraph won.
    record = assistant.ask("Which country's Permanent Mission to the UN supports the UNU-CPR side event?")
    assert "Japan" in record["answer"].split(" [1]")[0], record["answer"]


def test_a_scoped_question_is_also_searched_without_the_document_name(assistant: Assistant) -> None:
    question = "Which technical methods does the AI Act's preamble mention for signalling that content was produced by a machine?"
    scoped = assistant.scoped(assistant.plan(question, None, assistant.store.check_ready()), None)
    assert scoped is not None and scoped.names == ("AI Act",) and scoped.doc_ids == ("eu-ai-act-2024",)

    def first(filters: Filters) -> str:
        return HybridRetriever(assistant.store, assistant.embed_model, assistant.settings.retrieval, filters).retrieve(question)[0].node.get_content()

    # Every passage of the Act sits near "AI Act"; searched without it, "what signals machine-made
    # content" finds the recital that names watermarks.
    assert "watermarks" in first(scoped)
    assert "watermarks" not in first(replace(scoped, names=()))


def test_filters_restrict_retrieval(assistant: Assistant) -> None:
    record = assistant.ask("What do the documents say about transparency?", Filters(kinds=("recommendation",)))
    assert {r["doc_id"] for r in record["retrieved"]} == {"oecd-ai-2019"}
    dated = assistant.ask("What do the documents say about transparency?", Filters(date_to="2020"))
    assert {r["doc_id"] for r in dated["retrieved"]} == {"oecd-ai-2019"}


def test_a_passage_covers_its_issuer_and_kind_but_not_a_rare_word_it_lacks(assistant: Assistant) -> None:
    metadata = {"title": "AI and the New Frontier of Global Diplomacy", "issuer": "Modern Diplomacy (newsroom)", "kind": "article"}
    nodes = [NodeWithScore(node=TextNode(text="Shared registries let regulators compare audits.", metadata=metadata), score=1.0)]
    ranked = score_sentences("registries", nodes, assistant.embed_model)
    # "Modern Diplomacy article" is covered by who issued the passage and what kind it is.
    named = measure("What does the Modern Diplomacy article say about registries?", nodes, ranked, assistant.embed_model, assistant.store)
    assert named.features["coverage"] == 1.0 and named.uncovered == []
    # A rare word the passage lacks weighs more than a common one.
    near_miss = measure("What insurance do registries in the Modern Diplomacy article need?", nodes, ranked, assistant.embed_model, assistant.store)
    assert near_miss.uncovered[0] == "insurance" and near_miss.features["thing_unnamed"] == 1.0
    assert near_miss.features["coverage"] < 1.0 and named.features["thing_unnamed"] == 0.0


def test_a_question_in_other_words_than_the_passage_is_answered(assistant: Assistant) -> None:
    # "face database by harvesting pictures from the web" is "scraping of facial images from the
    # internet" in Article 5: 4 of the question's 11 terms appear word for word.
    text = "the untargeted scraping of facial images from the internet or CCTV footage"
    question = "Is it lawful to build a face database by harvesting pictures from the web?"
    close = closeness(question, {"face", "pictur", "web", "databas"}, text, assistant.embed_model)
    assert {t for t, c in close.items() if c >= 0.7} == {"face", "pictur", "web"}, close
    assert closeness("What share of research comes from Asia?", {"asia"}, "research in Africa", assistant.embed_model) == {"asia": 0.0}  # a name
    record = assistant.ask(question.replace("?", " and CCTV footage under the AI Act?"))
    assert "untargeted scraping of facial images" in record["answer"], record["answer"]


def test_a_how_long_question_is_answered_with_a_length_of_time(assistant: Assistant) -> None:
    record = assistant.ask("In an urgent case, how long can police use real-time remote biometric identification before requesting authorisation?")
    assert "24 hours" in record["answer"].split(" [1]")[0], record["answer"]
