"""What every command shares: the one-line user error, the database URL, the session."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy.engine import make_url

from core.config import settings

__all__ = ["CliError", "add_db", "add_db_project", "db_url", "progress_bar"]


class CliError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2."""


def add_db(p: argparse.ArgumentParser, flag: str = "--db") -> None:
    p.add_argument(flag, dest="db", help="SQLAlchemy database URL (default: LABELBRIDGE_DB or data/labelbridge.db)")


def add_db_project(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--project", required=True, help="project name")


def db_url(args: argparse.Namespace) -> str:
    """The database URL of a command; a relative SQLite path is made absolute (job workers
    and Ray actors run in other folders)."""
    url = getattr(args, "db", None) or settings().db_url
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:" and not u.database.startswith("file:"):
        path = Path(u.database)
        if not path.is_absolute():
            return u.set(database=str(path.resolve())).render_as_string(hide_password=False)
    return url


@contextmanager
def progress_bar(desc: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback (bytes read of a file) drawn as a tqdm bar on
    stderr; silent when stderr is not a terminal (logs, tests)."""
    from tqdm.auto import tqdm

    with tqdm(desc=desc, unit="B", unit_scale=True, disable=None, leave=False) as bar:
        def update(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        yield update
