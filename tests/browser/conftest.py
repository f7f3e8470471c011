"""Fixtures for browser tests: the real app on a free port and a headless Chromium page.

Every test here is marked ``browser`` and skipped, with the reason, when the system
Chromium or the Playwright package is missing (Playwright's own browser download is never
used: the machines reach no browser download site).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterator

import pytest

from services.app_runner import CHROMIUM, chromium_page, running_app


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    here = Path(__file__).parent
    missing = None
    if not CHROMIUM.is_file():
        missing = f"{CHROMIUM} not found (install it with: apt-get install -y chromium)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "the playwright Python package is not installed"
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if missing:
                item.add_marker(pytest.mark.skip(reason=missing))


@pytest.fixture()
def app_url(tmp_path) -> Iterator[str]:
    """Base URL of ``streamlit run app.py`` with a private LABELBRIDGE_DB/LABELBRIDGE_DATA."""
    with running_app(tmp_path / "data") as url:
        yield url


@pytest.fixture()
def page() -> Iterator[object]:
    with chromium_page() as p:
        yield p
