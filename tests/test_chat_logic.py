"""The chat's pure parts in small tables: follow-up rewriting, compare terms, rendering, exports, sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.briefing import diverse
from assistant.conversation import is_follow_up, rewrite_follow_up
from assistant.exports import answer_markdown, feedback_entry
from assistant.reranking import Candidate
from assistant.settings import ServeSettings
from assistant.views import answer_view, markdown_excerpt, markdown_html, passage_view


@pytest.mark.parametrize(
    ("question", "previous", "standalone"),
    [
        ("And what did they say about Africa?", "What did the UN Foundation meeting say about capacity building?",
         "What did they say about Africa? (following: What did the UN Foundation meeting say about capacity building?)"),
        ("What about accountability?", "What does the OECD say about transparency?",
         "What does the OECD say about accountability?"),
        ("And how about SMEs?", "Which fines apply under the AI Act?",
         "How about SMEs? (following: Which fines apply under the AI Act?)"),  # no topic to replace
        ("Which article?", "Must deployers train their staff? (following: Does the AI Act cover staff?)",
         "Which article? (following: Must deployers train their staff?)"),  # one earlier question, not a chain
        ("What does the AI Act say about its scope?", "What does the OECD say about transparency?",
         "What does the AI Act say about its scope? (following: What does the OECD say about transparency?)"),
        ("Who chaired the meeting of the Global Dialogue?", "What does the OECD say?", "Who chaired the meeting of the Global Dialogue?"),
        ("And what did they say about Africa?", None, "And what did they say about Africa?"),
    ],
)
def test_follow_up_rewrite(question: str, previous: str | None, standalone: str) -> None:
    assert rewrite_follow_up(question, previous) == standalone


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [("And Africa?", True), ("What about Africa?", True), ("Did they agree?", True), ("Which article?", True),
     ("Who chaired the panel of the Global Dialogue?", False)],
)
def test_is_follow_up(question: str, follow_up: bool) -> None:
    assert is_follow_up(question) is follow_up


CITATION = {"n": 1, "id": "eu:1", "doc_id": "eu", "title": "AI Act <b>", "issuer": "EU", "date": "2024-07-12",
            "section": "Article 99 > 3", "page": None, "text": "Fines of up to EUR 35 000 000 apply. See <script>x</script>"}
RECORD = {"question": "What fines?", "answer": "Fines of up to EUR 35 000 000 apply [1].", "refused": False,
          "citations": [CITATION], "retrieved": [], "unsupported": [], "notices": ["Searched only <i>AI Act</i>."],
          "index_hash": "abc"}


def test_a_briefing_quotes_sentences_that_do_not_restate_one_another() -> None:
    ranked = [Candidate(0, "The digital divide widens between regions.", 1.0, 0.9),
              Candidate(0, "The digital divide widens between the regions.", 0.95, 0.9),
              Candidate(1, "Skills programmes close it.", 0.9, 0.8), Candidate(1, "Unrelated.", 0.5, 0.2)]
    assert diverse(ranked, 3) == ["The digital divide widens between regions.", "Skills programmes close it."]
    assert diverse(ranked, 1) == ["The digital divide widens between regions."]


def test_answer_view_escapes_and_marks() -> None:
    view = answer_view({**RECORD, "answer": "Fines apply [1]. Made up [1] [unsupported].", "unsupported": ["Made up"]})
    assert "Fines apply **[1]** *(Article 99 &gt; 3)*." in view  # each quoted sentence says where it is
    assert "Made up **[1]** *(Article 99 &gt; 3)* *(unsupported)*." in view
    assert "&lt;i&gt;AI Act&lt;/i&gt;" in view and "*AI Act &lt;b&gt;*, EU, 2024-07-12; Article 99 &gt; 3" in view
    assert "<b>" not in view and "<i>" not in view


def test_refusal_view_lists_nearest_passages() -> None:
    refused = {**RECORD, "refused": True, "citations": [], "answer": "The indexed documents do not answer this question.",
               "retrieved": [{"rank": 1, "id": "x", "doc_id": "eu", "title": "AI Act", "section": "Article 5",
                              "text": "<script>alert(1)</script> Prohibited practices.", "score": 0.1}]}
    view = answer_view(refused)
    assert "**Nearest passages**" in view and "*AI Act*, Article 5\n> &lt;script&gt;" in view and "**Sources**" not in view


@pytest.mark.parametrize(
    ("text", "excerpt"),
    [
        ("### Process Design - Phase 1\n\nThe panel meets twice.", "**Process Design - Phase 1**\n\nThe panel meets twice."),
        ("- one\n- two <b>", "- one\n- two &lt;b&gt;"),
        ("| a | b |\n| --- | --- |\n| " + "cell " * 80 + "|", "| a | b |\n| --- | --- |\n\n…"),  # a row is never cut
        ("Intro.\n\n" + "word " * 80, "Intro.\n\n" + "word " * 54 + "…"),  # a long line is cut at a word
        ("See ![tracker](http://x/p.png).", "See !\\[tracker](http://x/p.png)."),  # no image is fetched
    ],
)
def test_nearest_passage_excerpt_is_markdown(text: str, excerpt: str) -> None:
    assert markdown_excerpt(text) == excerpt


def test_passage_markdown_renders_structure_but_no_html() -> None:
    shown = markdown_html("### 2.3. Shaping an enabling policy environment\n\n- a <img src=x onerror=alert(1)>\n\n"
                          "| kind | date |\n| --- | --- |\n| note | 2026 |\n\n<script>alert(1)</script> ![x](http://x)")
    assert "<h3>2.3. Shaping an enabling policy environment</h3>" in shown and "<li>a &lt;img src=x" in shown
    assert "<td>note</td>" in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "<img" not in shown and "<script" not in shown and "###" not in shown


def test_comparison_table_marks_silent_documents() -> None:
    record = {**RECORD, "plan": {"shape": "comparison", "reason": "names 2 documents"}, "silent": ["C"], "groups": [
        {"title": "A | B", "issuer": "UN", "date": "2026", "sentences": [{"n": 1, "text": "Divides close [1].", "section": "Art 2"}]}]}
    view = answer_view(record)
    assert view.startswith("*Comparison of 2 documents (names 2 documents)*")
    assert "| A \\| B | UN, 2026 | Divides close **[1]**. *(Art 2)* |" in view
    assert "| C |  | *Says nothing on this point.* |" in view


def test_passage_view_highlights_the_passage_within_its_text() -> None:
    view = passage_view({**CITATION, "label": "[1] AI Act"}, "paragraph 2 ends here.\n\n", "\n\n4. Next paragraph", {
        "title": "AI Act", "issuer": "EU", "source": "EUR-Lex", "reuse": "with attribution"})
    assert '<div class="passage-context"><p>… 2 ends here.</p>\n<mark class="cited-span"><p>Fines of up to' in view
    assert "&lt;script&gt;x&lt;/script&gt;</p>\n</mark><ol start=\"4\">\n<li>Next …</li>" in view  # cut at a word, marked
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
