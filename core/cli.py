"""Command line: ``python -m core.cli <command> ...``.

A thin layer over pure functions in core/ and db/. Each command lives in the module that
owns the logic, as a ``register(subparsers)`` function that adds its parser and sets
``func``; this file only lists those modules. A command returns an exit code; errors that
users can cause (bad input files, unknown formats) are ``CliError`` and print one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute commands (each has ``register(subparsers)``).
COMMAND_MODULES: list[str] = [
    "core.demo.cli",
    "core.formats.cli",
    "db.cli",
    "core.encoder",
    "core.bench",
    "core.pipeline.cli",
    "core.users_cli",
    "core.training_cli",
]


class CliError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2."""


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
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run through the imported module so commands and this file share one CliError class.
    from core.cli import main as _main

    sys.exit(_main())
