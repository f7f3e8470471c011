"""The projection benchmark on tiny parallel CoNLL files (string-match aligner, no models)."""

from __future__ import annotations

import argparse
import json

import pytest

from cli.bench import register, run_script
from core.errors import BenchError
from core.projection.bench import bench_projection, bench_projection_methods

EN = "Mr\tO\nProdi\tB-PER\nvisited\tO\nTexas\tB-LOC\n\nThe\tO\nUN\tB-ORG\nmet\tO\n\n"
ES = "El\tO\nseñor\tO\nProdi\tB-PER\nvisitó\tO\nTexas\tB-LOC\n\nLa\tO\nONU\tB-ORG\nse\tO\nreunió\tO\n\n"


@pytest.fixture()
def corpus(tmp_path):
    src, tgt = tmp_path / "en.conll", tmp_path / "es.conll"
    src.write_text(EN, encoding="utf-8")
    tgt.write_text(ES, encoding="utf-8")
    return src, tgt


def test_bench_scores_the_projection_of_the_source_gold(corpus):
    src, tgt = corpus
    rec = bench_projection(src, tgt, method="ilp", aligner="exact")
    assert rec["method"] == "ilp" and rec["aligner"] == "exact" and rec["sentences"] == 2
    # Prodi and Texas match as strings; UN/ONU has no link and is reported, not dropped
    assert rec["source_entities"] == 3 and rec["projected"] == 2 and rec["unprojected"] == 1
    assert rec["precision"] == 1.0 and rec["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert rec["f1"] == pytest.approx(0.8, abs=1e-4)
    assert rec["pairs_per_second"] > 0 and rec["seconds"] >= 0
    assert rec["align_precision"] is None  # no embedding aligner ran (the real one: test_projection_integration)


def test_bench_several_methods_share_one_alignment(corpus):
    src, tgt = corpus
    recs = bench_projection_methods(src, tgt, ["heuristic", "greedy"], aligner="exact", limit=1)
    assert [r["method"] for r in recs] == ["heuristic", "greedy"]
    assert all(r["sentences"] == 1 and r["f1"] == 1.0 for r in recs)


def test_bench_user_errors(corpus, tmp_path):
    src, tgt = corpus
    short = tmp_path / "short.conll"
    short.write_text("Prodi\tB-PER\n\n", encoding="utf-8")
    with pytest.raises(BenchError, match="not a parallel corpus"):
        bench_projection(src, short, method="ilp", aligner="exact")
    with pytest.raises(BenchError, match="unknown projection method"):
        bench_projection(src, tgt, method="nope", aligner="exact")
    with pytest.raises(BenchError, match="no such file"):
        bench_projection(tmp_path / "missing.conll", tgt, method="ilp", aligner="exact")


def test_bench_command_line_prints_json_lines(corpus, capsys):
    src, tgt = corpus
    code = run_script("projection", ["--source", str(src), "--target", str(tgt), "--method", "ilp,greedy", "--aligner", "exact",
                 "--option", "threshold=0.5", "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["method"] for r in lines] == ["ilp", "greedy"]
    assert run_script("projection", ["--source", str(src), "--target", str(tgt), "--method", "bogus", "--aligner", "exact"]) == 2
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", "projection", "--source", "a", "--target", "b"])
    assert args.method is None and args.aligner is None
