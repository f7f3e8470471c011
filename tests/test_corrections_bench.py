"""``bench corrections`` on a toy language folder with a tiny source model: machine labels,
queue-ordered and random corrections, gold only; DATE (unknown to the model) is left out."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from core.errors import BenchError
from core.student import corrections_bench
from tests.test_student import fast_config, make_tiny_encoder

PEOPLE, PLACES = ["anna", "bob", "carla", "dieter"], ["paris", "berlin", "rome", "madrid"]


def _write(path, n: int, offset: int = 0) -> None:
    lines = []
    for i in range(offset, offset + n):
        words = [PEOPLE[i % 4], "met", "us", "in", PLACES[(i // 2) % 4], "monday", "."]
        tags = ["B-PER", "O", "O", "O", "B-LOC", "B-DATE", "O"]
        lines += [f"{w} {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert-corr"))


@pytest.fixture()
def language(tmp_path, tiny):
    from core.formats import read
    from core.student.model import save_student
    from core.student.train import train_student

    folder = tmp_path / "xyz"
    folder.mkdir()
    _write(folder / "train.txt", 12)
    _write(folder / "dev.txt", 2, 12)
    _write(folder / "test.txt", 4, 14)
    english = tmp_path / "en.txt"
    _write(english, 6)
    items = [it.with_(source_spans=[sp for sp in it.source_spans if sp.label != "DATE"]) for it in read(str(english))]
    source = save_student(train_student(items, (), fast_config(tiny, epochs=1, side="source")), tmp_path / "source-model")
    return folder, str(source)


def test_curves_for_every_order_with_nested_queue_corrections(language, tiny, monkeypatch):
    folder, source = language
    picked: list[list[int]] = []
    original = corrections_bench.queue_order
    monkeypatch.setattr(corrections_bench, "queue_order", lambda u, c: picked.append(list(c)) or original(u, c))
    result = corrections_bench.bench_corrections(folder, source, steps=(0, 2, 4), pool=None, seeds=2, config=fast_config(tiny, epochs=1, silver_threshold=0.0))
    assert result["lang"] == "xyz" and result["labels"] == ["LOC", "PER"] and result["labels_left_out"] == ["DATE"]
    assert set(result["curve"]) == {"queue", "random", "gold_only"}
    assert list(result["curve"]["queue"]) == ["0", "2", "4"] and list(result["curve"]["gold_only"]) == ["2", "4"]
    assert result["curve"]["queue"]["0"] == result["curve"]["random"]["0"]  # the same machine-only student
    assert all(len(v) == 2 for c in result["per_seed"].values() for v in c.values())
    # the queue's second batch is drawn from what the first left: 12, then 10 candidates, per seed
    assert [len(c) for c in picked] == [12, 10, 12, 10]
    assert set(result["auc"]) == set(result["curve"]) and all(0.0 <= a <= 1.0 for a in result["auc"].values())
    assert 0.0 <= result["machine_label_f1"] <= 1.0 and result["pool"] == 12
    # warm retraining (default): each curve goes on from its last student; the first from the source model (start="source", default)
    warm = {(r["run"].split()[2], r["run"].split("N=")[1]): r["warm"] for r in result["runs"] if r["run"].startswith("seed 1 ")}
    assert warm == {("N=0", "0"): True, ("queue", "2"): True, ("queue", "4"): True, ("random", "2"): True, ("random", "4"): True,
                    ("gold", "2"): False, ("gold", "4"): True}  # fmt: skip
    assert result["retrain"] == "warm" and result["start"] == "source"
    json.dumps(result)


def test_scratch_retraining_trains_every_point_anew(language, tiny):
    folder, source = language
    result = corrections_bench.bench_corrections(folder, source, steps=(0, 2), pool=None, seeds=1, orders=("random",),
                                                 config=fast_config(tiny, epochs=1, silver_threshold=0.0), retrain="scratch", start="base")  # fmt: skip
    assert [r["warm"] for r in result["runs"]] == [False, False] and result["retrain"] == "scratch"
    with pytest.raises(BenchError, match="unknown retraining"):
        corrections_bench.bench_corrections(folder, source, steps=(0, 2), pool=None, seeds=1, retrain="lukewarm", start="base")


def test_the_curves_start_from_the_source_model(language, tiny):
    folder, source = language
    result = corrections_bench.bench_corrections(folder, source, steps=(0, 2), pool=None, seeds=1, orders=("random", "gold_only", "gold_only_source"),
                                                 config=fast_config(tiny, epochs=1, silver_threshold=0.0))  # fmt: skip
    warm = {r["run"].split(" ", 2)[2]: r["warm"] for r in result["runs"]}
    # N=0 goes on from the source model; gold only (the baseline) still starts from the pre-trained encoder, its twin from the source
    assert warm == {"N=0": True, "random N=2": True, "gold only N=2": False, "gold only source N=2": True} and result["start"] == "source"
    assert list(result["curve"]["gold_only_source"]) == ["2"] and set(result["auc"]) == {"random", "gold_only", "gold_only_source"}
    with pytest.raises(BenchError, match="need --retrain warm"):
        corrections_bench.bench_corrections(folder, source, steps=(0, 2), pool=None, seeds=1, start="base", retrain="scratch",
                                            orders=("gold_only_source",))  # fmt: skip
    with pytest.raises(BenchError, match="need --retrain warm"):
        corrections_bench.bench_corrections(folder, source, steps=(0, 2), pool=None, seeds=1, start="source", retrain="scratch")
    with pytest.raises(BenchError, match="unknown start"):
        corrections_bench.bench_corrections(folder, source, steps=(0, 2), pool=None, seeds=1, start="teacher")
    base = corrections_bench.bench_corrections(folder, source, steps=(0,), pool=None, seeds=1, orders=("random",),
                                               config=fast_config(tiny, epochs=1, silver_threshold=0.0), start="base")  # fmt: skip
    assert [r["warm"] for r in base["runs"]] == [False] and base["start"] == "base"


def test_queue_order_is_the_review_queues_uncertainty_order():
    assert corrections_bench.queue_order([0.1, None, 0.9, 0.5], [0, 1, 2, 3]) == [2, 3, 0, 1]


def test_bad_requests_name_what_is_wrong(language, tmp_path, capsys):
    folder, source = language
    with pytest.raises(BenchError, match="fewer than the 400 corrections"):
        corrections_bench.bench_corrections(folder, source, steps=(0, 400), pool=None, seeds=1)
    with pytest.raises(BenchError, match="no such folder"):
        corrections_bench.bench_corrections(folder, str(tmp_path / "none"), seeds=1)
    assert main(["bench", "corrections", "--data", str(tmp_path / "missing")]) != 0
    assert "not a folder" in capsys.readouterr().err


def test_subword_fertility_counts_pieces_per_word(tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    out = corrections_bench.subword_fertility(tokenizer, [["anna", "xyzw"], ["met"]])  # whole words 1 + 1, letters 4
    assert out == {"subwords_per_word": 2.0, "words_in_4_or_more": round(1 / 3, 4), "unknown_pieces": 0.0}


def test_worker_processes_draw_the_same_curves_as_one_process(language, tiny, monkeypatch):
    """Each seed's chains share nothing, so two 1-thread worker processes give what one
    1-thread process gives, run for run (the bench's speed-up on 2 cores changes no figure)."""
    import torch

    folder, source = language
    monkeypatch.setattr(corrections_bench, "available_cores", lambda: 2)  # each of 2 workers: 1 thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kwargs = dict(steps=(0, 2, 4), pool=None, seeds=2, config=fast_config(tiny, epochs=1, silver_threshold=0.0))
        alone = corrections_bench.bench_corrections(folder, source, workers=1, **kwargs)
        split = corrections_bench.bench_corrections(folder, source, workers=2, **kwargs)
    finally:
        torch.set_num_threads(threads)
    assert alone["workers"] == 1 and split["workers"] == 2
    assert split["per_seed"] == alone["per_seed"] and split["curve"] == alone["curve"]
    strip = lambda runs: [{k: v for k, v in r.items() if k != "seconds"} for r in runs]  # noqa: E731
    assert strip(split["runs"]) == strip(alone["runs"])  # the same runs, in the same (seed) order


def test_workers_are_one_per_core_on_a_cpu_and_never_more_than_the_chains(monkeypatch):
    monkeypatch.setattr(corrections_bench, "available_cores", lambda: 16)
    assert corrections_bench.resolve_workers("auto", 6, "cpu") == 6
    assert corrections_bench.resolve_workers("auto", 60, "cpu") == 16
    assert corrections_bench.resolve_workers("auto", 6, "cuda") == 1  # the processes would share one GPU
    assert corrections_bench.resolve_workers("3", 2, "cpu") == 2
    with pytest.raises(BenchError, match="at least 1"):
        corrections_bench.resolve_workers(0, 6, "cpu")
    with pytest.raises(BenchError, match="a number or auto"):
        corrections_bench.resolve_workers("many", 6, "cpu")


def test_a_worker_that_dies_is_a_bench_error_that_says_what_to_do(language, tiny, tmp_path, monkeypatch):
    """A worker killed or failing before its first chain breaks the pool: the bench says so and
    how to run without workers, instead of a bare BrokenProcessPool."""
    import sys
    import types

    folder, source = language
    dying = tmp_path / "dies.py"
    dying.write_text("import os\nos._exit(3)\n")  # what a worker that is killed looks like to the pool
    main = types.ModuleType("__main__")
    main.__file__ = str(dying)  # a spawned worker runs the parent's main file first
    monkeypatch.setitem(sys.modules, "__main__", main)
    with pytest.raises(BenchError, match="worker process ended abruptly.*--workers 1"):
        corrections_bench.bench_corrections(folder, source, workers=2, steps=(0, 2), pool=None, seeds=2,
                                            config=fast_config(tiny, epochs=1, silver_threshold=0.0))  # fmt: skip
