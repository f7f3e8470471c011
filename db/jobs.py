"""Jobs: background work (pipeline runs, training, prediction) as rows a page can poll.

A worker moves its job along with update_job (progress and a heartbeat) and finish_job;
cancel_job marks it cancelled and the worker sees that at its next update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db import models as orm
from db.codecs import utc
from db.errors import JobCancelledError, NotFoundError, QueryError, check_choice, check_json
from db.models import JOB_FINAL_STATUSES, JOB_STATUSES, utcnow
from db.projects import get_project

__all__ = [
    "JobInfo",
    "create_job",
    "get_job",
    "list_jobs",
    "update_job",
    "set_job_live_result",
    "finish_job",
    "cancel_job",
    "fail_stale_jobs",
]


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: int
    project_id: int | None
    kind: str
    status: str
    progress: float
    done: int
    total: int | None
    message: str | None
    error: str | None
    params: dict[str, Any]
    result: Any
    pid: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


def _info(j: orm.Job) -> JobInfo:
    return JobInfo(
        j.id,
        j.project_id,
        j.kind,
        j.status,
        float(j.progress),
        int(j.done),
        j.total,
        j.message,
        j.error,
        dict(j.params or {}),
        j.result,
        j.pid,
        utc(j.created_at),
        utc(j.started_at),
        utc(j.finished_at),
        utc(j.heartbeat_at),
    )


def _job_row(s: Session, job_id: int) -> orm.Job:
    j = s.get(orm.Job, job_id, populate_existing=True)
    if j is None:
        raise NotFoundError(f"no job with id {job_id}")
    return j


def create_job(
    s: Session,
    kind: str,
    project_id: int | None = None,
    params: Mapping[str, Any] | None = None,
    total: int | None = None,
    message: str | None = None,
) -> JobInfo:
    """A queued job; the worker moves it along with update_job and finish_job."""
    if not kind:
        raise QueryError("a job needs a kind")
    params_dict = dict(params or {})
    check_json(params_dict, f"params of job {kind!r}")
    if project_id is not None:
        get_project(s, project_id)
    j = orm.Job(kind=kind, project_id=project_id, params=params_dict, total=total, message=message, status="queued", progress=0.0, done=0)
    s.add(j)
    s.flush()
    return _info(j)


def get_job(s: Session, job_id: int) -> JobInfo:
    return _info(_job_row(s, job_id))


def list_jobs(
    s: Session, project_id: int | None = None, status: str | Sequence[str] | None = None, limit: int = 50
) -> list[JobInfo]:
    """Newest first; all projects when ``project_id`` is None."""
    stmt = select(orm.Job).order_by(orm.Job.created_at.desc(), orm.Job.id.desc()).limit(limit)
    if project_id is not None:
        stmt = stmt.where(orm.Job.project_id == project_id)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        for st in statuses:
            check_choice(st, JOB_STATUSES, "job status")
        stmt = stmt.where(orm.Job.status.in_(statuses))
    return [_info(j) for j in s.scalars(stmt.execution_options(populate_existing=True))]


def update_job(
    s: Session,
    job_id: int,
    *,
    progress: float | None = None,
    done: int | None = None,
    total: int | None = None,
    message: str | None = None,
    pid: int | None = None,
) -> JobInfo:
    """Report progress (and a heartbeat). The first update moves a queued job to running.

    Progress is ``done / total`` when not given. Raises JobCancelledError when the job was
    cancelled meanwhile (the worker stops), QueryError when it already finished.
    """
    now = utcnow()
    values: dict[str, Any] = {"status": "running", "heartbeat_at": now, "started_at": func.coalesce(orm.Job.started_at, now)}
    if done is not None:
        values["done"] = int(done)
    if total is not None:
        values["total"] = int(total)
    if progress is None and done is not None:
        denominator = total if total is not None else s.scalar(select(orm.Job.total).where(orm.Job.id == job_id))
        if denominator:
            progress = done / denominator
    if progress is not None:
        if not (0.0 <= progress <= 1.0 + 1e-9):
            raise QueryError(f"job {job_id}: progress {progress} outside [0, 1]")
        values["progress"] = min(float(progress), 1.0)
    if message is not None:
        values["message"] = message
    if pid is not None:
        values["pid"] = int(pid)
    result = s.execute(
        update(orm.Job)
        .where(orm.Job.id == job_id, orm.Job.status.in_(("queued", "running")))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    j = _job_row(s, job_id)
    if result.rowcount == 0:
        if j.status == "cancelled":
            raise JobCancelledError(f"job {job_id} ({j.kind}) was cancelled")
        raise QueryError(f"job {job_id} ({j.kind}) already finished with status {j.status}")
    return _info(j)


def finish_job(
    s: Session,
    job_id: int,
    status: str,
    result: Any = None,
    error: str | None = None,
    message: str | None = None,
) -> JobInfo:
    """End a job as done, failed or cancelled. A job cancelled meanwhile stays cancelled."""
    check_choice(status, JOB_FINAL_STATUSES, "final job status")
    check_json(result, f"result of job {job_id}")
    now = utcnow()
    values: dict[str, Any] = {"status": status, "finished_at": now, "heartbeat_at": now, "result": result, "error": error}
    if status == "done":
        values["progress"] = 1.0
    if message is not None:
        values["message"] = message
    res = s.execute(
        update(orm.Job)
        .where(orm.Job.id == job_id, orm.Job.status.in_(("queued", "running")))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    j = _job_row(s, job_id)
    if res.rowcount == 0 and j.status != "cancelled":
        raise QueryError(f"job {job_id} ({j.kind}) already finished with status {j.status}")
    return _info(j)


def cancel_job(s: Session, job_id: int, message: str | None = None) -> JobInfo:
    """Mark a queued or running job cancelled; its worker sees it at its next update_job."""
    j = _job_row(s, job_id)
    if j.status in ("queued", "running"):
        now = utcnow()
        s.execute(
            update(orm.Job)
            .where(orm.Job.id == job_id, orm.Job.status.in_(("queued", "running")))
            .values(status="cancelled", finished_at=now, message=message or "cancelled")
            .execution_options(synchronize_session=False)
        )
        j = _job_row(s, job_id)
    return _info(j)


def fail_stale_jobs(s: Session, max_silence_s: float) -> list[int]:
    """Mark running jobs without a heartbeat for ``max_silence_s`` seconds as failed (their
    worker died); return their ids."""
    limit = utcnow() - timedelta(seconds=max_silence_s)
    last_sign = func.coalesce(orm.Job.heartbeat_at, orm.Job.started_at, orm.Job.created_at)
    ids = list(s.scalars(select(orm.Job.id).where(orm.Job.status == "running", last_sign < limit)))
    if ids:
        s.execute(
            update(orm.Job)
            .where(orm.Job.id.in_(ids), orm.Job.status == "running")
            .values(status="failed", finished_at=utcnow(), error=f"no heartbeat for {max_silence_s:.0f} s: the worker stopped")
            .execution_options(synchronize_session=False)
        )
    return ids


def set_job_live_result(s: Session, job_id: int, result: Any) -> None:
    """Store what a running job has so far (e.g. the loss curve) in its ``result``; the page
    polls it. Raises JobCancelledError when the job was cancelled (the worker stops)."""
    check_json(result, f"live result of job {job_id}")
    res = s.execute(
        update(orm.Job)
        .where(orm.Job.id == job_id, orm.Job.status.in_(("queued", "running")))
        .values(result=result, heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if res.rowcount == 0:
        job = get_job(s, job_id)
        if job.status == "cancelled":
            raise JobCancelledError(f"job {job_id} ({job.kind}) was cancelled")
        raise QueryError(f"job {job_id} ({job.kind}) already finished with status {job.status}")
