"""``python -m core.cli convert [--from FMT] [--to FMT] INPUT OUTPUT``: convert between formats."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Iterator

from cli.common import CliError, progress_bar
from core.formats import FORMATS, FormatError, ReadReport, get_format, guess_format, iter_read, write


def register(subparsers: Any) -> None:
    names = sorted(FORMATS)
    p = subparsers.add_parser(
        "convert",
        help="convert labelled data between file formats",
        description="Convert labelled data between formats (" + ", ".join(names) + "). "
        "Formats are guessed from the extensions unless given. Repairs are printed to stderr as "
        "warnings with file:line; bad input exits with one error line and creates no output.",
    )
    p.add_argument("input", help="input file or dataset folder")
    p.add_argument("output", help="output file or dataset folder (replaced atomically)")
    p.add_argument("--from", dest="from_fmt", choices=names, help="input format (default: from the extension)")
    p.add_argument("--to", dest="to_fmt", choices=names, help="output format (default: from the extension)")
    p.add_argument("--tag-column", type=int, help="conll input: 0-based tag column, negative from the end (default -1, the last)")
    p.add_argument("--scheme", choices=["auto", "IOB1", "IOB2", "BIOES"], help="conll/hf input: tag scheme (default auto-detect)")
    p.add_argument("--out-scheme", choices=["IOB1", "IOB2", "BIOES"], help="conll output: tag scheme (default: as read, else IOB2)")
    p.add_argument("--out-sep", choices=["tab", "space"], help="conll output: column separator (default: as read, else tab)")
    p.add_argument("--skip-comments", action="store_true", help="conll input: drop # comments, -DOCSTART- lines and layout")
    p.add_argument("--split", help="hf input: the split of a DatasetDict")
    p.add_argument("--labels", help="hf output: comma-separated label set, fixing the ClassLabel ids across splits")
    p.add_argument("--fix-encoding", action="store_true",
                   help="repair text encoded twice (mojibake such as 'EspaÃ±a'); the reader warns when it finds some")
    p.add_argument("--lang", help="language code of the sentences (sets Sentence.lang; spacy.blank(LANG) for spacy)")
    p.set_defaults(func=run_convert)


def _options(fmt: str, allowed: tuple[str, ...], flags: dict[str, tuple[str, Any]], side: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, (option, value) in flags.items():
        if value is None or value is False:
            continue
        if option not in allowed:
            raise CliError(f"{flag} does not apply to {fmt} {side}")
        out[option] = value
    return out


def run_convert(args: argparse.Namespace) -> int:
    try:
        src_fmt = args.from_fmt or guess_format(args.input)
        dst_fmt = args.to_fmt or guess_format(args.output)
        read_opts = _options(src_fmt, get_format(src_fmt).read_options, {
            "--tag-column": ("tag_column", args.tag_column),
            "--scheme": ("scheme", args.scheme),
            "--skip-comments": ("skip_comments", args.skip_comments),
            "--split": ("split", args.split),
        }, "input")
        write_opts = _options(dst_fmt, get_format(dst_fmt).write_options, {
            "--out-scheme": ("scheme", args.out_scheme),
            "--out-sep": ("sep", args.out_sep),
            "--labels": ("labels", [lb.strip() for lb in args.labels.split(",") if lb.strip()] if args.labels else None),
        }, "output")
        if args.lang:
            read_opts["lang"] = args.lang  # every reader takes lang
            if "lang" in get_format(dst_fmt).write_options:
                write_opts["lang"] = args.lang
        if args.fix_encoding:
            if "fix_encoding" not in get_format(src_fmt).read_options:
                raise CliError(f"--fix-encoding applies to CoNLL input (token files) only, not to {src_fmt} (its spans use character offsets)")
            read_opts["fix_encoding"] = True
        report = ReadReport()
        count = 0
        with progress_bar(f"reading {args.input}") as bar:
            def counted() -> Iterator[Any]:
                nonlocal count
                for item in iter_read(args.input, src_fmt, report=report, progress=bar, **read_opts):
                    count += 1
                    yield item
            write(counted(), args.output, dst_fmt, **write_opts)  # streams when both formats do (bounded memory)
        for w in report.warnings:
            print(f"warning: {w}", file=sys.stderr)
    except FormatError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.filename or args.input}: {exc.strerror or exc}") from None
    print(f"{count} items: {args.input} ({src_fmt}) -> {args.output} ({dst_fmt}); "
          f"{len(report.warnings)} warnings", file=sys.stderr)
    return 0
