"""Shared fixtures. Gold data is read from ../shared/data/europarl-ner (never copied here)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from core.config import REPO_ROOT

SHARED = Path(os.environ.get("LABELBRIDGE_SHARED") or REPO_ROOT.parent / "shared")
EUROPARL = SHARED / "data" / "europarl-ner"


@pytest.fixture(autouse=True)
def keep_main_module():
    """Put ``sys.modules["__main__"]`` back after each test: AppTest (like the Streamlit server)
    installs the app script there, and a later test's spawned worker would run it again."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def europarl_dir() -> Path:
    """The Europarl-NER folder; tests that need it skip with the reason when it is absent."""
    if not (EUROPARL / "en-europarl.test.conll02").is_file():
        pytest.skip(f"Europarl-NER gold data not found at {EUROPARL} (needs ../shared beside the repository)")
    return EUROPARL


# The encoder `make setup` converted into the repository's data folder: tests with a private
# data folder reuse it instead of converting it again (20 s each).
PREPARED_ENCODER = REPO_ROOT / "data" / "models" / "multilingual-e5-small"


@pytest.fixture()
def lb_env(tmp_path, monkeypatch) -> Path:
    """A private LABELBRIDGE_DATA folder and SQLite database for one test."""
    monkeypatch.setenv("LABELBRIDGE_DATA", str(tmp_path / "data"))
    if (PREPARED_ENCODER / "config.json").is_file() and not os.environ.get("LABELBRIDGE_ENCODER"):
        monkeypatch.setenv("LABELBRIDGE_ENCODER", str(PREPARED_ENCODER))
    monkeypatch.setenv("LABELBRIDGE_DB", f"sqlite:///{tmp_path / 'data' / 'test.db'}")
    (tmp_path / "data").mkdir()
    return tmp_path / "data"
