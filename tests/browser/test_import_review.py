"""The real app in headless Chromium: create a project, import a CoNLL file through the
uploader, open Review and see the sentence; a screenshot goes to artifacts/."""

from __future__ import annotations

import pytest

from services.app_runner import REPO_ROOT, wait_for_app

pytestmark = pytest.mark.browser

CONLL = "Maria\tB-PER\nSchneider\tI-PER\nworks\tO\nin\tO\nMunich\tB-LOC\n.\tO\n\nIt\tO\nrained\tO\n.\tO\n"


def test_import_a_conll_file_and_review_it(app_url, page, tmp_path) -> None:
    data = tmp_path / "people.conll"
    data.write_text(CONLL, encoding="utf-8")

    # The first request of the server is a deep link: the shell (app.py) must still run.
    page.goto(f"{app_url}/review")
    wait_for_app(page)
    page.get_by_text("No project selected").wait_for()
    page.get_by_role("textbox", name="Your name").wait_for()
    page.get_by_role("link", name="Projects").first.click()
    page.get_by_text("No projects yet").wait_for()

    page.get_by_label("Name", exact=True).fill("Browser test")
    page.get_by_role("button", name="Create project").click()
    page.get_by_text("Created project 'Browser test'").wait_for()
    page.get_by_text("Import items into Browser test").wait_for()

    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(data))
    page.get_by_text("people.conll").first.wait_for()
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported 2 item(s) from people.conll").wait_for()

    page.get_by_role("link", name="Review").click()
    wait_for_app(page)
    page.get_by_text("Item 1 of 2").wait_for()
    sentence = page.locator("mark", has_text="Maria Schneider")
    sentence.first.wait_for()
    assert "PER" in sentence.first.inner_text()
    assert "project=" in page.url and "item=" in page.url

    artifacts = REPO_ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "review-browser-test.png"), full_page=True)
