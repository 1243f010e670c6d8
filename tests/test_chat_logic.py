"""The chat's pure parts in small tables: follow-up rewriting, compare terms, rendering, exports, sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.comparison import topic_statements, topic_terms
from assistant.conversation import is_follow_up, rewrite_follow_up
from assistant.exports import answer_markdown, feedback_entry
from assistant.settings import ServeSettings
from assistant.views import answer_view, comparison_view, passage_view

ALIASES = {"unf": ["UN Foundation"], "oecd": ["OECD"], "eu": ["AI Act"]}


@pytest.mark.parametrize(
    ("question", "previous", "standalone"),
    [
        ("And what did they say about Africa?", "What did the UN Foundation meeting say about capacity building?",
         "What did the UN Foundation say about Africa?"),
        ("What about accountability?", "What does the OECD say about transparency?",
         "What does the OECD say about accountability?"),
        ("And how about SMEs?", "Which fines apply under the AI Act?", "Which fines apply under the AI Act, regarding SMEs?"),
        ("What about SMEs?", "Which fines apply to the AI Act's providers?",
         "Which fines apply to the AI Act's providers, regarding SMEs?"),  # the topic names the document: kept
        ("What are their main recommendations?", "What did the UN Foundation meeting conclude?",
         "What are the UN Foundation's main recommendations?"),
        ("And who pays them?", "What fines apply to providers?", "Who pays them (regarding providers)?"),
        ("What does the AI Act say about its scope?", "What does the OECD say about transparency?",
         "What does the AI Act say about its scope?"),  # names its own document: not a follow-up
        ("Who chaired the meeting?", "What does the OECD say?", "Who chaired the meeting?"),
        ("And what did they say about Africa?", None, "And what did they say about Africa?"),
    ],
)
def test_follow_up_rewrite(question: str, previous: str | None, standalone: str) -> None:
    assert rewrite_follow_up(question, previous, ALIASES) == standalone


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [("And Africa?", True), ("What about Africa?", True), ("Did they agree?", True), ("Who chaired the panel?", False)],
)
def test_is_follow_up(question: str, follow_up: bool) -> None:
    assert is_follow_up(question) is follow_up


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("How do these documents frame the digital divide?", ["digit", "divid"]),
        ("Compare the positions on human oversight", ["human", "oversight"]),
        ("What do the texts say about compute?", ["comput"]),
    ],
)
def test_topic_terms_drop_comparison_words(question: str, terms: list[str]) -> None:
    assert topic_terms(question) == terms


def test_topic_statements_need_every_term_and_skip_repeats() -> None:
    passages = ["The digital divide widens. Divides exist.", "The digital divide widens. Digital divides close."]
    assert topic_statements(["digit", "divid"], passages, 5) == [
        ("The digital divide widens.", 0), ("Digital divides close.", 1)]
    assert topic_statements(["digit", "divid"], passages, 1) == [("The digital divide widens.", 0)]
    assert topic_statements([], passages, 5) == []


CITATION = {"n": 1, "id": "eu:1", "doc_id": "eu", "title": "AI Act <b>", "issuer": "EU", "date": "2024-07-12",
            "section": "Article 99 > 3", "page": None, "text": "Fines of up to EUR 35 000 000 apply. See <script>x</script>"}
RECORD = {"question": "What fines?", "answer": "Fines of up to EUR 35 000 000 apply [1].", "refused": False,
          "citations": [CITATION], "retrieved": [], "unsupported": [], "notices": ["Searched only <i>AI Act</i>."],
          "index_hash": "abc"}


def test_answer_view_escapes_and_marks() -> None:
    view = answer_view({**RECORD, "answer": "Fines apply [1]. Made up [1] [unsupported].", "unsupported": ["Made up"]})
    assert "Fines apply **[1]**." in view and "Made up **[1]** ⚠️ *unsupported*." in view
    assert "&lt;i&gt;AI Act&lt;/i&gt;" in view and "*AI Act &lt;b&gt;*, EU, 2024-07-12; Article 99 &gt; 3" in view
    assert "<b>" not in view and "<i>" not in view


def test_refusal_view_lists_nearest_passages() -> None:
    refused = {**RECORD, "refused": True, "citations": [], "answer": "The indexed documents do not answer this question.",
               "retrieved": [{"rank": 1, "id": "x", "doc_id": "eu", "title": "AI Act", "section": "Article 5",
                              "text": "<script>alert(1)</script> Prohibited practices.", "score": 0.1}]}
    view = answer_view(refused)
    assert "**Nearest passages**" in view and "*AI Act*, Article 5: &lt;script&gt;" in view and "**Sources**" not in view


def test_comparison_view_marks_silent_documents() -> None:
    table = {"question": "digital divide?", "terms": ["digit", "divid"], "citations": [CITATION], "rows": [
        {"title": "A | B", "issuer": "UN", "date": "2026", "speaks": True, "statements": "Divides close [1]."},
        {"title": "C", "issuer": "unknown", "date": "", "speaks": False, "statements": ""}]}
    view = comparison_view(table)
    assert "| A \\| B | UN, 2026 | Divides close **[1]**. |" in view
    assert "| C | issuer unknown | *Says nothing on this point.* |" in view


def test_passage_view_highlights_the_passage_within_its_text() -> None:
    view = passage_view({**CITATION, "label": "[1] AI Act"}, "paragraph 2 ends here.\n\n", "\n\n4. Next paragraph", {
        "title": "AI Act", "issuer": "EU", "source": "EUR-Lex", "reuse": "with attribution"})
    assert '<div class="passage-context">… 2 ends here.\n\n<mark class="cited-span">Fines of up to' in view
    assert "&lt;script&gt;x&lt;/script&gt;</mark>\n\n4. Next …</div>" in view  # cut at a word, marked
    assert "<th>Source</th><td>EUR-Lex</td>" in view and "<script>" not in view


def test_markdown_copy_writes_footnotes_out() -> None:
    assert answer_markdown(RECORD) == (
        "Fines of up to EUR 35 000 000 apply [^1].\n\n"
        '[^1]: *AI Act <b>*, EU, 2024-07-12, Article 99 > 3. "Fines of up to EUR 35 000 000 apply. See <script>x</script>"'
    )


@pytest.mark.parametrize(
    ("liked", "refused", "evidence", "answerable"),
    [
        (True, False, ["Fines of up to EUR 35 000 000 apply."], True),
        (False, False, [], True),
        (True, True, [], False),
    ],
)
def test_feedback_entry_is_a_qa_line(liked: bool, refused: bool, evidence: list[str], answerable: bool) -> None:
    record = {**RECORD, "refused": refused, "citations": [] if refused else [CITATION]}
    entry = feedback_entry(record, liked, " why ")
    assert entry["question"] == "What fines?" and entry["evidence"] == evidence and entry["answerable"] is answerable
    assert entry["verdict"] == ("up" if liked else "down") and entry["comment"] == "why" and entry["id"].startswith("feedback-")
    assert ("reference_answer" in entry) is (liked and not refused)


@pytest.mark.parametrize(
    ("users", "file_text", "expected"),
    [
        ("ana:secret, ben:pa:ss", "", [("ana", "secret"), ("ben", "pa:ss")]),
        ("", "# staff\ncarla:pw\n\n", [("carla", "pw")]),
        ("", "", []),
    ],
)
def test_sign_in_users(users: str, file_text: str, expected: list[tuple[str, str]], tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text(file_text)
    assert ServeSettings(users=users, users_file=str(path) if file_text else "").credentials() == expected


def test_malformed_sign_in_entry_is_named() -> None:
    with pytest.raises(ValueError, match="'nopassword'"):
        ServeSettings(users="nopassword").credentials()
