"""The review workbench in headless Chromium against the real app: log in, label tokens
selected with the mouse by key, accept with Enter, reload (the edit is there), undo after
the reload, flag and filter, two browser contexts on one item (no silent loss), and an
annotator who cannot open the admin pages. Screenshots go to artifacts/ (git-ignored)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

from db import items as db_items
from db import projects
from db import users as db_users
from services.app_runner import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, running_app, wait_for_app

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "artifacts"
EDITOR = '[data-testid="span-editor"]'
# The editor lives in a shadow root; these read its state attributes.
_ROOT = (
    "[...document.querySelectorAll('[data-testid=stBidiComponentIsolated]')]"
    ".map((h) => h.shadowRoot && h.shadowRoot.querySelector('.lb-editor')).find(Boolean)"
)


def seed(data_dir: Path, users: dict[str, str] | None = None) -> None:
    """A project of three items (and user accounts) in the app's database."""
    from core.auth import hash_password
    from core.data import Item, Link, Sentence, make_span
    from db.engine import dispose_engine, init_db, session_scope

    url = f"sqlite:///{data_dir / 'labelbridge.db'}"
    init_db(url)
    batch = []
    for i, (name, place, conf) in enumerate([("Anna", "Berlin", 0.3), ("Berta", "Paris", 0.6), ("Carla", "Rome", 0.9)]):
        src = Sentence.from_words([name, "Weber", "lives", "in", place, "."], "en")
        tgt = Sentence.from_words([name, "Weber", "vive", "en", place, "."], "es")
        batch.append(
            Item(f"s{i}", src, [make_span(src, 0, 2, "PER"), make_span(src, 4, 5, "LOC")], tgt,
                 [make_span(tgt, 0, 2, "PER", "projection:heuristic", conf)], alignment=[Link(k, k) for k in range(6)])
        )  # fmt: skip
    with session_scope(url) as s:
        pid = projects.create_project(s, "Browser review", "en", "es", ["PER", "ORG", "LOC", "MISC"]).id
        db_items.import_items(s, pid, batch, data_dir / "media", target_span_source=None)
        for name, role in (users or {}).items():
            db_users.create_user(s, name, role, hash_password(f"{name}-password"))
    dispose_engine(url)


@pytest.fixture()
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def new_page(browser):  # noqa: ANN001, ANN201
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(30_000)
    return page


def editor_state(page, key: str) -> str:  # noqa: ANN001
    return page.evaluate(f"() => {_ROOT}.dataset.{key}")


def settled(page, condition: str = "true") -> None:  # noqa: ANN001
    """Wait until the editor has no change on its way and ``condition`` (on ``e``) holds."""
    page.wait_for_function(f"() => {{ const e = {_ROOT}; return !!e && e.dataset.busy === '0' && ({condition}); }}")


def target_text(page) -> str:  # noqa: ANN001
    return page.locator(EDITOR).locator('.tokens[data-side="target"]').inner_text()


def log_in(page, url: str, name: str) -> None:  # noqa: ANN001
    page.goto(url)
    page.get_by_text("Log in to LabelBridge").wait_for()
    wait_for_app(page)
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(f"{name}-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text(f"Logged in as {name}").wait_for()
    wait_for_app(page)
    # the session cookie (a reload stays logged in) is set by the server, HttpOnly: no page
    # script can read it
    deadline = time.monotonic() + 20
    while not [c for c in page.context.cookies() if c["name"] == "labelbridge_session"] and time.monotonic() < deadline:
        time.sleep(0.1)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "labelbridge_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("() => document.cookie").find("labelbridge_session") == -1


def test_annotator_labels_accepts_reloads_undoes_and_flags(browser, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LABELBRIDGE_AUTH", "on")
    data = tmp_path / "data"
    data.mkdir()
    seed(data, {"ann": "annotator", "root": "admin"})
    with running_app(data) as url:
        page = new_page(browser)
        log_in(page, url, "ann")

        # An annotator's navigation has no admin pages, and their URLs do not open them.
        for path in ("projects", "users"):
            page.goto(f"{url}/{path}")
            wait_for_app(page)
            page.locator(EDITOR).wait_for()
            assert page.locator('[data-testid="stMain"] h1').first.inner_text() == "Review"
            assert page.get_by_text("Import items").count() == 0 and page.get_by_text("Add a user").count() == 0
            # Streamlit's own "page not found" notice is shown by its frontend and may be closed by
            # the rerun the editor triggers before we read it; where it is still up it says so.
            notices = page.locator('[data-testid="stDialog"]').all_inner_texts()
            assert all("not found" in text.lower() for text in notices), notices
        page.goto(f"{url}/review")
        wait_for_app(page)

        editor = page.locator(EDITOR)
        editor.wait_for()
        first = editor_state(page, "item")
        assert "Anna" in target_text(page)  # lowest confidence first
        head = editor_state(page, "head")
        # select "vive en" with the mouse (drag) and give it label 4 (MISC) with the key
        editor.locator('.tok[data-side="target"][data-i="2"]').hover()
        page.mouse.down()
        editor.locator('.tok[data-side="target"][data-i="3"]').hover()
        page.mouse.up()
        page.keyboard.press("4")
        settled(page, f"e.dataset.head !== '{head}'")
        assert "saved" in editor.locator(".mark").inner_text()
        assert "vive enMISC" in target_text(page).replace("\n", "")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-workbench.png"), full_page=True)

        page.keyboard.press("Enter")  # accept all and go to the next item
        settled(page, f"e.dataset.item !== '{first}'")
        assert "Berta" in target_text(page)

        page.goto(f"{url}/review?item={first}")  # a reload: still logged in, the edit is there
        wait_for_app(page)
        editor.wait_for()
        settled(page, f"e.dataset.item === '{first}'")
        assert "vive enMISC" in target_text(page).replace("\n", "")
        assert editor.locator(".status").inner_text() == "reviewed"

        head = editor_state(page, "head")
        page.keyboard.press("z")  # undo after the reload: back to before "accept"
        settled(page, f"e.dataset.head !== '{head}'")
        head = editor_state(page, "head")
        page.keyboard.press("z")  # and before the label
        settled(page, f"e.dataset.head !== '{head}'")
        assert "MISC" not in target_text(page)
        page.reload()
        wait_for_app(page)
        settled(page, f"e.dataset.item === '{first}'")
        assert "MISC" not in target_text(page)

        # Flag with a comment, then filter the queue by status "flagged".
        page.keyboard.press("f")
        box = editor.locator(".flagbox input")
        box.fill("the name is misspelled")
        box.press("Enter")
        settled(page, f"e.dataset.item !== '{first}'")
        statuses = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').first
        statuses.locator("input").click()
        page.keyboard.press("Backspace")  # drop "new"
        page.keyboard.type("flagged")
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        wait_for_app(page)
        settled(page, f"e.dataset.item === '{first}'")
        page.get_by_text("You flagged this item: the name is misspelled").wait_for()
        page.screenshot(path=str(ARTIFACTS / "review-workbench-flagged.png"), full_page=True)


def test_two_browsers_on_one_item_lose_nothing(browser, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("LABELBRIDGE_AUTH", raising=False)  # single-user mode: both are "reviewer"
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    with running_app(data) as url:
        one, two = new_page(browser), new_page(browser)
        for page in (one, two):
            page.goto(f"{url}/review")
            wait_for_app(page)
            page.locator(EDITOR).wait_for()
        item = editor_state(one, "item")
        assert editor_state(two, "item") == item

        head = editor_state(one, "head")
        one.locator(EDITOR).locator('.tok[data-side="target"][data-i="4"]').click()
        one.keyboard.press("3")  # LOC on "Berlin"
        settled(one, f"e.dataset.head !== '{head}'")

        two.locator(EDITOR).locator('.tok[data-side="target"][data-i="2"]').click()
        two.keyboard.press("4")  # MISC on "vive", from a stale version
        settled(two)
        two.get_by_text("Your last change was not saved").wait_for()
        assert "changed since you loaded it" in two.locator(EDITOR).locator(".msg").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        two.screenshot(path=str(ARTIFACTS / "review-conflict.png"), full_page=True)
        two.get_by_role("button", name="Apply my change on top of it").click()
        wait_for_app(two)
        settled(two, "e.querySelector('.tokens[data-side=\"target\"]').innerText.includes('MISC')")
        both = target_text(two).replace("\n", "")
        assert "BerlinLOC" in both and "viveMISC" in both

        one.reload()
        wait_for_app(one)
        settled(one, f"e.dataset.item === '{item}'")
        both = target_text(one).replace("\n", "")
        assert "BerlinLOC" in both and "viveMISC" in both
