"""The editor's keyboard and its saves in headless Chromium, as a person presses the keys:
after many edits and accepts one key press still acts once; the next item shows at once
from the browser's queue; a save whose request is lost is retried and stored once; an edit
survives a reload; a stale relabel can be applied from the conflict panel."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_review_browser import _ROOT, EDITOR, browser, editor_state, new_page, settled, target_text  # noqa: F401 (browser: a fixture)

from services.app_runner import running_app, wait_for_app

pytestmark = pytest.mark.browser

NAMES = ["Anna", "Berta", "Carla", "Dora", "Emil", "Frida", "Gustav", "Hanna", "Ida", "Jonas", "Karl", "Lena", "Mila", "Nora", "Otto"]


def seed(data_dir: Path, n: int = len(NAMES)) -> tuple[str, list[int]]:
    from core.data import Item, Link, Sentence, make_span
    from db.engine import dispose_engine, init_db, session_scope
    from db.items import import_items, item_ids
    from db.projects import create_project

    url = f"sqlite:///{data_dir / 'labelbridge.db'}"
    init_db(url)
    batch = []
    for i, name in enumerate(NAMES[:n]):
        src = Sentence.from_words([name, "Weber", "lives", "in", "Berlin", "."], "en")
        tgt = Sentence.from_words([name, "Weber", "vive", "en", "Berlín", "."], "es")
        batch.append(Item(f"s{i:02d}", src, [make_span(src, 0, 2, "PER"), make_span(src, 4, 5, "LOC")], tgt,
                          [make_span(tgt, 0, 2, "PER", "projection:heuristic", round(0.3 + 0.01 * i, 2))], alignment=[Link(k, k) for k in range(6)]))  # fmt: skip
    with session_scope(url) as s:
        pid = create_project(s, "Keys", "en", "es", ["PER", "ORG", "LOC", "MISC"]).id
        import_items(s, pid, batch, data_dir / "media", target_span_source=None)
        ids = item_ids(s, pid)
    dispose_engine(url)
    return url, ids


def history(url: str, item_id: int) -> list[tuple[str, str | None]]:
    from db.edits import history as edit_history
    from db.engine import dispose_engine, session_scope

    try:
        with session_scope(url) as s:
            return [(e.action, e.comment) for e in edit_history(s, item_id)]
    finally:
        dispose_engine(url)


def open_review(page, url: str) -> None:  # noqa: ANN001
    page.goto(f"{url}/review")
    wait_for_app(page)
    page.locator(EDITOR).wait_for()
    settled(page)


def shows(page, name: str, timeout_ms: int = 5000) -> None:  # noqa: ANN001
    """Wait (without waiting for any save) until the translation shown contains ``name``."""
    page.wait_for_function(f"() => {{ const e = {_ROOT}; const t = e && e.querySelector('.tokens[data-side=target]'); return !!t && t.innerText.includes('{name}'); }}",
                           timeout=timeout_ms)  # fmt: skip


def cursor(page) -> str:  # noqa: ANN001
    return page.locator(EDITOR).locator(".tok.cursor").get_attribute("data-i")


def test_after_ten_edits_and_accepts_one_key_press_acts_once(browser, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv("LABELBRIDGE_AUTH", raising=False)
    data = tmp_path / "data"
    db_url, ids = seed(data)
    with running_app(data) as url:
        page = new_page(browser)
        open_review(page, url)
        editor = page.locator(EDITOR)
        for k in range(10):
            assert NAMES[k] in target_text(page)  # lowest confidence first: the items in order
            editor.locator('.tok[data-side="target"][data-i="4"]').click()
            page.keyboard.press("3")  # LOC on "Berlín"
            page.keyboard.press("Enter")  # accept all and go on: shown at once, saved in the background
            shows(page, NAMES[k + 1])
        settled(page)  # everything answered
        assert editor_state(page, "failed") == "0"
        # one key press acts once: the cursor moves by one token
        editor.locator('.tok[data-side="target"][data-i="0"]').click()
        assert cursor(page) == "0"
        page.keyboard.press("ArrowRight")
        assert cursor(page) == "1"
        page.keyboard.press("ArrowRight")
        assert cursor(page) == "2"
        # a relabel, z, y, Backspace, z: exactly one undo per press, the relabel kept
        editor.locator('.tok[data-side="target"][data-i="0"]').click()
        page.keyboard.press("2")  # PER -> ORG
        for key in ("z", "y"):
            page.keyboard.press(key)
        settled(page)
        editor.locator('.tok[data-side="target"][data-i="0"]').click()
        page.keyboard.press("Backspace")
        settled(page)
        page.keyboard.press("z")
        settled(page)
        item = int(editor_state(page, "item"))
        assert [a for a, _ in history(db_url, item)] == ["edit", "undo", "redo", "edit", "undo"]
        assert "ORG" in target_text(page) and "PER" not in target_text(page)
        # ? opens the help once (and closes it with a second press)
        page.keyboard.press("?")
        assert editor.locator(".help").count() == 1
        page.keyboard.press("?")
        assert editor.locator(".help").count() == 0
        for k in range(10):
            assert [a for a, _ in history(db_url, ids[k])] == ["edit", "accept"], k  # each stored once
        # an edit survives a reload
        page.reload()
        wait_for_app(page)
        page.locator(EDITOR).wait_for()
        settled(page, f"e.dataset.item === '{item}'")
        assert "ORG" in target_text(page)


def test_a_lost_save_is_retried_and_stored_once(browser, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv("LABELBRIDGE_AUTH", raising=False)
    data = tmp_path / "data"
    db_url, ids = seed(data, 3)
    with running_app(data) as url:
        page = new_page(browser)
        dropped: list[int] = []

        def route(ws) -> None:  # noqa: ANN001 - a WebSocketRoute: drop the first message carrying an edit
            server = ws.connect_to_server()

            def to_server(message) -> None:  # noqa: ANN001
                raw = message if isinstance(message, (bytes, bytearray)) else str(message).encode()
                if not dropped and b'"action":"edit"' in raw.replace(b" ", b""):
                    dropped.append(len(raw))
                    return
                server.send(message)

            ws.on_message(to_server)
            server.on_message(lambda message: ws.send(message))

        page.route_web_socket("**/_stcore/stream", route)
        open_review(page, url)
        editor = page.locator(EDITOR)
        editor.locator('.tok[data-side="target"][data-i="4"]').click()
        page.keyboard.press("3")
        assert "Saving" in editor.locator(".mark").inner_text()  # shown as not stored yet
        settled(page)  # answered after the retry
        assert dropped, "the first request was not intercepted"
        assert "saved" in editor.locator(".mark").inner_text()
        assert history(db_url, ids[0]) == [("edit", "add")]


def test_the_conflict_panel_applies_a_relabel(browser, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv("LABELBRIDGE_AUTH", raising=False)
    data = tmp_path / "data"
    db_url, ids = seed(data, 2)
    with running_app(data) as url:
        one, two = new_page(browser), new_page(browser)
        open_review(one, url)
        open_review(two, url)
        one.locator(EDITOR).locator('.tok[data-side="target"][data-i="4"]').click()
        one.keyboard.press("3")  # LOC on Berlín in the first tab
        settled(one)
        two.locator(EDITOR).locator('.tok[data-side="target"][data-i="4"]').click()
        two.keyboard.press("4")  # MISC on Berlín in the second, stale tab: overlaps the stored LOC
        two.get_by_text("Your last change was not saved").wait_for()
        two.get_by_role("button", name="Use my labels where they overlap").click()
        wait_for_app(two)
        settled(two, "e.querySelector('.tokens[data-side=\"target\"]').innerText.includes('MISC')")
        assert "LOC" not in target_text(two).replace("vive", "")
        assert [a for a, _ in history(db_url, ids[0])][-1] == "edit"
