"""One way to open the real app in AppTest: app.py with query params, then a page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.config import REPO_ROOT

APP = str(REPO_ROOT / "app.py")
TIMEOUT = 60


def open_app(page: str | None = None, **query: int | str | None) -> AppTest:
    """Run app.py with the given URL query params (None ones left out), then switch to ``page``."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for name, value in query.items():
        if value is not None:
            at.query_params[name] = str(value)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    if page:
        at.switch_page(page).run()
        assert not at.exception, [e.message for e in at.exception]
    return at
