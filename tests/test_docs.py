"""The README and docs/ are tested like code: links resolve, commands exist, the settings table is
the code's, and the pictures are the current app's.

`make screenshots` runs the browser test below with ASSISTANT_SCREENSHOTS=docs/images, so the
pictures in README.md and docs/ are taken from the app as it is; in `make test` they go to the
test's temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page

from assistant import Assistant
from assistant.__main__ import main as cli
from assistant.settings import settings_table
from tests import test_serving
from tests.conftest import ROOT

# The browser and the server, shared with the serving tests (re-bound here, so pytest finds them).
browser = test_serving.browser
serve = test_serving.serve

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "evals" / "README.md",
         ROOT / "benchmarks" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not followed offline
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading '{anchor}'")
    assert not broken, broken


def test_anchors_are_made_as_github_makes_them() -> None:
    assert slug("Evidence: answer or refuse") == "evidence-answer-or-refuse"
    assert slug("The `ask --json` record") == "the-ask---json-record"


def test_readme_is_a_short_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) < 8000
    assert "make run" in readme and "make test" in readme
    assert re.search(r"!\[[^\]]+\]\(docs/images/\w+\.png\)", readme)  # a picture of the chat
    sections = re.findall(r"^## (.+)$", readme, re.MULTILINE)
    assert {"Ask and check sources", "Evaluate a QA set", "Serve to others"} <= set(sections)


def test_make_targets_named_in_the_docs_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))
    named = {t for page in PAGES for t in re.findall(r"`make ([a-z][\w-]*)`", page.read_text(encoding="utf-8"))}
    assert named and named <= targets, named - targets


def test_commands_named_in_the_docs_exist(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli(["--help"])
    commands = set(re.search(r"\{([\w,-]+)\}", capsys.readouterr().out)[1].split(","))  # type: ignore[index]
    named = {c for page in PAGES for c in re.findall(r"python -m assistant ([a-z][\w-]*)", page.read_text(encoding="utf-8"))}
    assert named and named <= commands, named - commands


def test_settings_table_matches_the_code() -> None:
    """docs/settings.md holds exactly what `python -m assistant settings` prints: paste it there after a change."""
    assert settings_table() in (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")


def test_pictures_named_in_the_docs_are_the_ones_the_browser_test_takes() -> None:
    named = {Path(t).name for page in PAGES for t in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", page.read_text(encoding="utf-8"))}
    assert named == {f"{name}.png" for name in SHOTS}


SHOTS = ("ask", "sources", "briefing", "evaluate")
SAMPLE = 8  # questions of the shipped set's test split in the Evaluate picture: enough for its charts, quick


def shoot(page: Page, folder: Path, name: str, full_page: bool = False) -> None:
    """The page as a 256-colour PNG (a fraction of the size, no visible loss on a user interface)."""
    shot = page.screenshot(full_page=full_page)
    picture = Image.open(io.BytesIO(shot)).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    picture.save(folder / f"{name}.png", optimize=True)


def ask(page: Page, question: str) -> None:
    """Ask, wait for the answer, then show it from the question down (the chat scrolls to its end)."""
    test_serving.ask_in_page(page, question)
    page.locator("#chat .message.bot").last.get_by_text("Sources").wait_for()
    page.wait_for_timeout(1000)  # the chat's own scroll to the end, done before ours
    page.locator("#chat .message.user").last.evaluate("m => { const y = window.scrollY; m.scrollIntoView(); window.scrollTo(0, y); }")


def test_screenshots_of_asking_checking_a_source_a_briefing_and_an_evaluation(
    assistant: Assistant, serve: Callable[[Assistant], str], browser: Browser,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = Path(os.environ.get("ASSISTANT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(assistant.settings.serve, "uploads", True)  # the Evaluate picture runs a small set
    url = serve(assistant)

    def fresh() -> Page:
        page = browser.new_page(viewport={"width": 1200, "height": 860})
        page.goto(url)
        page.locator("#status .status-ready").wait_for()  # the status light is CSS, not an emoji
        return page

    page = fresh()
    ask(page, "What fines apply to prohibited AI practices under the EU AI Act?")
    answer = page.locator("#chat .message.bot").last
    assert "35 000 000" in answer.inner_text() and "(Article 99 > 3)" in answer.inner_text()
    page.locator("#sources label").filter(has_text="[1]").click()
    page.locator("#passage mark.cited-span").wait_for()
    shoot(page, folder, "ask")

    page = fresh()
    ask(page, "What does the OECD Recommendation say about transparency and explainability?")
    page.locator("#sources label").filter(has_text="[1]").click()
    passage = page.locator("#passage")
    passage.locator("mark.cited-span").wait_for()
    assert passage.locator(".passage-context :is(h1, h2, h3, h4, h5, h6)").count() >= 1 and "###" not in passage.inner_text()
    passage.locator("mark.cited-span").evaluate("mark => mark.scrollIntoView({block: 'nearest'})")
    shoot(page, folder, "sources")

    page = fresh()
    ask(page, "What do the documents say about the digital divide?")
    answer = page.locator("#chat .message.bot").last
    assert "Briefing across" in answer.inner_text()
    shoot(page, folder, "briefing")

    page = fresh()
    lines = (ROOT / "evals" / "governance_qa.jsonl").read_text(encoding="utf-8").splitlines()
    originals = [line for line in lines if '"split": "test"' in line and "paraphrase_of" not in json.loads(line)]
    sample = tmp_path / "sample_qa.jsonl"
    sample.write_text("\n".join(originals[::len(originals) // SAMPLE][:SAMPLE]) + "\n", encoding="utf-8")
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#qa-file input[type=file]").set_input_files(sample)
    page.locator("#run-eval").click()
    page.locator("#eval-summary").get_by_text(f"{SAMPLE} questions").wait_for(timeout=300_000)
    page.locator("img[src*='hit_at_k']").first.wait_for()
    shoot(page, folder, "evaluate", full_page=True)

    for name in SHOTS:
        with Image.open(folder / f"{name}.png") as picture:
            assert picture.width == 1200
