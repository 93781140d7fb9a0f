"""`seedlab ui` in headless Chromium (Debian's package, driven by Playwright): fill each kind of form, watch a
validation message appear and clear, load a leaf, preview on the fake backend, commit, and refuse bad input.

Screenshots of the three forms go to $SEEDLAB_SCREENSHOTS when it is set (the README's come from there)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
from click.testing import CliRunner
from helpers import ServerThread, good_responder

from seedlab.backends import FakeBackend
from seedlab.cli import cli
from seedlab.config import Settings, load_settings
from seedlab.ui import LOOPBACK_HOSTS, create_app
from seedlab.workspace import init_workspace

TOKEN = "browser-test-token"
CHROMIUM = os.environ.get("SEEDLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium and sets SEEDLAB_REQUIRE_BROWSER=1, so there a missing browser fails instead of skipping.
if not os.environ.get("SEEDLAB_REQUIRE_BROWSER"):
    if not CHROMIUM:
        pytest.skip("no Chromium on this machine (apt-get install chromium)", allow_module_level=True)
    pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM, "Chromium is required here (SEEDLAB_REQUIRE_BROWSER is set)"
    with sync_playwright() as playwright:
        # The flags keep Chromium off the network it would otherwise call at start (this machine has none).
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        yield launched
        launched.close()


@pytest.fixture
def settings(seedlab_home: Path) -> Settings:
    init_workspace(load_settings())
    settings = load_settings()
    settings.config.eval.judge = None
    return settings


@pytest.fixture
def page(browser: Browser, settings: Settings) -> Iterator[Page]:
    app = create_app(settings, TOKEN, lambda: (FakeBackend(good_responder), None), LOOPBACK_HOSTS)
    with ServerThread(app) as url:
        context = browser.new_context(viewport={"width": 1360, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.base_url = url.removesuffix("/v1")  # type: ignore[attr-defined]
        page.goto(f"{page.base_url}/?token={TOKEN}")  # type: ignore[attr-defined]
        expect(page.locator("#where")).to_contain_text("taxonomy")
        yield page
        context.close()


def shot(page: Page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("SEEDLAB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name))  # the viewport: the form, its checks and the preview side by side


def field(page: Page, name: str) -> Any:
    return page.locator(f'[data-field="{name}"]')


def fill_common(page: Page, path: str) -> None:
    page.fill("#path", path)
    page.fill("#created_by", "ana-contributor")


def fill_skill_seeds(page: Page, grounded: bool) -> None:
    for i in range(5):
        if grounded:
            field(page, f"seed_examples[{i}].context").locator("textarea").fill(
                f"Minutes of meeting {i}: Omar will book the hall by Friday. Lee will print {i + 2} posters.")
        field(page, f"seed_examples[{i}].question").locator("textarea").fill(f"List the action items, case {i}.")
        field(page, f"seed_examples[{i}].answer").locator("textarea").fill(
            f"- Omar: book the hall (Friday)\n- Lee: print {i + 2} posters")


def commit(page: Page, settings: Settings, branch: str) -> str:
    page.fill("#branch", branch)
    page.fill("#message", f"Add a leaf on {branch}")
    page.click("#commit")
    expect(page.locator("#push-command")).to_contain_text(f"push <remote> {branch}")
    expect(page.locator("#commit-result")).to_contain_text("valid")
    repo = git.Repo(settings.taxonomy_path)
    assert repo.active_branch.name == branch and repo.heads.main.commit != repo.heads[branch].commit
    (changed,) = list(repo.heads[branch].commit.stats.files)
    result = CliRunner().invoke(cli, ["taxonomy", "validate", str(settings.taxonomy_path / str(changed))])
    assert result.exit_code == 0, result.output  # `seedlab taxonomy validate` accepts the committed file
    return str(changed)


def test_a_freeform_skill_is_written_checked_previewed_and_committed(page: Page, settings: Settings,
                                                                      tmp_path: Path) -> None:
    fill_common(page, "compositional_skills/writing/action_lists")
    page.fill("#task_description", "Turn meeting notes into a list of action items")
    fill_skill_seeds(page, grounded=False)
    expect(page.locator("#verdict")).to_contain_text("Valid")
    answer = field(page, "seed_examples[2].answer")
    answer.locator("textarea").fill("")
    expect(answer.locator(".problem")).to_contain_text("must not be empty")  # appears beside its field
    expect(page.locator("#verdict")).to_contain_text("1 error")
    answer.locator("textarea").fill("- Omar: book the hall")
    expect(answer.locator(".problem")).to_have_count(0)  # and clears when fixed
    expect(page.locator("#verdict")).to_contain_text("Valid")
    expect(page.locator("#yaml")).to_contain_text("task_description: Turn meeting notes into a list of action items")
    page.click("#preview")
    expect(page.locator("#preview-status")).to_contain_text("kept")
    expect(page.locator("#preview-list li.kept").first).to_contain_text("judge rating 3 of 3")
    shot(page, "ui-freeform.png", tmp_path)
    assert commit(page, settings, "add-action-lists") == "compositional_skills/writing/action_lists/qna.yaml"


def test_a_grounded_skill_reorders_and_removes_examples(page: Page, settings: Settings, tmp_path: Path) -> None:
    page.check('input[name="kind"][value="grounded"]')
    fill_common(page, "compositional_skills/extraction/posters")
    page.fill("#task_description", "Extract action items from meeting minutes")
    page.click("#add-seed")
    fill_skill_seeds(page, grounded=True)
    field(page, "seed_examples[5].question").locator("textarea").fill("An extra example to remove.")
    page.locator('[data-field="seed_examples[5]"] .remove').click()
    expect(page.locator("#seeds .seed")).to_have_count(5)
    first = field(page, "seed_examples[0].question").locator("textarea")
    page.locator('[data-field="seed_examples[0]"] .down').click()
    expect(first).to_have_value("List the action items, case 1.")
    expect(page.locator("#verdict")).to_contain_text("Valid")
    expect(page.locator("#yaml")).to_contain_text("context:")
    shot(page, "ui-grounded.png", tmp_path)
    rel = commit(page, settings, "add-posters")
    text = (settings.taxonomy_path / rel).read_text()
    assert text.index("case 1.") < text.index("case 0.")  # the order the contributor chose


def test_a_knowledge_leaf_takes_a_document_from_the_repository(page: Page, settings: Settings,
                                                               tmp_path: Path) -> None:
    page.check('input[name="kind"][value="knowledge"]')
    fill_common(page, "knowledge/community/seed_libraries/halvane_history")
    page.fill("#domain", "community seed libraries")
    page.fill("#document_outline", "The history of the Halvane Seed Library")
    page.select_option("#doc-pick", label="halvane-seed-library: halvane.md")
    expect(page.locator("#doc-patterns")).to_have_value("halvane.md")
    expect(page.locator("#doc-commit")).not_to_have_value("")
    for i in range(5):
        field(page, f"seed_examples[{i}].context").locator("textarea").fill(
            f"The Halvane Seed Library keeps seeds in drawer {i}. It opened in Ostrel Vey.")
        for j in range(3):
            at = f"seed_examples[{i}].questions_and_answers[{j}]"
            field(page, f"{at}.question").locator("textarea").fill(f"Question {j} about drawer {i}?")
            field(page, f"{at}.answer").locator("textarea").fill(f"Answer {j}: drawer {i}.")
    expect(page.locator("#verdict")).to_contain_text("Valid")
    page.fill("#doc-patterns", "missing.md")
    expect(field(page, "document").locator(".problem").first).to_contain_text("missing.md")
    page.select_option("#doc-pick", index=0)
    page.select_option("#doc-pick", label="halvane-seed-library: halvane.md")
    expect(page.locator("#verdict")).to_contain_text("Valid")
    page.click("#preview")
    expect(page.locator("#preview-status")).to_contain_text("kept")
    shot(page, "ui-knowledge.png", tmp_path)
    commit(page, settings, "add-halvane-history")


def test_an_existing_leaf_loads_into_the_form(page: Page, settings: Settings) -> None:
    rel = "compositional_skills/extraction/meetings/action_items/qna.yaml"
    page.select_option("#load-leaf", rel)
    page.click("#load")
    expect(page.locator('input[name="kind"][value="grounded"]')).to_be_checked()
    expect(page.locator("#path")).to_have_value("compositional_skills/extraction/meetings/action_items")
    expect(page.locator("#created_by")).to_have_value("seedlab-examples")
    expect(page.locator("#seeds .seed")).to_have_count(5)
    expect(page.locator("#verdict")).to_contain_text("Valid")


def test_bad_input_gets_a_clear_message_and_writes_nothing(page: Page, settings: Settings, browser: Browser) -> None:
    repo = git.Repo(settings.taxonomy_path)
    fill_common(page, "compositional_skills/../../outside")
    expect(field(page, "path").locator(".problem")).to_contain_text("no '..'")
    page.fill("#branch", "escape")
    page.fill("#message", "try")
    page.click("#commit")
    expect(page.locator("#commit-result")).to_contain_text("taxonomy path")
    page.check('input[name="kind"][value="knowledge"]')
    page.set_input_files("#doc-upload", {"name": "big.md", "mimeType": "text/markdown",
                                         "buffer": b"x" * (21 << 20)})
    expect(page.locator("#upload-status")).to_contain_text("MiB")
    page.set_input_files("#doc-upload", {"name": "latin.md", "mimeType": "text/markdown",
                                         "buffer": "caf\xe9 au lait".encode("latin-1")})
    expect(page.locator("#upload-status")).to_contain_text("UTF-8")
    assert [h.name for h in repo.heads] == ["main"] and not repo.is_dirty(untracked_files=True)
    assert not (settings.docs_path / "uploads").exists()
    stranger = browser.new_page()
    stranger.goto(page.base_url + "/")  # type: ignore[attr-defined]
    expect(stranger.locator("body")).to_contain_text("missing or wrong token")
    stranger.close()
