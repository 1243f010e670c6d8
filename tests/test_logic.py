"""Pure logic in small tables: fusion, filters, verification, calibration, questions, settings."""

from __future__ import annotations

import pytest
from llama_index.core.schema import NodeWithScore, TextNode

from assistant.answering import cite
from assistant.calibration import WRONG_ANSWER_COST, choose_penalty, fit_model, threshold_for
from assistant.engine import QuestionError, check_question
from assistant.evidence import FEATURES, RefusalModel, missing_figures
from assistant.qa_sets import assign_splits
from assistant.questions import asked_kind, passage_states_kind, states_kind
from assistant.retrieval import Filters, fuse, named_documents
from assistant.settings import Settings
from assistant.store import KeywordIndex, keyword_tokens
from assistant.verification import UNSUPPORTED_MARK, supports, verify
from assistant.wording import normalise


def test_fuse_rewards_agreement() -> None:
    assert [i for i, _ in fuse([["a", "b", "c"], ["b", "c"]], k=60)] == ["b", "c", "a"]


@pytest.mark.parametrize(
    ("filters", "row", "allowed"),
    [
        (Filters(doc_ids=("a",)), {"doc_id": "b"}, False),
        (Filters(doc_ids=("a", "b")), {"doc_id": "b"}, True),
        (Filters(kinds=("regulation",)), {"kind": "regulation"}, True),
        (Filters(parts=("Article 5",)), {"part": None}, False),
        (Filters(date_from="2025"), {"date_key": 20240613}, False),
        (Filters(date_from="2024-06"), {"date_key": 20240613}, True),
        (Filters(date_to="2024"), {"date_key": 20241231}, True),
        (Filters(date_to="2024-06"), {"date_key": 20240701}, False),
        (Filters(date_to="2024-06"), {"date_key": None}, True),  # an undated document counts as day 0
    ],
)
def test_filters_select_keyword_rows(filters: Filters, row: dict[str, object], allowed: bool) -> None:
    index = KeywordIndex.from_rows(None, [{"id": "first"}, {"id": "row", **row}])
    keep = filters.select(index.columns)
    assert keep is not None and keep.tolist()[1] is allowed


def test_no_filter_selects_every_row_without_a_mask() -> None:
    assert Filters().select(KeywordIndex.from_rows(None, [{"id": "x", "doc_id": "a"}]).columns) is None


@pytest.mark.parametrize(
    ("sentence", "passage", "ok"),
    [
        ("Fines reach EUR 35 000 000.", "fines of up to EUR 35 000 000", True),
        ("Fines reach EUR 36 000 000.", "fines of up to EUR 35 000 000", False),
        ("The panel meets in Geneva every spring.", "The panel provides evidence.", False),
        ("The panel provides shared evidence.", "The panel is to provide a shared, evidence-based foundation.", True),
    ],
)
def test_supports(sentence: str, passage: str, ok: bool) -> None:
    assert supports(sentence, passage) is ok


def test_verify_flags_planted_sentence_and_strips_foreign_markers() -> None:
    passages = {1: "Only around 2% of global AI research currently originates in Africa."}
    result = verify(
        "Only around 2% of AI research originates in Africa [1]. Africa hosts 40% of AI research [1]. Also [9].",
        passages,
    )
    assert result.unsupported == ["Africa hosts 40% of AI research.", "Also."]
    assert "[9]" not in result.text
    assert result.text.count(UNSUPPORTED_MARK) == 2
    assert result.cited == [1]


def test_verify_accepts_markers_after_the_full_stop() -> None:
    assert verify("Fines reach EUR 35 000 000. [1]", {1: "fines of EUR 35 000 000"}).unsupported == []


def test_a_quoted_sentence_keeps_its_marker() -> None:
    # An amending article quotes a title that ends ".';": the extractive answer cites it as "...' [1]."
    passage = "the Artificial Intelligence Act (OJ L, 2024/1689, 12.7.2024).';"
    checked = verify(cite(passage, 1), {1: passage})
    assert checked.unsupported == [] and checked.text.endswith("[1].")


def test_thresholds_follow_the_costs_of_the_two_errors() -> None:
    assert threshold_for(WRONG_ANSWER_COST) == 0.6667 and threshold_for(1.0) == 0.5 and threshold_for(3.0) == 0.75


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\x00\x01"])
def test_empty_questions_are_refused(question: str) -> None:
    with pytest.raises(QuestionError, match="empty"):
        check_question(question, 2000)


def test_overlong_question_is_refused() -> None:
    with pytest.raises(QuestionError, match="limit is 2,000"):
        check_question("why " * 600, 2000)


def test_index_hash_follows_shaping_settings_only() -> None:
    base = Settings()
    assert Settings(retrieval={"top_n": 7}).index_hash() == base.index_hash()
    assert Settings(chunking={"max_tokens": 128}).index_hash() != base.index_hash()


def test_unknown_setting_fails_loudly() -> None:
    with pytest.raises(ValueError):
        Settings(answer={"refusal_treshold": 0.3})


ALIASES = {"oecd": ["OECD"], "eu": ["AI Act", "Regulation (EU) 2024/1689"], "cpa": ["CPA"], "unf": ["UN Foundation"]}


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("What does the OECD recommend on transparency?", ("oecd",)),
        ("Which fines does the EU AI Act set?", ("eu",)),
        ("Is Regulation (EU) 2024/1689 in force?", ("eu",)),
        ("Compare the UN Foundation summary with the CPA note.", ("cpa", "unf")),
        ("Who spoke about the cpa?", ()),  # an acronym must be in capitals
        ("What does the OECDX report say?", ()),
        ("What is transparency?", ()),
    ],
)
def test_named_documents(question: str, named: tuple[str, ...]) -> None:
    assert set(named_documents(question, ALIASES)) == set(named)


def _passage(text: str, section: str = "") -> NodeWithScore:
    return NodeWithScore(node=TextNode(text=text, metadata={"section": section}))


@pytest.mark.parametrize(
    ("question", "passage", "missing"),
    [
        ("Who chaired the Board in 2025?", "The Board was established in 2024.", ["2025"]),
        ("What does Article 99(3) say?", "Fines of EUR 35 000 000 apply.", []),  # the section is part of the passage
        ("What does Article 98 say?", "Fines of EUR 35 000 000 apply.", ["98"]),
        ("Do fines reach EUR 35,000,000?", "Fines of EUR 35 000 000 apply.", []),  # any thousands separator
        ("Do fines reach thirty-five million euros?", "Fines of EUR 35 000 000 apply.", []),  # or in words
        ("What share of research comes from Asia?", "2% of research comes from Africa.", []),  # a name is the model's
    ],
)
def test_missing_figures(question: str, passage: str, missing: list[str]) -> None:
    assert missing_figures(question, [_passage(passage, "Article 99 > 3")]) == missing


@pytest.mark.parametrize(
    ("question_side", "document_side", "shared"),
    [
        ("the Korean ambassador", "the Republic of Korea", "korea"),
        ("British diplomats", "the United Kingdom", "kingdom"),
        ("harmonisation of rules", "harmonization of rules", "harmon"),
        ("a licence", "a license", "licens"),
        ("EUR 7,500,000", "EUR 7 500 000", "7500000"),
        ("seven per cent", "7 per cent", "7"),
    ],
)
def test_wordings_meet_in_one_spelling(question_side: str, document_side: str, shared: str) -> None:
    assert shared in set(keyword_tokens(question_side)) & set(keyword_tokens(document_side)), normalise(question_side)


def _rows(coverages: list[float]) -> list[dict[str, float]]:
    return [dict.fromkeys(FEATURES, 0.5) | {"coverage": c} for c in coverages]


def test_refusal_model_is_fitted_and_thresholded_on_what_it_is_given() -> None:
    covered = [0.9, 0.8, 0.85, 0.95, 0.7, 0.75]
    lacking = [0.1, 0.2, 0.3, 0.15]
    items = [{"id": f"a{i}", "answerable": True, "tags": [f"doc{i % 2}"]} for i in range(6)]
    items += [{"id": f"u{i}", "answerable": False, "tags": [f"doc{i % 2}"]} for i in range(4)]
    records = [{"evidence": {"features": row, "missing": []}} for row in _rows(covered + lacking)]
    model = fit_model(items, records, {"split": "dev"})
    assert model.weights["coverage"] > 0 and model.threshold == threshold_for(WRONG_ANSWER_COST)
    answerable = [model.probability(r["evidence"]["features"]) for r in records[:6]]
    assert min(answerable) > max(model.probability(r["evidence"]["features"]) for r in records[6:])
    assert model.calibration["answerable"] == 6 and model.calibration["split"] == "dev"
    assert model.calibration["refused_if_unanswerable"] == 1.0
    assert model.calibration["answered_if_answerable"] == round(sum(p >= model.threshold for p in answerable) / 6, 4)
    # A question with a figure no passage holds counts as refused, whatever its features.
    records[0]["evidence"]["missing"] = ["2031"]
    assert fit_model(items, records, {}).calibration["answered_if_answerable"] < 1.0


def test_the_penalty_is_chosen_on_documents_left_out() -> None:
    rows, labels = _rows([0.9, 0.8, 0.2, 0.1, 0.85, 0.15]), [True, True, False, False, True, False]
    assert choose_penalty(rows, labels, ["a", "a", "a", "b", "b", "b"]) in (1.0, 0.3, 0.1, 0.03, 0.01)


def test_the_bundled_refusal_model_reads_every_feature() -> None:
    model = RefusalModel.load()
    assert set(model.weights) == set(FEATURES) and 0 < model.threshold < 1
    assert model.calibration["split"] == "dev"


def test_splits_are_stratified_and_rewordings_follow_their_original() -> None:
    items = [{"id": f"d{i}", "tags": ["eu", "date"]} for i in range(10)] + [{"id": f"n{i}", "tags": ["oecd", "name"]} for i in range(10)]
    items += [{"id": "d0-p1", "paraphrase_of": "d0"}, {"id": "kept", "tags": ["eu"], "split": "test"}]
    split = {item["id"]: item["split"] for item in assign_splits(items)}
    assert [split[f"d{i}"] for i in range(10)].count("test") == 3 == [split[f"n{i}"] for i in range(10)].count("test")
    assert split["d0-p1"] == split["d0"] and split["kept"] == "test"


@pytest.mark.parametrize(
    ("question", "sentence", "kind", "states"),
    [
        ("When does the Act apply?", "It applies from 2 August 2026.", "date", True),
        ("When does the Act apply?", "It applies to providers.", "date", False),
        ("What must deployers do when publishing deep fakes?", "They must disclose it.", None, False),
        ("At what time does the event start?", "Doors open at 13:30.", "date", True),
        ("On what date is the module held?", "09:30 – 11:00 Welcome and framing", "date", False),  # a time, no date
        ("When was the Act adopted?", "It amends Regulation (EU) 2018/858.", "date", False),  # a reference number
        ("When must it be reported?", "Within 15 days of becoming aware of it.", "date", True),
        ("When does it apply?", "On the twentieth day following its publication.", "date", True),
        ("When was the meeting held?", "It reflected on the year ahead.", "date", False),
        ("When does it apply?", "It may apply to providers.", "date", False),
        ("How many experts sit on the panel?", "The panel was created in 2025.", "quantity", False),
        ("How many experts sit on the panel?", "Forty experts sit on it.", "quantity", True),
        ("How much does AI add by 2030?", "USD 15.7 trillion by 2030.", "quantity", True),
        ("How much does AI add by 2030?", "A great deal by 2030.", "quantity", False),
        ("How many came?", "Date and time: 13:30 - 14:45, 5 May 2026, at the 11th Forum.", "quantity", False),
        ("How many came?", "Venue: One Dag Hammarskjöld Plaza, 885 2nd Avenue.", "quantity", False),
        ("How many are there?", "The tasks in paragraph 3 of Article 68(1).", "quantity", False),
        ("How many experts sit on the panel?", "The two mechanisms were discussed.", "quantity", False),
        ("How many ethical principles?", "It has seven non-binding ethical principles.", "quantity", True),
        ("How much can fines reach?", "Fines of up to €35 000 000 apply.", "quantity", True),
        ("How much did Meta invest?", "AI could add USD 15.7 trillion to the economy.", "quantity", False),  # not an investment
        ("How much did Meta invest?", "Investment firms (OJ L 176, 27.6.2013, p. 1).", "quantity", False),  # a reference
        ("From when does it apply?", "Keep it for a period of 10 years.", "date", False),  # a length of time
        ("How long must logs be kept?", "Keep them for at least six months.", "duration", True),
        ("For how long must the records be kept?", "Keep them until the system is withdrawn.", "duration", False),
        ("How long is the term of office?", "The term of office is two years.", "duration", True),
        ("Where did the meeting take place?", "United Nations Foundation NY Office, 320 E 43rd Street", "place", True),
        ("Where did the meeting take place?", "The meeting convened diplomats and experts.", "place", False),
        ("Where must providers register the system?", "In the EU database.", None, False),
        ("When is a system not considered high-risk?", "Where it performs a narrow procedural task.", None, False),
        ("Who moderates the panel?", "[Moderator] Yu Ping: Head of Digital Partnerships", "name", True),
        ("Which countries have joined the registry?", "Registries let regulators share findings.", "name", False),
        ("Which countries have joined the registry?", "Common standards: Aligning audit rules.", "name", False),
        ("What are the names of the Co-Chairs?", "The Co-Chairs will present a roadmap.", "name", False),
        ("Who will chair the Global Dialogue?", "The Scientific Panel and the Global Dialogue were launched.", "name", False),
        ("Who will chair the Global Dialogue?", "The Global Dialogue is chaired by Ambassador Lokaale.", "name", True),
        ("Who is Kenya's Permanent Representative?", "H.E. Ekitela Lokaale, Permanent Representative of Kenya", "name", True),
        ("Which service provider is named in the article?", "Programmes run by service providers such as Mesothelioma Hope", "name", True),
        ("Which service provider is named in the article?", "Service providers run health programmes.", "name", False),
    ],
)
def test_asked_kind_and_sentences_that_state_it(question: str, sentence: str, kind: str | None, states: bool) -> None:
    assert asked_kind(question) == kind
    assert states_kind(sentence, kind, question) is states


def test_a_passage_states_the_kind_beside_what_the_question_says() -> None:
    question = "When do the obligations for general-purpose AI models apply?"
    assert passage_states_kind("Adopted on 13 June 2024. These obligations apply from 2 August 2025.", "date", question)
    assert not passage_states_kind("Adopted on 13 June 2024. It has 113 articles. The obligations are listed in them.", "date", question)
    # A question that says nothing but names takes a date anywhere.
    assert passage_states_kind("Tuesday, 10 February 2026", "date", "When is UN80?")


