"""``python -m core.cli demo seed``: create the demo projects in an empty database."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.demo import DEMO_PROJECTS, project_demo, seed_demo


def _cmd_seed(args: argparse.Namespace) -> int:
    from core.config import settings

    url = args.db or settings().db_url
    if not seed_demo(url, Path(args.media_dir) if args.media_dir else None, projection="none"):
        print(f"{url} already has projects; nothing seeded")
        return 0
    print(f"seeded {len(DEMO_PROJECTS)} demo projects ({', '.join(p.name for p in DEMO_PROJECTS)}) into {url}")
    if not args.no_projection:
        for line in project_demo(url):
            print(line)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="the demo projects")
    sub = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    seed = sub.add_parser("seed", help="create the demo projects when the database has no project")
    seed.add_argument("--db", help="SQLAlchemy URL (default: LABELBRIDGE_DB or <LABELBRIDGE_DATA>/labelbridge.db)")
    seed.add_argument("--media-dir", help="image store (default: <LABELBRIDGE_DATA>/media)")
    seed.add_argument(
        "--no-projection", action="store_true",
        help="do not run the projection pipeline (the translations stay without spans until you run it)",
    )
    seed.set_defaults(func=_cmd_seed)
