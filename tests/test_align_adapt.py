"""Aligner adaptation (core.align.adapt) and the leave-one-pair-out protocol (core.projection.protocol)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.align import AdaptConfig, adapt_encoder, aligner_encoder, get_aligner
from core.align.base import AlignError
from core.errors import BenchError
from core.projection.protocol import DEFAULT_SETTING, Setting, choose_leave_one_out, default_grid
from tests.test_student import make_tiny_encoder

PAIRS = [
    (["anna", "met", "bob", "in", "paris"], ["anna", "traf", "bob", "in", "paris"]),
    (["bob", "met", "the", "anna"], ["bob", "traf", "die", "anna"]),
    (["paris", "and", "berlin"], ["paris", "und", "berlin"]),
] * 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


def test_adaptation_writes_only_the_trained_blocks_and_loads_through_the_one_loader(tiny, tmp_path):
    from safetensors import safe_open

    from core.encoder import load_encoder

    steps = []
    meta = adapt_encoder(PAIRS, tmp_path / "adapted", tiny, AdaptConfig(layer=1, epochs=2, batch_size=4, learning_rate=1e-3),
                         progress=lambda s, t, loss: steps.append((s, t)))  # fmt: skip
    assert meta["steps"] == 2 * math.ceil(len(PAIRS) / 4) == len(steps) and steps[-1] == (6, 6)
    assert meta["pairs"] == len(PAIRS) and meta["guide_links_per_pair"] > 0 and meta["base"] == tiny
    assert json.loads((tmp_path / "adapted" / "adapted.json").read_text())["layers"] == 1
    with safe_open(tmp_path / "adapted" / "encoder.safetensors", "pt") as f:
        saved = set(f.keys())
    assert "embeddings.word_embeddings.weight" not in saved and not any(k.startswith("encoder.layer.1.") for k in saved)

    _, base = load_encoder(tiny, "cpu")
    _, adapted = load_encoder(tmp_path / "adapted", "cpu")
    assert adapted.config.num_hidden_layers == 1 and base.config.num_hidden_layers == 2  # the base is not cut
    assert adapted.get_input_embeddings().weight is base.get_input_embeddings().weight  # shared, not copied
    assert not torch.equal(adapted.encoder.layer[0].output.dense.weight, base.encoder.layer[0].output.dense.weight)  # trained
    assert not any(p.requires_grad for p in adapted.parameters())


def test_the_tuned_aligner_adapts_once_per_corpus_and_shares_its_encoder(tiny, tmp_path, monkeypatch):
    from core.align import adapt as adapt_module

    aligner = get_aligner("simalign-tuned:itermax", model=tiny, layer=1, epochs=1, adapt_batch_size=4, cache_dir=str(tmp_path))
    links = aligner.align(PAIRS)
    assert len(links) == len(PAIRS) and all(links)
    folder = aligner_encoder(aligner)
    assert folder is not None and (tmp_path / folder.rsplit("/", 1)[-1] / "adapted.json").is_file()
    # a second aligner over the same corpus loads the cached adaptation instead of training again
    monkeypatch.setattr(adapt_module, "adapt_encoder", lambda *a, **k: pytest.fail("adapted twice"))
    again = get_aligner("simalign-tuned:itermax", model=tiny, layer=1, epochs=1, adapt_batch_size=4, cache_dir=str(tmp_path))
    assert [sorted((x.src, x.tgt) for x in ls) for ls in again.align(PAIRS)] == [sorted((x.src, x.tgt) for x in ls) for ls in links]
    assert aligner_encoder(again) == folder
    assert aligner_encoder(get_aligner("simalign:itermax")) is None  # the default encoder: nothing to say


def test_the_agreement_objective_trains_too(tiny, tmp_path):
    meta = adapt_encoder(PAIRS, tmp_path / "agree", tiny, AdaptConfig(layer=1, epochs=1, batch_size=4, objective="agreement"))
    from core.encoder import load_encoder

    assert meta["objective"] == "agreement" and meta["steps"] == 3 and meta["guide_links_per_pair"] is None
    _, base = load_encoder(tiny, "cpu")
    _, adapted = load_encoder(tmp_path / "agree", "cpu")
    assert not torch.equal(adapted.encoder.layer[0].attention.self.query.weight, base.encoder.layer[0].attention.self.query.weight)


def test_nested_aligners_are_found_adapted_and_read_for_the_soft_alignment(tiny, tmp_path):
    from core.align import aligner_layers, iter_aligners, prepare_aligners

    combined = get_aligner("union(simalign-tuned:itermax,exact)", **{"simalign-tuned": {"model": tiny, "layer": 1, "epochs": 1,
                                                                                          "adapt_batch_size": 4, "cache_dir": str(tmp_path)}})  # fmt: skip
    assert aligner_encoder(combined) is None  # not adapted yet
    (described,) = prepare_aligners(combined, PAIRS)
    assert described["pairs"] == len(PAIRS)
    assert aligner_encoder(combined) and aligner_encoder(combined).startswith(str(tmp_path))
    assert aligner_layers(combined) == {"layer": 1, "layers": None}
    assert len(list(iter_aligners(combined))) >= 3  # union, the tuned aligner (and its SimAlign), exact
    explicit = get_aligner("simalign:itermax", model=tiny, layers=[1, 2])
    assert aligner_encoder(explicit) == tiny and aligner_layers(explicit) == {"layer": 2, "layers": [1, 2]}
    assert prepare_aligners(explicit, PAIRS) == []


def test_bad_adaptation_requests_say_what_is_wrong(tiny, tmp_path):
    with pytest.raises(AlignError, match="no sentence pair"):
        adapt_encoder([([], ["x"])], tmp_path / "a", tiny, AdaptConfig(layer=1))
    with pytest.raises(AlignError, match="layer 5 asked"):
        adapt_encoder(PAIRS, tmp_path / "a", tiny, AdaptConfig(layer=5))
    with pytest.raises(AlignError, match="alpha"):
        AdaptConfig(alpha=0.0)
    with pytest.raises(AlignError, match="objective must be one of"):
        AdaptConfig(objective="magic")
    with pytest.raises(AlignError, match="unknown method"):
        get_aligner("simalign-tuned:nearest")
    with pytest.raises(AlignError, match="no option"):
        get_aligner("simalign-tuned:itermax", **{"simalign-tuned": {"epochz": 2}})
    assert not (tmp_path / "a").exists()


def test_leave_one_pair_out_chooses_on_the_other_pairs_only():
    scores = {"a": {"de": 0.95, "es": 0.80, "it": 0.81}, "b": {"de": 0.90, "es": 0.85, "it": 0.86}, "c": {"de": 0.91, "es": 0.84, "it": 0.90}}
    choice = choose_leave_one_out(scores, ["de", "es", "it"])
    assert choice["de"]["chosen"] == "c" and choice["de"]["f1"] == 0.91 and choice["de"]["best_on_itself"] == "a"
    assert choice["es"]["chosen"] == "c" and choice["es"]["f1"] == 0.84 and choice["es"]["best_on_itself"] == "b"
    assert choice["it"]["chosen"] == "a" and choice["it"]["chosen_on"] == ["de", "es"]  # a three-way tie: the first
    with pytest.raises(BenchError, match="at least two"):
        choose_leave_one_out(scores, ["de"])


def test_the_default_grid_holds_the_default_and_each_knob():
    grid = default_grid()
    names = [s.name for s in grid]
    assert DEFAULT_SETTING in grid and len(names) == len(set(names))
    assert {s.layer for s in grid} == {7, 8, 9} and {s.aligner for s in grid} == {"simalign:itermax", "simalign:argmax"}
    fused = [s for s in grid if s.method == "greedy-fused" and s.layer == 8 and s.aligner == "simalign:itermax"]
    assert {dict(s.options)["threshold"] for s in fused} == {0.2, 0.3, 0.5} and {dict(s.options)["tau"] for s in fused} == {0.03, 0.05, 0.08}
    assert Setting("simalign:itermax", 8, "heuristic").name == "simalign:itermax@8|heuristic"
    assert Setting("simalign:itermax", 8, "heuristic", (("derived_label", "MISC"),)).name == "simalign:itermax@8|heuristic,derived_label=MISC"
    averaged = Setting("simalign:itermax", (7, 8, 9), "greedy")
    assert averaged.name == "simalign:itermax@7-9|greedy" and averaged.layer_options() == {"layer": 9, "layers": [7, 8, 9]}
    assert len(default_grid(layers=[8, (7, 8, 9)], aligners=["simalign:itermax"])) == 2 * 7 * 2  # x the derived label: off, MISC
    assert {dict(s.options)["derived_label"] for s in grid} == {None, "MISC"} and dict(DEFAULT_SETTING.options)["derived_label"] == "MISC"


def test_the_protocol_bench_reports_each_held_out_pair(tmp_path):
    from core.projection.protocol import bench_protocol
    from tests.test_projection_bench import EN, ES

    (tmp_path / "en.conll").write_text(EN, encoding="utf-8")
    (tmp_path / "es.conll").write_text(ES, encoding="utf-8")
    (tmp_path / "xx.conll").write_text(ES.replace("Texas\tB-LOC", "Tejas\tB-LOC"), encoding="utf-8")  # one entity unmatched as a string
    grid = [Setting("exact", 0, "heuristic"), Setting("exact", 0, "greedy")]
    result = bench_protocol(tmp_path / "en.conll", [tmp_path / "es.conll", tmp_path / "xx.conll"], grid, include_default=False)
    assert result["protocol"] == "leave-one-pair-out" and set(result["held_out"]) == {"es", "xx"} and result["settings"] == 2
    assert result["scores"]["exact@0|heuristic"]["es"] == pytest.approx(0.8) and result["scores"]["exact@0|heuristic"]["xx"] < 0.8
    assert result["held_out"]["es"]["chosen_on"] == ["xx"] and result["held_out"]["es"]["chosen"] in result["scores"]
    assert result["default_f1"] == {} and result["default_mean_f1"] is None
    with pytest.raises(BenchError, match="at least two"):
        bench_protocol(tmp_path / "en.conll", [tmp_path / "es.conll"], grid, include_default=False)


def test_the_adapt_aligner_command_adapts_on_a_file_of_pairs_and_names_a_missing_translation(tiny, tmp_path, capsys):
    from cli.main import main
    from core.encoder import load_encoder

    lines = [json.dumps({"id": f"p{i}", "tokens": src, "translation": {"tokens": tgt}}) for i, (src, tgt) in enumerate(PAIRS)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "adapted"
    assert main(["models", "adapt-aligner", "--data", str(data), "--out", str(out), "--encoder", tiny, "--layer", "1", "--limit", "8",
                 "--no-progress"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["pairs"] == 8 and report["steps"] == 1 and report["base"] == tiny
    assert load_encoder(out, "cpu")[1].config.num_hidden_layers == 1  # an encoder folder the aligners load (model=OUT)

    bare = tmp_path / "bare.jsonl"
    bare.write_text(lines[0] + "\n" + json.dumps({"id": "lonely", "tokens": ["anna"]}) + "\n", encoding="utf-8")
    assert main(["models", "adapt-aligner", "--data", str(bare), "--out", str(tmp_path / "x"), "--encoder", tiny, "--layer", "1"]) == 2
    err = capsys.readouterr().err
    assert "bare.jsonl" in err and "lonely" in err and "no translation" in err
    assert not (tmp_path / "x").exists()
