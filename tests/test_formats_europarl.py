"""Europarl-NER gold files survive every format byte for byte, through the API and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from core.config import REPO_ROOT
from core.formats import ReadReport, read, write

DATA = Path(__file__).parent / "data"
# sentences, entities, tokens (from the corpus README)
FACTS = {"en": (799, 702, 22320), "de": (799, 693, 20187), "es": (799, 697, 23279)}


def conll_file(europarl_dir: Path, lang: str) -> Path:
    return europarl_dir / f"{lang}-europarl.test.conll02"


def run_cli(*args: str, module: str = "core.cli") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("lang", sorted(FACTS))
def test_europarl_reads_as_documented_and_rewrites_exactly(europarl_dir, tmp_path, lang):
    src = conll_file(europarl_dir, lang)
    report = ReadReport()
    items = read(src, report=report)
    assert (len(items), sum(len(i.source_spans) for i in items), sum(len(i.source) for i in items)) == FACTS[lang]
    assert report.warnings == []
    assert items[0].id == f"{lang}-europarl.test:1" and items[0].meta == {}
    assert write(items, tmp_path / "same.conll02").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("via", ["en.jsonl", "en_dataset", "en.parquet", "en.spacy", "en.json"])
def test_europarl_round_trip_through_each_format_is_byte_exact(europarl_dir, tmp_path, via):
    src = conll_file(europarl_dir, "en")
    items = read(src)
    back = read(write(items, tmp_path / via))
    assert [b.id for b in back] == [i.id for i in items]
    assert [b.source for b in back] == [i.source for i in items]
    assert [[s.key() for s in b.source_spans] for b in back] == [[s.key() for s in i.source_spans] for i in items]
    assert write(back, tmp_path / "back.conll02").read_bytes() == src.read_bytes()


def test_cli_conll_jsonl_conll_is_byte_exact(europarl_dir, tmp_path):
    src = conll_file(europarl_dir, "de")
    first = run_cli("convert", str(src), str(tmp_path / "de.jsonl"))
    assert first.returncode == 0, first.stderr
    assert "799 items" in first.stderr
    second = run_cli("convert", "--to", "conll", str(tmp_path / "de.jsonl"), str(tmp_path / "de.out"))
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "de.out").read_bytes() == src.read_bytes()


def test_cli_conll_hf_conll_in_process(europarl_dir, tmp_path):
    src = conll_file(europarl_dir, "es")
    assert main(["convert", str(src), str(tmp_path / "es_ds")]) == 0
    assert main(["convert", "--from", "hf", str(tmp_path / "es_ds"), str(tmp_path / "es.conll02")]) == 0
    assert (tmp_path / "es.conll02").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("module", ["core", "core.cli"])
def test_cli_bad_input_prints_one_line_and_creates_nothing(tmp_path, module):
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris\tB-LOC\nis\tO\n\nBerlin\tB-LOC\tNNP\n", encoding="utf-8")
    result = run_cli("convert", str(bad), str(tmp_path / "out.jsonl"), module=module)
    assert result.stderr.strip().splitlines() == [f"error: {bad}:4: line 4 has 3 columns, expected 2 (as on line 1)"]
    assert result.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.conll"]


def test_cli_prints_repairs_with_file_and_line(tmp_path, capsys):
    src = DATA / "repairs.conll"
    assert main(["convert", str(src), str(tmp_path / "fixed.conll"), "--out-scheme", "BIOES"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {src}:1: I-PER at token 1 without a preceding B-PER" in err
    assert f"warning: {src}:9: label changes from ORG to LOC" in err
    assert "3 warnings" in err
    assert (tmp_path / "fixed.conll").read_text().startswith("Merkel\tS-PER\n")


def test_cli_options_reach_the_formats_and_misuse_is_an_error(tmp_path, capsys):
    src = tmp_path / "mid.txt"
    src.write_text("Paris B-LOC NNP\nis O VBZ\n\n", encoding="utf-8")
    assert main(["convert", "--tag-column", "1", "--lang", "fr", str(src), str(tmp_path / "mid.jsonl")]) == 0
    (item,) = read(tmp_path / "mid.jsonl")
    assert item.source.lang == "fr" and [s.key() for s in item.source_spans] == [(0, 1, "LOC")]
    assert main(["convert", str(tmp_path / "mid.jsonl"), str(tmp_path / "mid.conll"), "--out-sep", "tab"]) == 0
    assert (tmp_path / "mid.conll").read_text() == "Paris\tB-LOC\tNNP\nis\tO\tVBZ\n\n"
    assert main(["convert", "--tag-column", "1", str(tmp_path / "mid.jsonl"), str(tmp_path / "x.conll")]) == 2
    assert "error: --tag-column does not apply to jsonl input" in capsys.readouterr().err
    assert main(["convert", "--labels", "LOC", str(tmp_path / "mid.jsonl"), str(tmp_path / "x.conll")]) == 2
    assert "error: --labels does not apply to conll output" in capsys.readouterr().err
    assert main(["convert", "--labels", "PER,LOC", str(tmp_path / "mid.jsonl"), str(tmp_path / "mid.parquet")]) == 0
    import datasets
    import pyarrow.parquet as pq

    features = datasets.Features.from_arrow_schema(pq.read_schema(tmp_path / "mid.parquet"))
    assert features["ner_tags"].feature.names == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]  # PER fixed though unused
    assert main(["convert", str(src), str(tmp_path / "x.xlsx")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.conll"), str(tmp_path / "y.jsonl")]) == 2
    assert "missing.conll: no such file" in capsys.readouterr().err
    assert not (tmp_path / "x.conll").exists() and not (tmp_path / "y.jsonl").exists()
