"""Running the pipeline over a project: stage after stage, batch after batch, resumable.

Each stage loads its model once, then for every pending batch reads the items from the
database, runs the stage function and writes the results with the items' "done" marks in
one transaction. A run killed at any moment (even ``kill -9``) loses at most the batch in
flight; started again, it finds the same pending batches and produces what an uninterrupted
run produces. Progress goes to a tqdm bar (rate, time left) and, for background jobs, to the
job row that the Projects page polls (services.jobs.JobReporter); a cancelled job stops
after the batch in flight. The run commits its session after every batch.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from sqlalchemy.orm import Session
from tqdm.auto import tqdm

from core.pipeline.stages import (
    PipelineConfig,
    PipelineError,
    StageBatch,
    StageLoadError,
    StageOutput,
    StageRunner,
    StageSpec,
    adapts_aligner,
    plan_stages,
    run_batch,
    with_adapted_encoder,
)
from db.engine import url_of
from db.errors import QueryError
from db.items import item_ids
from db.jobs import JobInfo, list_jobs
from db.projects import get_project, update_project_settings
from services.jobs import JobReporter, refresh_jobs, start_job_process
from services.pipeline.store import (
    load_stage_batch,
    pending_batches,
    pipeline_status,
    record_failures,
    save_stage_output,
    stages_done_count,
    target_pairs,
)

__all__ = [
    "ENGINES",
    "JOB_KIND",
    "StageReport",
    "RunReport",
    "PipelineCancelled",
    "StageLoadError",
    "config_args",
    "run_pipeline",
    "start_pipeline_job",
    "write_batch",
]

JOB_KIND = "pipeline"

ENGINES = ("local", "ray")


class PipelineCancelled(RuntimeError):
    """The job was cancelled; the batches written so far stay."""


@dataclass
class StageReport:
    key: str
    kind: str
    items: int = 0  # items this run processed (passed + failed)
    failed: int = 0
    batches: int = 0
    load_s: float = 0.0  # loading the model / tool (local engine)
    compute_s: float = 0.0  # inside the stage function
    db_s: float = 0.0  # reading inputs and writing results
    wall_s: float = 0.0  # the whole stage, loading included

    @property
    def sentences_per_s(self) -> float | None:
        return round(self.items / self.wall_s, 3) if self.items and self.wall_s > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "sentences_per_s": self.sentences_per_s}


@dataclass
class RunReport:
    project: str
    project_id: int
    engine: str
    items: int  # items in the run's scope
    stages: list[StageReport] = field(default_factory=list)
    wall_s: float = 0.0
    cancelled: bool = False
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(st.failed for st in self.stages)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "project_id": self.project_id,
            "engine": self.engine,
            "items": self.items,
            "wall_s": round(self.wall_s, 3),
            "sentences_per_s": round(self.items / self.wall_s, 3) if self.items and self.wall_s > 0 else None,
            "cancelled": self.cancelled,
            "failed": self.failed,
            "stages": [st.to_json() for st in self.stages],
            "status": self.status,
        }


class _Progress:
    """The tqdm bar of the stage that runs and the job row (done/total over all stages)."""

    def __init__(self, reporter: JobReporter, total: int, done: int, show: bool):
        self.reporter, self.total, self.done, self.show = reporter, total, done, show
        self.bar: tqdm | None = None

    def stage(self, spec: StageSpec, n_items: int, message: str) -> None:
        self.close()
        self.bar = tqdm(total=n_items, desc=spec.key, unit="sent", disable=not self.show, dynamic_ncols=True)
        self.reporter.report(force=True, done=min(self.done, self.total), total=self.total, message=message)

    def advance(self, n: int, message: str) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        self.reporter.report(force=True, done=min(self.done, self.total), total=self.total, message=message)  # once per batch

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def write_batch(s: Session, project_id: int, spec: StageSpec, batch: StageBatch, out: StageOutput) -> None:
    """Write a batch and commit it as one transaction; when the database refuses it, write
    item by item so only the refused items fail (each with the database's reason)."""
    try:
        save_stage_output(s, project_id, spec, batch, out)
        s.commit()
        return
    except (QueryError, ValueError) as first:  # SpanError is a ValueError
        s.rollback()
        if len(batch.items) == 1:
            record_failures(s, project_id, spec, {batch.items[0].id: f"{type(first).__name__}: {first}"})
            s.commit()
            return
    for it in batch.items:
        one = StageBatch(batch.index, [it], {it.id: batch.context.get(it.id, {})})
        single = StageOutput(
            [o for o in out.items if o.id == it.id],
            {k: v for k, v in out.errors.items() if k == it.id},
            {k: v for k, v in out.unprojected.items() if k == it.id},
        )
        try:
            save_stage_output(s, project_id, spec, one, single)
            s.commit()
        except (QueryError, ValueError) as exc:
            s.rollback()
            record_failures(s, project_id, spec, {it.id: f"{type(exc).__name__}: {exc}"})
            s.commit()


def _check_provided_lines(config: PipelineConfig, n_items: int) -> None:
    """A line-matched translation file needs a line for every item of the project (line k is
    the translation of the k-th item; more lines are allowed, e.g. for a run with a limit)."""
    from core.translate import ProvidedTranslator

    for spec in (config.translator, config.back_translator):
        if spec and spec.startswith("provided:"):
            translator = ProvidedTranslator(spec.partition(":")[2])
            if translator.lines is not None and len(translator.lines) < n_items:
                raise PipelineError(
                    f"{translator.path} has {len(translator.lines)} lines but the project has {n_items} items "
                    "(a plain-text translation file needs one line per item, in order; use TSV or JSONL with ids otherwise)"
                )


def _run_stage_local(
    s: Session, project_id: int, spec: StageSpec, work: list[tuple[int, list[int]]], progress: _Progress, cancel: threading.Event, report: StageReport
) -> None:
    start = time.perf_counter()
    runner = StageRunner(spec)
    report.load_s = time.perf_counter() - start
    for k, (index, ids) in enumerate(work, 1):
        if cancel.is_set():
            raise PipelineCancelled(f"cancelled during {spec.key}")
        t0 = time.perf_counter()
        batch = load_stage_batch(s, project_id, spec, index, ids)
        s.commit()  # end the read transaction: nothing is held while the stage computes
        t1 = time.perf_counter()
        out = run_batch(runner, batch)
        t2 = time.perf_counter()
        write_batch(s, project_id, spec, batch, out)
        report.db_s += (t1 - t0) + (time.perf_counter() - t2)
        report.compute_s += t2 - t1
        _count(report, batch, out)
        progress.advance(len(ids), f"{spec.key}: batch {k}/{len(work)}")


def _count(report: StageReport, batch: StageBatch, out: StageOutput) -> None:
    report.items += len(batch.items)
    report.failed += len(out.errors)
    report.batches += 1


def _quiet_model_loading() -> None:
    """No per-model progress bars from transformers (background jobs log to a file)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


ADAPTED_SETTING = "adapted_aligners"  # project settings: {align stage key: adapted encoder folder}


def adapt_aligner_for_project(s: Session, project_id: int, spec: StageSpec, scope: Sequence[int]) -> str:
    """The adapted encoder folder of ``spec`` (simalign-tuned) for this project.

    The first run adapts on every pair of its items that has a target (no labels read) and
    stores the folder in the project's settings; later runs (resumed, widened, with new
    items) keep using it while any item is aligned with it, so one stage never holds links
    from two encoders. Raises PipelineError when that folder is gone."""
    from pathlib import Path

    from core.align import aligner_encoder, get_aligner, prepare_aligners
    from db.stages import items_with_stage

    stored = (get_project(s, project_id).settings.get(ADAPTED_SETTING) or {}).get(spec.key)
    aligned = bool(items_with_stage(s, project_id, spec.key))
    if stored and aligned:
        if not (Path(stored) / "adapted.json").is_file():
            raise PipelineError(
                f"stage {spec.key}: the adapted encoder its aligned items were made with ({stored}) is gone; "
                "restore it, or start a new project to adapt again"
            )
        s.commit()
        return str(stored)
    pairs = target_pairs(s, project_id, scope)
    s.commit()
    if not pairs:
        raise PipelineError(f"stage {spec.key}: no item has a target sentence to adapt the aligner on")
    aligner = get_aligner(spec.name)
    if not prepare_aligners(aligner, pairs):
        raise PipelineError(f"stage {spec.key}: no adaptable aligner in {spec.name!r}")
    folder = str(aligner_encoder(aligner))
    settings = get_project(s, project_id).settings.get(ADAPTED_SETTING) or {}
    update_project_settings(s, project_id, {ADAPTED_SETTING: {**settings, spec.key: folder}})
    s.commit()
    return folder


def run_pipeline(
    s: Session,
    project: int | str,
    config: PipelineConfig,
    *,
    engine: str = "local",
    limit: int | None = None,
    progress: bool = True,
    reporter: JobReporter | None = None,
    ray_actors: int | None = None,
) -> RunReport:
    """Run every stage of ``config`` on the project's items (the first ``limit`` of them),
    committing ``s`` after every batch.

    The project's ``label_map`` setting is the teacher's label map unless ``config`` has one.
    Raises StageLoadError when a stage's model or tool cannot be loaded, ValueError for a
    config that cannot run; items that fail are recorded and the run goes on. ``reporter``
    (a job's) gets the progress and says when the job was cancelled.
    """
    if engine not in ENGINES:
        raise PipelineError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    reporter = reporter or JobReporter(s, None)
    cancel = reporter.cancel
    started = time.perf_counter()
    if not progress:
        _quiet_model_loading()
    info = get_project(s, project)
    if config.label_map is None and info.settings.get("label_map") is not None:
        config = PipelineConfig(**{**config.to_json(), "label_map": info.settings["label_map"]})
    if config.teacher.startswith("student:"):
        from services.training import resolve_teacher_spec

        config = PipelineConfig(**{**config.to_json(), "teacher": resolve_teacher_spec(s, config.teacher)})
    if config.candidates.startswith("student:"):
        from services.training import resolve_teacher_spec

        config = PipelineConfig(**{**config.to_json(), "candidates": resolve_teacher_spec(s, config.candidates)})
    if config.direction != info.direction:  # the project decides which side its imported sentences are
        config = PipelineConfig(**{**config.to_json(), "direction": info.direction})
    config = config.resolved()
    if (config.src, config.tgt) != (info.src_lang, info.tgt_lang):
        raise PipelineError(f"project {info.name!r} is {info.src_lang}->{info.tgt_lang}, the run asks for {config.src}->{config.tgt}")
    all_ids = item_ids(s, info.id)
    scope = all_ids[:limit] if limit is not None else all_ids
    stages = plan_stages(config)
    update_project_settings(s, info.id, {"pipeline": {"config": config.to_json(), "stages": [st.key for st in stages], "engine": engine}})
    done = stages_done_count(s, info.id, [st.key for st in stages], set(scope))
    s.commit()
    _check_provided_lines(config, len(all_ids))
    report = RunReport(info.name, info.id, engine, len(scope))
    bar = _Progress(reporter, len(scope) * len(stages), done, progress)
    try:
        for position in range(len(stages)):
            spec = stages[position]
            if spec.kind == "align" and adapts_aligner(spec.name):
                bar.stage(spec, 0, f"{spec.key}: adapting the aligner to the project's sentence pairs")
                stages = with_adapted_encoder(stages, adapt_aligner_for_project(s, info.id, spec, scope))
                spec = stages[position]
            st = StageReport(spec.key, spec.kind)
            report.stages.append(st)
            work = pending_batches(s, info.id, spec, scope, config.batch_size)
            s.commit()
            n_work = sum(len(ids) for _, ids in work)
            bar.stage(spec, n_work, f"{spec.key}: {n_work} item(s) to do")
            if not work:
                continue
            t0 = time.perf_counter()
            if engine == "ray":
                from services.pipeline.ray_engine import run_stage_ray

                def on_result(batch: StageBatch, out: StageOutput, k: int, st: StageReport = st, spec: StageSpec = spec) -> None:
                    t = time.perf_counter()
                    write_batch(s, info.id, spec, batch, out)
                    st.db_s += time.perf_counter() - t
                    st.compute_s += out.seconds
                    _count(st, batch, out)
                    bar.advance(len(batch.items), f"{spec.key}: batch {k}/{len(work)}")

                run_stage_ray(url_of(s), info.id, spec, work, on_result, cancel, actors=ray_actors)
            else:
                _run_stage_local(s, info.id, spec, work, bar, cancel, st)
            st.wall_s = time.perf_counter() - t0
            if cancel.is_set():
                raise PipelineCancelled(f"cancelled after {spec.key}")
    except PipelineCancelled:
        report.cancelled = True
    finally:
        bar.close()
    report.wall_s = time.perf_counter() - started
    report.status = pipeline_status(s, info.id)
    return report


# --------------------------------------------------------------------------- as a background job


def config_args(config: PipelineConfig) -> list[str]:
    """The ``pipeline run`` options that reproduce a config."""
    args = ["--src", config.src, "--tgt", config.tgt, "--teacher", config.teacher, "--batch-size", str(config.batch_size)]
    for flag, value in (
        ("--translator", config.translator),
        ("--back-translator", config.back_translator),
        ("--aligner", config.aligner),
        ("--method", config.method),
    ):
        if value:
            args += [flag, value]
    if config.label_map is not None:
        args += ["--label-map", config.label_map if isinstance(config.label_map, str) else json.dumps(dict(config.label_map))]
    return args


def start_pipeline_job(s: Session, project: int | str, config: PipelineConfig, *, engine: str = "local", limit: int | None = None) -> JobInfo:
    """Create a job row and start its worker process; returns at once with the job.

    Raises QueryError when a pipeline job of the project is still queued or running (two
    writers on the same items would race).
    """
    info = get_project(s, project)
    refresh_jobs(s, info.id, kind=JOB_KIND)  # a dead worker's job must not block a new one
    busy = [j for j in list_jobs(s, info.id, status=("queued", "running")) if j.kind == JOB_KIND]
    if busy:
        raise QueryError(f"pipeline job {busy[0].id} of project {info.name!r} is still {busy[0].status}; wait for it or cancel it")
    params = {"config": config.to_json(), "engine": engine, "limit": limit}
    args = ["pipeline", "run", "--project", info.name, *config_args(config), "--engine", engine, "--no-progress"]
    if limit is not None:
        args += ["--limit", str(limit)]
    return start_job_process(s, JOB_KIND, info.id, params, args)
