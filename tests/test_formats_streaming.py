"""Large and badly encoded files: streaming reads and writes, chunked imports, mojibake.

A 50 MB CoNLL file used to be read whole (3.3 GB RSS); the line formats now stream, and an
import holds one chunk. Text encoded twice ("CoruÃ±a") is found with ftfy and reported with
its first line, or repaired with ``fix_encoding``.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.config import REPO_ROOT
from core.data import Item, Sentence
from core.formats import FormatError, ReadReport, iter_read, read, write
from db import items as db_items
from db import models as orm
from db.engine import dispose_engine, init_db, session_scope
from db.errors import ItemImportError
from db.projects import create_project
from services.projects import import_upload
from tests.conftest import SHARED

CONLL02_ES = SHARED / "data" / "conll2002-es" / "dev.conll"


def _conll(path: Path, sentences: int, bad_at: int | None = None) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(sentences):
            if i == bad_at:
                f.write("broken line with four\tcolumns\there\tX\n\n")
                continue
            f.write(f"Anna\tB-PER\nvisits\tO\nthe\tO\nUnited\tB-LOC\nStates\tI-LOC\n{i}\tO\n.\tO\n\n")
    return path


def _double_encoded(text: str) -> str:
    """What a copy in circulation holds: the UTF-8 bytes read as Latin-1 and written again."""
    return text.encode("utf-8").decode("latin-1")


# ----------------------------------------------------------------------------- streaming


def test_iter_read_yields_items_before_the_file_is_read_whole(tmp_path):
    path = _conll(tmp_path / "late-error.conll", 50, bad_at=40)
    items = iter_read(path, "conll", scheme="IOB2")  # a given scheme: no first pass over the file
    first = next(items)
    assert first.source.words[0] == "Anna" and [s.label for s in first.source_spans] == ["PER", "LOC"]
    with pytest.raises(FormatError, match=r"late-error.conll:\d+: line \d+ has 4 columns, expected 2"):
        list(items)
    # The whole-file reader fails before returning anything, naming the same line.
    with pytest.raises(FormatError, match="has 4 columns"):
        read(path, "conll")


def test_convert_streams_in_bounded_memory(tmp_path):
    path = _conll(tmp_path / "big.conll", 20000)  # ~1 MB, 140,000 tokens
    tracemalloc.start()
    try:
        write(iter_read(path, "conll"), tmp_path / "big.jsonl")
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        items = read(path, "conll")
        _, whole_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(items) == 20000
    assert len((tmp_path / "big.jsonl").read_text(encoding="utf-8").splitlines()) == 20000
    # The streamed conversion holds one item (plus the id index); the whole read holds them all.
    assert streamed_peak < whole_peak / 5, (streamed_peak, whole_peak)
    # The JSONL reader streams too and gives back the same items.
    again = list(iter_read(tmp_path / "big.jsonl"))
    assert [it.source.words for it in again[:3]] == [it.source.words for it in items[:3]]
    assert [s.key() for s in again[-1].source_spans] == [s.key() for s in items[-1].source_spans]


def test_a_failing_streamed_write_leaves_no_file(tmp_path):
    path = _conll(tmp_path / "bad.conll", 30, bad_at=20)
    out = tmp_path / "out.jsonl"
    with pytest.raises(FormatError, match="has 4 columns"):
        write(iter_read(path, "conll", scheme="IOB2"), out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.conll"]


def test_convert_command_reports_items_and_stays_atomic(tmp_path):
    src = _conll(tmp_path / "in.conll", 300)
    run = subprocess.run([sys.executable, "-m", "core.cli", "convert", str(src), str(tmp_path / "out.conll")],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "300 items" in run.stderr
    assert (tmp_path / "out.conll").read_text(encoding="utf-8") == src.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- imports


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELBRIDGE_DATA", str(tmp_path / "data"))
    url = f"sqlite:///{tmp_path / 'stream.db'}"
    init_db(url)
    with session_scope(url) as s:
        pid = create_project(s, "big", "en", "es", []).id
    yield url, pid
    dispose_engine(url)


def _count(url: str) -> int:
    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(orm.Item))


def test_import_consumes_a_generator_in_chunks(project, monkeypatch):
    url, pid = project
    monkeypatch.setattr(db_items, "IMPORT_CHUNK", 7)
    pulled: list[int] = []

    def items():
        for i in range(50):
            pulled.append(i)
            yield Item(f"i{i}", Sentence.from_words(["Hola", str(i)]))

    progress: list[tuple[int, int]] = []
    with session_scope(url) as s:
        rep = db_items.import_items(s, pid, items(), on_progress=lambda d, t: progress.append((d, t)))
    assert rep.added == 50 and _count(url) == 50
    assert progress[0] == (7, 7) and progress[-1] == (50, 50)  # one report per chunk
    with session_scope(url) as s:
        positions = list(s.scalars(select(orm.Item.position).order_by(orm.Item.position)))
    assert positions == list(range(50))


def test_a_bad_item_late_in_a_streamed_import_stores_nothing(project, monkeypatch):
    url, pid = project
    monkeypatch.setattr(db_items, "IMPORT_CHUNK", 5)

    def items():
        for i in range(30):
            yield Item(f"i{i}" if i != 23 else "", Sentence.from_words(["Hola", str(i)]))
        yield Item("i3", Sentence.from_words(["again"]))  # repeated id across chunks: skipped

    with pytest.raises(ItemImportError, match=r"position 23 .*non-empty string"):
        with session_scope(url) as s:
            db_items.import_items(s, pid, items())
    assert _count(url) == 0


def test_web_import_of_a_file_with_a_late_error_stores_nothing(project, tmp_path, monkeypatch):
    url, pid = project
    monkeypatch.setattr(db_items, "IMPORT_CHUNK", 10)
    data = _conll(tmp_path / "late.conll", 60, bad_at=55).read_bytes()
    with session_scope(url) as s:
        result = import_upload(s, pid, "late.conll", data)
    assert result.added == 0 and len(result.errors) == 1
    assert result.errors[0].startswith("late.conll:") and "has 4 columns" in result.errors[0]
    assert str(tmp_path) not in result.errors[0]
    assert _count(url) == 0
    ok = _conll(tmp_path / "ok.conll", 60).read_bytes()
    with session_scope(url) as s:
        assert import_upload(s, pid, "ok.conll", ok).added == 60
    assert _count(url) == 60


def test_upload_limit_is_what_an_import_holds():
    """The upload is held in memory by Streamlit and copied once to disk; the import itself
    streams. 200 MB keeps a worst-case upload well inside this machine's memory."""
    import tomllib

    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] <= 200


# ----------------------------------------------------------------------------- mojibake


def test_mojibake_is_reported_with_file_and_first_line(tmp_path):
    path = tmp_path / "es.conll"
    path.write_text("El\tO\ntiempo\tO\n\nLa\tO\n" + _double_encoded("Coruña\tB-LOC\n") + _double_encoded("España\tB-LOC\n\n"), encoding="utf-8")
    report = ReadReport()
    items = read(path, "conll", report=report)
    assert items[1].source.words[1] == "CoruÃ±a"  # read as written
    [warning] = [w for w in report.warnings if "encoded twice" in str(w)]
    assert str(warning).startswith(f"{path}:5: 2 lines look UTF-8 encoded twice")
    assert "--fix-encoding" in str(warning) and "Coruña" in str(warning)
    report = ReadReport()
    fixed = read(path, "conll", report=report, fix_encoding=True)
    assert fixed[1].source.words == ["La", "Coruña", "España"]
    assert [s.label for s in fixed[1].source_spans] == ["LOC", "LOC"]
    assert any("repaired text encoded twice" in str(w) for w in report.warnings)


def test_jsonl_mojibake_is_reported_not_repaired(tmp_path):
    path = tmp_path / "es.jsonl"
    write([Item("a", Sentence.from_words(["La", _double_encoded("Coruña")]))], path)
    report = ReadReport()
    [item] = read(path, report=report)
    assert item.source.words[1] == "CoruÃ±a"
    assert any("encoded twice" in str(w) and "character offsets" in str(w) for w in report.warnings)
    with pytest.raises(TypeError, match="fix_encoding"):
        read(path, fix_encoding=True)


def test_convert_fix_encoding_on_a_double_encoded_conll2002_copy(tmp_path):
    if not CONLL02_ES.is_file():
        pytest.skip(f"CoNLL-2002 Spanish not found at {CONLL02_ES} (needs ../shared beside the repository)")
    clean = read(CONLL02_ES, "conll", report=ReadReport())
    report = ReadReport()
    read(CONLL02_ES, "conll", report=report)
    assert not [w for w in report.warnings if "encoded twice" in str(w)]  # no false alarm on the real file
    broken = tmp_path / "es-dev-mojibake.conll"
    broken.write_text(_double_encoded(CONLL02_ES.read_text(encoding="utf-8")), encoding="utf-8")
    out = tmp_path / "fixed.conll"
    cmd = [sys.executable, "-m", "core.cli", "convert", str(broken), str(out)]
    warned = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert warned.returncode == 0, warned.stderr
    assert f"{broken}:" in warned.stderr and "encoded twice" in warned.stderr and "--fix-encoding" in warned.stderr
    repaired = subprocess.run([*cmd, "--fix-encoding"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert repaired.returncode == 0, repaired.stderr
    fixed = read(out, "conll", report=ReadReport())
    assert [it.source.words for it in fixed] == [it.source.words for it in clean]
    assert [[s.key() for s in it.source_spans] for it in fixed] == [[s.key() for s in it.source_spans] for it in clean]
    write(fixed[:2], tmp_path / "x.jsonl")
    rejected = subprocess.run([sys.executable, "-m", "core.cli", "convert", str(tmp_path / "x.jsonl"), str(out), "--fix-encoding"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert rejected.returncode == 2 and "CoNLL input (token files) only" in rejected.stderr
