"""``python -m core.cli demo seed``: create the demo projects in an empty database."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import add_db, db_url
from core.demo import DEMO_PROJECTS
from db.engine import init_db, session_scope
from services.demo import project_demo, seed_demo


def _cmd_seed(args: argparse.Namespace) -> int:
    url = db_url(args)
    init_db(url)
    with session_scope(url) as s:
        seeded = seed_demo(s, Path(args.media_dir) if args.media_dir else None, projection="none")
    if not seeded:
        print(f"{url} already has projects; nothing seeded")
        return 0
    print(f"seeded {len(DEMO_PROJECTS)} demo projects ({', '.join(p.name for p in DEMO_PROJECTS)}) into {url}")
    if not args.no_projection:
        with session_scope(url) as s:
            for line in project_demo(s):
                print(line)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="the demo projects")
    sub = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    seed = sub.add_parser("seed", help="create the demo projects when the database has no project")
    add_db(seed)
    seed.add_argument("--media-dir", help="image store (default: <LABELBRIDGE_DATA>/media)")
    seed.add_argument(
        "--no-projection", action="store_true",
        help="do not run the projection pipeline (the translations stay without spans until you run it)",
    )  # fmt: skip
    seed.set_defaults(func=_cmd_seed)
