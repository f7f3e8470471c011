"""The one engine and session factory, and schema set-up through Alembic.

Everything that touches the database gets its engine from ``get_engine`` (cached per URL)
and its sessions from ``session_scope``; the URL defaults to ``core.config.settings().db_url``
so the app, the CLI, background jobs and tests agree on one database.

SQLite connections get WAL (readers do not block the writer; a killed process loses no
committed transaction), foreign keys ON (SQLite ignores them otherwise) and a busy
timeout (concurrent writers wait instead of failing at once) on every connection.
``synchronous=NORMAL`` is the recommended setting with WAL: a committed transaction
survives a crash of the process; only a power loss may lose the last commits.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.config import settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_session_factories: dict[str, sessionmaker[Session]] = {}
_initialized: set[str] = set()


def _resolve(url: str | None) -> str:
    return url or settings().db_url


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory / non-SQLite URLs."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    database = u.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _set_sqlite_pragmas(dbapi_connection, connection_record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: settings().db_url), created once per URL."""
    url = _resolve(url)
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        db_file = _sqlite_file(url)
        if db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        elif make_url(url).get_backend_name() == "sqlite":
            engine = create_engine(url)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _set_sqlite_pragmas)
        _engines[url] = engine
        _session_factories[url] = sessionmaker(bind=engine, expire_on_commit=False)
        return engine


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session in one transaction: commit when the block ends, roll back on any error."""
    url = _resolve(url)
    get_engine(url)
    session = _session_factories[url]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str | None = None):  # noqa: ANN201 (alembic.config.Config)
    """Alembic configuration built in code (no alembic.ini): script location and URL."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option, because URLs may contain '%' (configparser).
    cfg.attributes["url"] = _resolve(url)
    return cfg


def init_db(url: str | None = None) -> None:
    """Create or upgrade the schema to the newest migration (Alembic ``upgrade head``).

    Cheap to call on every start: it runs Alembic once per URL and process.
    """
    url = _resolve(url)
    if url in _initialized:
        return
    from alembic import command

    cfg = alembic_config(url)
    with get_engine(url).begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    _initialized.add(url)


def dispose_engine(url: str | None = None) -> None:
    """Close the pooled connections of one URL and forget its engine (tests, shutdown)."""
    url = _resolve(url)
    with _lock:
        engine = _engines.pop(url, None)
        _session_factories.pop(url, None)
        _initialized.discard(url)
    if engine is not None:
        engine.dispose()


def head_revision() -> str:
    """The newest migration in db/migrations."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def current_revision(url: str | None = None) -> str | None:
    """The migration the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_diff(url: str | None = None) -> list:
    """Differences between the models and the database schema (empty when they agree);
    what ``alembic check`` reports, used by tests and ``db check``."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from db.models import Base

    with get_engine(url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        return list(compare_metadata(context, Base.metadata))


def url_of(s: Session) -> str:
    """The URL of a session's database, for the one place it must travel: to another
    process or a Ray actor (with the password: the worker must connect)."""
    return s.get_bind().engine.url.render_as_string(hide_password=False)


@contextmanager
def side_session(s: Session) -> Iterator[Session]:
    """A second session on the same engine in its own transaction (committed at the end):
    job progress and heartbeats commit while the work's own transaction is open."""
    engine = s.get_bind().engine
    other = Session(bind=engine, expire_on_commit=False)
    try:
        yield other
        other.commit()
    except BaseException:
        other.rollback()
        raise
    finally:
        other.close()
