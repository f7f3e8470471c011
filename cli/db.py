"""``python -m core.cli db ...``: schema upgrade, status, drift check, new migrations."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from cli.common import CliError


def _upgrade(args: argparse.Namespace) -> int:
    from db.engine import current_revision, init_db

    init_db(args.url)
    print(f"database is at revision {current_revision(args.url)}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from db.engine import current_revision, head_revision

    current, head = current_revision(args.url), head_revision()
    print(f"current: {current or '(empty database)'}  head: {head}")
    return 0 if current == head else 1


def _check(args: argparse.Namespace) -> int:
    from db.engine import current_revision, head_revision, schema_diff

    if current_revision(args.url) != head_revision():
        raise CliError("the database is not at the newest migration; run `db upgrade` first")
    diff = schema_diff(args.url)
    for d in diff:
        print(d)
    print("models and migrations agree" if not diff else f"{len(diff)} difference(s): write a migration (`db revision`)")
    return 0 if not diff else 1


def _revision(args: argparse.Namespace) -> int:
    """Autogenerate a migration against a scratch SQLite database at head, so writing a
    migration needs no real database."""
    from alembic import command

    from db.engine import alembic_config, dispose_engine, init_db

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        try:
            init_db(url)
            cfg = alembic_config(url)
            command.revision(cfg, message=args.message, autogenerate=True, rev_id=args.rev_id)
        finally:
            dispose_engine(url)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="database schema: upgrade, current, check, revision")
    sub = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, func, help_text in (
        ("upgrade", _upgrade, "create or upgrade the schema to the newest migration"),
        ("current", _current, "show the database's migration and the newest one (exit 1 when behind)"),
        ("check", _check, "compare the models with the database schema (exit 1 on differences)"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", default=None, help="SQLAlchemy URL (default: LABELBRIDGE_DB or data/labelbridge.db)")
        p.set_defaults(func=func)
    p = sub.add_parser("revision", help="autogenerate a new migration from the models")
    p.add_argument("-m", "--message", required=True, help="what the migration changes")
    p.add_argument("--rev-id", default=None, help="revision id (default: random), e.g. 0002")
    p.set_defaults(func=_revision)
