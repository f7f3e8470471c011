"""``python -m core.cli bench <name>``: benchmarks that print one JSON line each.

Each benchmark lives beside the code it measures and offers ``register_bench``; this module
only groups them. Modules still missing (work in progress elsewhere) are skipped, not faked.
"""

from __future__ import annotations

import importlib

BENCH_MODULES = [
    "core.align.bench",  # align-speed
    "core.projection.bench",  # projection
    "core.pipeline.bench",  # pipeline
    "core.student.bench",  # student, queue
    "core.review_bench",  # review
]


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (one JSON line each)")
    bench_sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    for name in BENCH_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register_bench(bench_sub)


def run_script(name: str | None, argv: list[str] | None = None) -> int:
    """Entry point of the thin scripts in bench/: ``bench/X.py ARGS`` = ``core.cli bench X ARGS``.

    ``name`` None passes the arguments through (scripts that offer several benchmarks).
    """
    import sys

    from core.cli import main

    args = list(sys.argv[1:] if argv is None else argv)
    return main(["bench", *([name] if name else []), *args])
