"""Scale-out on Ray: the same stages as Ray Data ``map_batches`` over actor pools.

Each row of the dataset is one fixed pipeline batch (its number and item ids), so batches
are exactly those of the local engine and the results are the same. An actor loads the
stage's model once (in ``__init__``), reads its batches from the database with its own
engine (reads only: SQLite in WAL mode serves concurrent readers) and returns the results
as JSON; the driver writes them, batch by batch, in one transaction each - a single writer,
which SQLite needs and PostgreSQL does not mind.

Where Ray runs: ``ray.init()`` joins the cluster named by ``RAY_ADDRESS`` (e.g.
``ray://head:10001`` or ``auto``) or starts a local one. On a cluster the database must be
reachable from every node (PostgreSQL: ``--db postgresql+psycopg2://...``); a SQLite file
works only on one machine. The code travels with the job (``runtime_env.working_dir``); the
nodes need the same Python packages and the models named by the specs.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Callable

from core.config import REPO_ROOT
from core.pipeline.stages import (
    StageBatch,
    StageLoadError,
    StageOutput,
    StageRunner,
    StageSpec,
    decode_batch,
    decode_output,
    encode_batch,
    encode_output,
    run_batch,
)

__all__ = ["ensure_ray", "run_stage_ray", "RayStageWorker"]

# Paths of the repository that workers never need (the working_dir upload stays small).
_EXCLUDES = [".venv/", ".git/", "data/", "tests/", "bench/", "**/__pycache__/", "*.db", "*.db-wal", "*.db-shm"]


def ensure_ray() -> None:
    """Connect to Ray once per process (an already initialised Ray is used as it is)."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or None
    env_vars = {k: v for k, v in os.environ.items() if k.startswith("LABELBRIDGE_")}
    if address is None:
        runtime_env: dict[str, Any] = {"env_vars": {**env_vars, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}}
    else:
        runtime_env = {"working_dir": str(REPO_ROOT), "excludes": _EXCLUDES, "env_vars": env_vars}
    ray.init(address=address, runtime_env=runtime_env, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)


class RayStageWorker:
    """A Ray Data actor: one stage's model, loaded once, run on whole pipeline batches."""

    def __init__(self, url: str, project_id: int, spec: dict[str, Any]):
        self.url = url
        self.project_id = project_id
        self.spec = StageSpec.from_json(spec)
        self.runner = StageRunner(self.spec)

    def __call__(self, rows: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from db.engine import session_scope
        from services.pipeline.store import load_stage_batch

        batches, outputs = [], []
        for index, ids in zip(rows["index"], rows["ids"]):
            with session_scope(self.url) as s:
                batch = load_stage_batch(s, self.project_id, self.spec, int(index), json.loads(ids))
            out = run_batch(self.runner, batch)
            batches.append(encode_batch(batch))
            outputs.append(encode_output(out))
        return {"batch": np.array(batches, dtype=object), "output": np.array(outputs, dtype=object)}


def _actors(spec: StageSpec, n_batches: int, wanted: int | None, gpu: bool) -> int:
    import ray

    resources = ray.cluster_resources()
    slots = int(resources.get("GPU", 0)) if gpu else int(resources.get("CPU", 1))
    return max(1, min(n_batches, wanted or max(1, slots)))


def run_stage_ray(
    url: str,
    project_id: int,
    spec: StageSpec,
    work: list[tuple[int, list[int]]],
    on_result: Callable[[StageBatch, StageOutput, int], None],
    cancel: threading.Event,
    actors: int | None = None,
) -> None:
    """Run one stage over the pending batches on Ray; ``on_result`` writes each batch as it
    comes back (in any order). GPUs are requested per actor when the cluster has them and
    the stage's model uses one."""
    import ray
    import ray.data

    ensure_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    gpu = StageRunner.needs_gpu(spec) and ray.cluster_resources().get("GPU", 0) > 0
    n_actors = _actors(spec, len(work), actors, gpu)
    rows = [{"index": index, "ids": json.dumps(ids)} for index, ids in work]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map_batches(
        RayStageWorker,
        fn_constructor_kwargs={"url": url, "project_id": project_id, "spec": spec.to_json()},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        num_cpus=1,
        num_gpus=1 if gpu else 0,
    )
    k = 0
    try:
        for row in ds.iter_rows():
            k += 1
            on_result(decode_batch(row["batch"]), decode_output(row["output"]), k)
            if cancel.is_set():
                return
    except Exception as exc:  # noqa: BLE001 - Ray wraps actor errors; a load error stops the stage
        if isinstance(exc, StageLoadError) or "StageLoadError" in str(exc):
            raise StageLoadError(_first_line(exc, "StageLoadError")) from exc
        raise


def _first_line(exc: BaseException, marker: str) -> str:
    """The message of the wrapped exception (the last ``...StageLoadError: message`` line)."""
    found = [line.split(f"{marker}: ", 1)[1].strip() for line in str(exc).splitlines() if f"{marker}: " in line]
    return found[-1] if found else (str(exc).splitlines() or [type(exc).__name__])[0]
