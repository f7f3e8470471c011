"""Background jobs: a separate process per job, a row in the jobs table, one reporter.

``start_job_process`` creates the job row and starts ``python -m core.cli ... --job-id N``
in its own process (and session, so it outlives a Streamlit rerun or restart); the page
only polls the row. In the worker, ``JobReporter`` is the one way work reports: throttled
progress and a live result, a heartbeat from a thread (so a long batch or model load does
not look dead), cancellation (``cancel`` is set when the row says cancelled), and the end
(done, failed with the error, or cancelled). Its error policy: a busy database never
stops the work (the write is retried at the next report); a cancelled job sets ``cancel``;
anything else is a bug and propagates. A worker that dies without finishing (killed, out
of memory) is found by ``refresh_jobs`` and its job marked failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.config import REPO_ROOT, settings
from db.engine import side_session, url_of
from db.errors import JobCancelledError, QueryError
from db.jobs import JobInfo, cancel_job, create_job, fail_stale_jobs, finish_job, get_job, list_jobs, set_job_live_result, update_job

__all__ = [
    "HEARTBEAT_S",
    "REPORT_INTERVAL_S",
    "STALE_AFTER_S",
    "JobReporter",
    "start_job_process",
    "refresh_jobs",
    "request_cancel",
    "job_log_path",
    "run_as_job",
]

HEARTBEAT_S = 10.0
REPORT_INTERVAL_S = 1.0  # at most one progress write per interval (forced reports excepted)
STALE_AFTER_S = 120.0

_children: dict[tuple[str, int], subprocess.Popen] = {}  # (database URL, job id) -> worker started here


def job_log_path(job_id: int, kind: str) -> Path:
    return settings().data_dir / "jobs" / f"{kind}-{job_id}.log"


class JobReporter:
    """Progress, heartbeat, cancellation and the outcome of one job (module docstring).

    Writes go through a session of their own (db.engine.side_session), so they commit while
    the work's transaction is open. ``job_id`` None: a run without a job row (reports are
    dropped, ``cancel`` still works).
    """

    def __init__(self, s: Session, job_id: int | None, cancel: threading.Event | None = None, interval: float | None = None):
        self.session, self.job_id = s, job_id
        self.cancel = cancel if cancel is not None else threading.Event()
        self.interval = REPORT_INTERVAL_S if interval is None else interval
        self._last = 0.0
        self._lock = threading.Lock()
        self._beat: threading.Thread | None = None
        self._stopped = threading.Event()

    def report(self, *, force: bool = False, live: Any = None, **fields: Any) -> None:
        """Write progress (``done``, ``total``, ``progress``, ``message``, ``pid``) and an
        optional live result; throttled to one write per ``interval`` unless ``force``."""
        if self.job_id is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        with self._lock:
            self._last = now
            try:
                with side_session(self.session) as other:
                    update_job(other, self.job_id, **fields)
                    if live is not None:
                        set_job_live_result(other, self.job_id, live)
            except JobCancelledError:
                self.cancel.set()
            except OperationalError:  # a busy database must not stop the work; the next report retries
                self._last = 0.0

    def start_heartbeat(self, every: float = HEARTBEAT_S) -> None:
        """Beat the heartbeat from a thread until finish (a long step does not look dead)."""
        if self.job_id is None or self._beat is not None:
            return

        def beat() -> None:
            while not self._stopped.wait(every) and not self.cancel.is_set():
                try:
                    self.report(force=True)
                except Exception:  # noqa: BLE001 - a thread cannot raise to anyone; the next beat retries
                    continue

        self._beat = threading.Thread(target=beat, daemon=True, name=f"job-{self.job_id}-heartbeat")
        self._beat.start()

    def finish(self, status: str, *, result: Any = None, error: str | None = None, message: str | None = None) -> None:
        self._stopped.set()
        if self.job_id is None:
            return
        with self._lock, side_session(self.session) as other:
            finish_job(other, self.job_id, status, result=result, error=error, message=message)


def run_as_job(s: Session, job_id: int, work: Callable[[JobReporter], Any]) -> Any:
    """Run ``work(reporter)`` as job ``job_id``: running with a heartbeat, then done, failed
    or cancelled with its result. ``work`` returns an object with ``to_json()`` (and
    optionally ``cancelled`` and ``message``). Raises JobCancelledError when the job was
    cancelled before it started."""
    reporter = JobReporter(s, job_id)
    with side_session(s) as other:
        update_job(other, job_id, pid=os.getpid(), message="loading")
    reporter.start_heartbeat()
    try:
        outcome = work(reporter)
    except BaseException as exc:
        reporter.finish("failed", error=f"{type(exc).__name__}: {exc}", message="failed")
        raise
    result = outcome.to_json()
    if getattr(outcome, "cancelled", False):
        reporter.finish("cancelled", result=result, message="cancelled")
    else:
        failed = result.get("failed", 0) if isinstance(result, dict) else 0
        message = getattr(outcome, "message", None) or f"done: {result.get('items')} item(s)" + (f", {failed} failure(s)" if failed else "")
        reporter.finish("done", result=result, message=message)
    return outcome


def start_job_process(s: Session, kind: str, project_id: int | None, params: Mapping[str, Any], cli_args: Sequence[str]) -> JobInfo:
    """Create a ``kind`` job row, commit it, and start ``python -m core.cli *cli_args --db URL
    --job-id N`` as its worker in its own process and session; returns at once."""
    job = create_job(s, kind, project_id, params=params, message="starting")
    s.commit()  # the worker reads the row from its own connection
    url = url_of(s)
    cmd = [sys.executable, "-m", "core.cli", *cli_args, "--db", url, "--job-id", str(job.id)]
    log_path = job_log_path(job.id, kind)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy()
        )
    _children[(url, job.id)] = proc
    try:
        return update_job(s, job.id, pid=proc.pid)
    except QueryError:  # the worker already finished, or the job was cancelled
        return get_job(s, job.id)


def request_cancel(s: Session, job_id: int) -> JobInfo:
    """Ask a job's worker (of any kind) to stop: it sees the flag at its next report."""
    return cancel_job(s, job_id, "cancel requested: stopping after the step in flight")


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


def refresh_jobs(s: Session, project_id: int | None = None, limit: int = 20, kind: str | Sequence[str] | None = None) -> list[JobInfo]:
    """The jobs (of ``kind``: one or several, default all; newest first), after failing
    those whose worker is gone."""
    kinds = None if kind is None else ({kind} if isinstance(kind, str) else set(kind))
    url = url_of(s)
    fail_stale_jobs(s, STALE_AFTER_S)
    for j in list_jobs(s, project_id, limit=limit):
        if (kinds is None or j.kind in kinds) and j.status in ("queued", "running") and not _alive(url, j.id, j.pid):
            try:
                finish_job(s, j.id, "failed", error=f"the worker process stopped without finishing; see {job_log_path(j.id, j.kind)}")
            except QueryError:
                pass  # it finished meanwhile
    for key in [k for k, p in _children.items() if p.poll() is not None]:
        _children.pop(key, None)  # finished workers, reaped by poll()
    return [j for j in list_jobs(s, project_id, limit=limit) if kinds is None or j.kind in kinds]
