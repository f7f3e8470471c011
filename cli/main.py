"""``python -m core.cli <command> ...``: the parser built from the command modules."""

from __future__ import annotations

import argparse
import importlib
import sys

from cli.common import CliError
from core.errors import LabelBridgeError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

# Modules that contribute commands (each has ``register(subparsers)``).
COMMAND_MODULES: list[str] = [
    "cli.demo",
    "cli.convert",
    "cli.db",
    "cli.models",
    "cli.bench",
    "cli.pipeline",
    "cli.users",
    "cli.train",
    "cli.teacher",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="LabelBridge command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, LabelBridgeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
