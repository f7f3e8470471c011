"""``--engine ray``: the same stages as Ray Data actors give exactly the local result.

One local Ray (``ray.init(num_cpus=2)``) for the module; a handful of items, so the test
costs mostly Ray's start-up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from db.engine import dispose_engine, init_db
from tests.test_pipeline import WORDS, config, exported, new_project, run_pipeline, table_counts, write_translations

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def test_ray_engine_exports_exactly_what_the_local_engine_exports(local_ray, tmp_path: Path) -> None:
    tsv = write_translations(tmp_path / "es.tsv")
    results = {}
    for engine in ("local", "ray"):
        url = f"sqlite:///{tmp_path / f'{engine}.db'}"
        init_db(url)
        try:
            pid = new_project(url)
            report = run_pipeline(url, pid, config(tsv, batch_size=3), engine=engine, progress=False, ray_actors=1)
            assert report.engine == engine and report.failed == 0 and report.status["complete"]
            assert [st.items for st in report.stages] == [len(WORDS)] * 4
            assert [st.batches for st in report.stages] == [3] * 4
            results[engine] = (exported(url, pid), table_counts(url))
        finally:
            dispose_engine(url)
    assert results["ray"] == results["local"]
    assert any(spans for _, _, spans in results["ray"][0])


def test_a_stage_that_cannot_load_stops_the_ray_run(local_ray, tmp_path: Path) -> None:
    from core.pipeline import StageLoadError

    url = f"sqlite:///{tmp_path / 'bad.db'}"
    init_db(url)
    try:
        pid = new_project(url)
        with pytest.raises(StageLoadError, match="unknown teacher"):
            run_pipeline(url, pid, config(write_translations(tmp_path / "es.tsv"), teacher="nope:x"), engine="ray", progress=False)
    finally:
        dispose_engine(url)
