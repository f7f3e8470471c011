"""Pipeline runs as background jobs: a separate process per job, a row in the jobs table.

``start_pipeline_job`` creates the job row and starts ``python -m core.cli pipeline run ...
--job-id N`` in its own process (and session, so it outlives a Streamlit rerun or restart);
the page only polls the row. The worker reports progress per batch, beats a heartbeat from
a thread (so a long batch or model load does not look dead), and stops after the batch in
flight when the job is cancelled. A worker that dies without finishing its job (killed,
out of memory) is found by ``refresh_jobs`` and its job marked failed.

The mechanism is generic: ``start_job_process`` starts any ``python -m core.cli ... --job-id N``
command as a job of some kind (the student's training and prediction jobs use it too),
``refresh_jobs`` follows jobs of any kinds, and ``run_as_job`` runs the work in the worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from core.config import REPO_ROOT, settings
from core.pipeline.stages import PipelineConfig
from db import queries
from db.engine import session_scope

__all__ = [
    "JOB_KIND",
    "HEARTBEAT_S",
    "STALE_AFTER_S",
    "config_args",
    "start_job_process",
    "start_pipeline_job",
    "cancel_pipeline_job",
    "refresh_jobs",
    "job_log_path",
    "run_as_job",
]

JOB_KIND = "pipeline"
HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0

_children: dict[tuple[str, int], subprocess.Popen] = {}  # (database URL, job id) -> worker started here


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


def job_log_path(job_id: int, kind: str = JOB_KIND) -> Path:
    return settings().data_dir / "jobs" / f"{kind}-{job_id}.log"


def start_job_process(
    url: str, kind: str, project_id: int | None, params: Mapping[str, Any], cli_args: Sequence[str]
) -> queries.JobInfo:
    """Create a ``kind`` job row and start ``python -m core.cli *cli_args --job-id N`` as its
    worker, in its own process and session; returns at once with the job."""
    with session_scope(url) as s:
        job = queries.create_job(s, kind, project_id, params=params, message="starting")
    cmd = [sys.executable, "-m", "core.cli", *cli_args, "--job-id", str(job.id)]
    log_path = job_log_path(job.id, kind)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=os.environ.copy(),
        )
    _children[(url, job.id)] = proc
    with session_scope(url) as s:
        try:
            return queries.update_job(s, job.id, pid=proc.pid)
        except queries.QueryError:  # the worker already finished, or the job was cancelled
            return queries.get_job(s, job.id)


def start_pipeline_job(
    url: str,
    project: int | str,
    config: PipelineConfig,
    *,
    engine: str = "local",
    limit: int | None = None,
) -> queries.JobInfo:
    """Create a job row and start its worker process; returns at once with the job.

    Raises QueryError when a pipeline job of the project is still queued or running (two
    writers on the same items would race).
    """
    with session_scope(url) as s:
        info = queries.get_project(s, project)
    refresh_jobs(url, info.id)  # a dead worker's job must not block a new one
    with session_scope(url) as s:
        busy = [j for j in queries.list_jobs(s, info.id, status=("queued", "running")) if j.kind == JOB_KIND]
        if busy:
            raise queries.QueryError(f"pipeline job {busy[0].id} of project {info.name!r} is still {busy[0].status}; wait for it or cancel it")
    params = {"config": config.to_json(), "engine": engine, "limit": limit}
    args = ["pipeline", "run", "--db", url, "--project", info.name, *config_args(config), "--engine", engine, "--no-progress"]
    if limit is not None:
        args += ["--limit", str(limit)]
    return start_job_process(url, JOB_KIND, info.id, params, args)


def cancel_pipeline_job(url: str, job_id: int) -> queries.JobInfo:
    """Ask the worker to stop: it sees the flag at its next batch or heartbeat."""
    with session_scope(url) as s:
        return queries.cancel_job(s, job_id, "cancel requested: stopping after the batch in flight")


def _alive(url: str, job_id: int, pid: int | None) -> bool:
    proc = _children.get((url, job_id))
    if proc is not None and proc.pid == pid:  # our child: poll() also reaps it
        return proc.poll() is None
    if pid is None:
        return True  # not started by us and no pid yet: only the heartbeat can tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is dead too
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def refresh_jobs(
    url: str, project_id: int | None = None, limit: int = 20, kind: str | Sequence[str] = JOB_KIND
) -> list[queries.JobInfo]:
    """The jobs of ``kind`` (one or several; newest first), after failing those whose worker is gone."""
    kinds = {kind} if isinstance(kind, str) else set(kind)
    with session_scope(url) as s:
        queries.fail_stale_jobs(s, STALE_AFTER_S)
        jobs = [j for j in queries.list_jobs(s, project_id, limit=limit) if j.kind in kinds]
        for j in jobs:
            if j.status in ("queued", "running") and not _alive(url, j.id, j.pid):
                try:
                    queries.finish_job(s, j.id, "failed", error=f"the worker process stopped without finishing; see {job_log_path(j.id, j.kind)}")
                except queries.QueryError:
                    pass  # it finished meanwhile
        jobs = [j for j in queries.list_jobs(s, project_id, limit=limit) if j.kind in kinds]
    for key in [k for k, p in _children.items() if p.poll() is not None]:
        _children.pop(key, None)  # finished workers, reaped by poll()
    return jobs


class _Heartbeat(threading.Thread):
    """Beats the job's heartbeat every few seconds; sets ``cancel`` when the job was cancelled."""

    def __init__(self, url: str, job_id: int, cancel: threading.Event, interval: float = HEARTBEAT_S):
        super().__init__(daemon=True, name=f"job-{job_id}-heartbeat")
        self.url, self.job_id, self.cancel, self.interval = url, job_id, cancel, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with session_scope(self.url) as s:
                    queries.update_job(s, self.job_id)
            except queries.JobCancelledError:
                self.cancel.set()
                return
            except Exception:  # noqa: BLE001 - a busy database must not kill the worker
                continue


def run_as_job(url: str, job_id: int, work: Callable[[threading.Event], Any]) -> Any:
    """Run ``work(cancel)`` as job ``job_id``: running with a heartbeat, then done, failed
    or cancelled with its result. ``work`` returns a RunReport-like object with to_json() (and
    optionally a ``message`` attribute: the job's final message)."""
    cancel = threading.Event()
    with session_scope(url) as s:
        queries.update_job(s, job_id, pid=os.getpid(), message="loading")
    beat = _Heartbeat(url, job_id, cancel)
    beat.start()
    try:
        report = work(cancel)
    except BaseException as exc:
        with session_scope(url) as s:
            queries.finish_job(s, job_id, "failed", error=f"{type(exc).__name__}: {exc}", message="failed")
        raise
    finally:
        beat.stopped.set()
    result = report.to_json()
    with session_scope(url) as s:
        if getattr(report, "cancelled", False):
            queries.finish_job(s, job_id, "cancelled", result=result, message="cancelled")
        else:
            failed = result.get("failed", 0)
            message = getattr(report, "message", None) or f"done: {result.get('items')} item(s)" + (f", {failed} failure(s)" if failed else "")
            queries.finish_job(s, job_id, "done", result=result, message=message)
    return report
