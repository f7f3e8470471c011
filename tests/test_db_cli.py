"""``python -m core.cli db ...`` on a temporary SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from db.engine import dispose_engine, get_engine, head_revision


def test_db_upgrade_current_check(lb_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{lb_env / 'test.db'}"
    try:
        assert main(["db", "current"]) == 1  # empty database: behind
        assert "(empty database)" in capsys.readouterr().out
        assert main(["db", "upgrade"]) == 0
        assert f"revision {head_revision()}" in capsys.readouterr().out
        assert main(["db", "current"]) == 0
        assert main(["db", "check"]) == 0
        assert "agree" in capsys.readouterr().out
        with get_engine(url).begin() as conn:  # drift: a column the models do not know
            conn.exec_driver_sql("ALTER TABLE users ADD COLUMN nickname VARCHAR(20)")
        assert main(["db", "check"]) == 1
        assert "nickname" in capsys.readouterr().out
    finally:
        dispose_engine(url)


def test_db_check_on_an_old_database_is_a_user_error(lb_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        assert main(["db", "check", "--url", f"sqlite:///{lb_env / 'other.db'}"]) == 2
        assert "run `db upgrade` first" in capsys.readouterr().err
    finally:
        dispose_engine(f"sqlite:///{lb_env / 'other.db'}")
