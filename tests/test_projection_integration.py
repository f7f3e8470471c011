"""The default projection (aligner + method) with the real encoder on 20 Europarl en-de pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def encoder_dir() -> Path:
    path = Path(settings().encoder)
    if not (path / "config.json").is_file():
        pytest.skip(f"default encoder not found at {path} (run `python -m core.cli models prepare` first)")
    return path


def test_default_projection_on_europarl_en_de(europarl_dir, encoder_dir):
    from core.projection import DEFAULT_ALIGNER, DEFAULT_METHOD
    from core.projection.bench import bench_projection

    record = bench_projection(
        europarl_dir / "en-europarl.test.conll02", europarl_dir / "de-europarl.test.conll02", limit=20
    )
    assert record["method"] == DEFAULT_METHOD and record["aligner"] == DEFAULT_ALIGNER
    assert record["sentences"] == 20
    assert record["align_precision"] in ("float32", "bfloat16")  # what the SimAlign aligner computed in
    assert record["projected"] + record["unprojected"] == record["source_entities"] > 0
    assert record["f1"] >= 0.8, record  # the full 799 pairs reach ~0.93 (bench/RESULTS.md)
