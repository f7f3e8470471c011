"""``bench system``: what a user gets from the whole system on real data.

Translate-test: the gold file's target-language sentences are imported *without* their labels
into a fresh translate-test project, the pipeline runs as a user would run it (translator ->
teacher on the pivot -> aligner -> projection back onto the original tokens), and the labels
export would write are scored strictly (seqeval, IOB2) against the file's gold. Only labels
that both the teacher and the gold have are counted (a CoNLL-2003 teacher cannot find
Europarl's MISC... or a DATE), and the JSON says which (``labels``).

With ``source_path`` (a gold file parallel to the target file, e.g. Europarl's English), the
teacher is also scored on those original source sentences: ``teacher_f1_on_source``, the
ceiling of any projection of this teacher. With ``model_transfer`` the teacher is also run
directly on the original sentences (``model_transfer``: what a multilingual teacher such as
a LabelBridge student gives with no translation at all, the baseline translate-test must beat).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from core.data import Item, Span
from core.pipeline.stages import PipelineConfig, PipelineError

__all__ = ["bench_system"]


def _scores(sentences: Sequence[Any], gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]], labels: set[str]) -> dict[str, Any]:
    from core.metrics import label_scores

    return label_scores(sentences, gold, pred, labels)


def _teacher_on_source(source_path: str, config: PipelineConfig, n: int, labels: set[str]) -> dict[str, Any]:
    from core.formats import read
    from core.teacher import load_teacher

    items = read(source_path, lang=config.src)[:n]
    teacher = load_teacher(config.teacher, config.label_map)
    predicted = teacher.predict([it.source for it in items])
    return _scores([it.source for it in items], [it.source_spans for it in items], predicted, labels)


def bench_system(
    target_path: str,
    config: PipelineConfig,
    *,
    limit: int | None = None,
    source_path: str | None = None,
    model_transfer: bool = False,
    db_url: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run translate-test on ``target_path`` (a gold file in ``config.tgt``) and score it."""
    from core.formats import read
    from core.teacher import load_teacher, teacher_labels
    from db.engine import dispose_engine, init_db, session_scope
    from db.projects import create_project
    from services.export import export_selection
    from services.pipeline.run import run_pipeline
    from services.projects import import_project_items

    if config.direction != "translate-test":
        raise PipelineError("bench system measures translate-test (gold on the original sentences); "
                            "for translate-train on parallel gold use `bench projection`")  # fmt: skip
    gold: list[Item] = read(target_path, lang=config.tgt)
    gold = gold[:limit] if limit is not None else gold
    if not gold:
        raise PipelineError(f"{target_path}: no sentences")
    gold_labels = {sp.label for it in gold for sp in it.source_spans}
    known = teacher_labels(load_teacher(config.teacher, config.label_map))
    labels = gold_labels & known if known is not None else gold_labels
    with tempfile.TemporaryDirectory(prefix="labelbridge-system-") as tmp:
        url = db_url or f"sqlite:///{Path(tmp) / 'system.db'}"
        init_db(url)
        try:
            with session_scope(url) as s:
                project = create_project(s, f"system-{time.time_ns()}", config.src, config.tgt, sorted(labels), {"direction": "translate-test"})
                unlabelled = [it.with_(source_spans=[], target_spans=[], labelled_by={}) for it in gold]  # the gold stays here, for scoring
                import_project_items(s, project.id, unlabelled, labelled=False)
            started = time.perf_counter()
            with session_scope(url) as s:
                report = run_pipeline(s, project.id, config, progress=progress)
            seconds = time.perf_counter() - started
            with session_scope(url) as s:
                exported = {it.id: it for it in export_selection(s, project.id)}
        finally:
            dispose_engine(url)
    missing = [it.id for it in gold if it.id not in exported]
    if missing:
        raise PipelineError(f"item {missing[0]} was not exported")
    out_items = [exported[it.id] for it in gold]
    changed = [it.id for it, o in zip(gold, out_items) if o.target is None or [t.text for t in o.target.tokens] != it.source.words]
    if changed:
        raise PipelineError(f"item {changed[0]}: the exported original differs from the imported sentence")
    result: dict[str, Any] = {
        "bench": "system",
        "direction": "translate-test",
        "target": target_path,
        "sentences": len(gold),
        **_scores([it.source for it in gold], [it.source_spans for it in gold], [o.target_spans for o in out_items], labels),
        "labels": sorted(labels),
        "labels_left_out": sorted(gold_labels - labels),
        "seconds": round(seconds, 2),
        "sentences_per_second": round(len(gold) / seconds, 2) if seconds > 0 else None,
        "failed": report.failed,
        "config": config.resolved().to_json(),
        "stages": {st.key: {"seconds": round(st.wall_s, 2), "load_s": round(st.load_s, 2)} for st in report.stages},
    }
    if model_transfer:
        started = time.perf_counter()
        direct = load_teacher(config.teacher, config.label_map).predict([it.source for it in gold])
        result["model_transfer"] = {**_scores([it.source for it in gold], [it.source_spans for it in gold], direct, labels),
                                    "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
        result["translate_test_minus_model_transfer"] = round(result["f1"] - result["model_transfer"]["f1"], 4)
    if source_path:
        result["teacher_on_source"] = _teacher_on_source(source_path, config, len(gold), labels)
        result["teacher_f1_on_source"] = result["teacher_on_source"]["f1"]
    return result
