"""``bench transfer`` on toy files: model vs data transfer vs both, real translate/align/project
path (a provided translation file and the exact-match aligner stand in for Apertium and SimAlign)."""

from __future__ import annotations

import json

import pytest

from core.errors import BenchError
from core.student import transfer_bench
from tests.test_student import fast_config, make_tiny_encoder

PEOPLE, PLACES = ["anna", "bob", "carla", "dieter"], ["paris", "berlin", "rome", "madrid"]


def _conll(path, rows) -> str:
    lines = []
    for words, tags in rows:
        lines += [f"{w} {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _rows(n: int, date: bool = False):
    rows = []
    for i in range(n):
        words = [PEOPLE[i % 4], "met", "us", "in", PLACES[(i // 2) % 4], "."]
        tags = ["B-PER", "O", "O", "O", "B-LOC", "O"]
        if date:
            words, tags = words[:-1] + ["monday", "."], tags[:-1] + ["B-DATE", "O"]
        rows.append((words, tags))
    return rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture()
def files(tmp_path):
    train = _conll(tmp_path / "train.conll", _rows(12))
    test = _conll(tmp_path / "test.conll", _rows(6, date=True))
    # the "translation" of each training sentence, line by line: the same words
    (tmp_path / "mt.txt").write_text("".join(" ".join(w) + "\n" for w, _ in _rows(12)), encoding="utf-8")
    return train, test, f"provided:{tmp_path / 'mt.txt'}"


def test_every_setting_is_trained_per_seed_and_scored_on_shared_labels(tiny, files, monkeypatch):
    import core.projection

    monkeypatch.setattr(core.projection, "DEFAULT_ALIGNER", "exact")
    monkeypatch.setattr(core.projection, "DEFAULT_METHOD", "greedy")  # hard links only: no encoder pass
    train, test, translator = files
    result = transfer_bench.bench_transfer(train, [test], "xx", translator, config=fast_config(tiny, epochs=2), seeds=2, progress=False)
    assert result["train"] == 12 and result["seeds"] == [1, 2]
    # the projection ran for real: every PER and LOC of the source reached the "translation"
    assert result["projection"]["source_spans"] == 24 and result["projection"]["projected_spans"] == 24
    entry = result["tests"][test]
    assert entry["labels"] == ["LOC", "PER"] and entry["labels_left_out"] == ["DATE"]
    for name in ("model_transfer", "data_transfer", "both"):
        assert len(entry[f"{name}_f1"]["per_seed"]) == 2 and 0.0 <= result[f"{name}_f1"] <= 1.0
        assert result[f"{name}_f1"] == entry[f"{name}_f1"]["mean"] and name in result["std"]
    assert {r["run"]: r["sentences"] for r in result["runs"]} == {"model_transfer": 12, "data_transfer": 12, "both": 24}
    assert all(r["mode"] == "fine-tune" for r in result["runs"]) and result["seconds_per_epoch_per_1000"] > 0
    assert "data_minus_model" in result and isinstance(result["data_minus_model_over_2std"], bool)
    assert result["peak_mb"] > 0 and result["seconds"] > 0
    json.dumps(result)  # one JSON line


def test_model_only_with_a_saved_student_trains_nothing(tiny, files, tmp_path):
    from core.formats import read
    from core.student.model import save_student
    from core.student.train import train_student

    train, test, _ = files
    student = train_student(read(train, lang="en"), (), fast_config(tiny, epochs=2, side="source"))
    folder = save_student(student, tmp_path / "teacher")
    result = transfer_bench.bench_transfer("", [test, train], "xx", model_student=str(folder), progress=False)
    assert result["runs"] == [] and set(result["tests"]) == {test, train}
    assert len(result["tests"][test]["model_transfer_f1"]["per_seed"]) == 1
    assert "data_transfer_f1" not in result and result["tests"][train]["labels_left_out"] == []


def test_a_test_file_sharing_no_label_is_refused_by_name(tiny, tmp_path, files):
    train, _, _ = files
    other = _conll(tmp_path / "dates.conll", [(["monday", "."], ["B-DATE", "O"])])
    with pytest.raises(BenchError, match="dates.conll"):
        transfer_bench.bench_transfer(train, [other], "xx", config=fast_config(tiny), model_only=True, progress=False)


def test_complete_only_drops_translations_that_lost_an_entity(tiny, files, monkeypatch, tmp_path):
    import core.projection

    monkeypatch.setattr(core.projection, "DEFAULT_ALIGNER", "exact")
    monkeypatch.setattr(core.projection, "DEFAULT_METHOD", "greedy")  # hard links only: no encoder pass
    train, test, _ = files
    lines = [" ".join(w) for w, _ in _rows(12)]
    lines[3] = "met us in " + lines[3].split()[4] + " ."  # the person is lost in translation
    (tmp_path / "mt2.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = transfer_bench.bench_transfer(train, [test], "xx", f"provided:{tmp_path / 'mt2.txt'}", config=fast_config(tiny, epochs=1),
                                           seeds=1, complete_only=True, settings=("data_transfer",), progress=False)
    assert result["projection"]["incomplete_sentences"] == 1 and result["projection"]["trained_on"] == 11
    assert [r["run"] for r in result["runs"]] == ["data_transfer"] and result["runs"][0]["sentences"] == 11
    assert "model_transfer_f1" not in result and "data_minus_model" not in result
