"""Batched SimAlign aligner == the simalign package, on a tiny random BERT (and the real encoder)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from cli.bench import run_script
from core.align import SimAlignAligner, align_items, get_aligner
from core.align.bench import bench_align_speed, encoder_gflop, read_conll_words
from core.data import Item, Sentence
from core.encoder import compute_dtype

CORPUS = [
    "the european parliament votes on the report today",
    "das europäische parlament stimmt heute über den bericht ab",
    "madam president , i would like to thank the commission .",
    "frau präsidentin , ich möchte der kommission danken .",
    "el parlamento europeo vota hoy el informe",
]
VOCAB = sorted({w for line in CORPUS for w in line.split()}) + ["Straßburg", "xyzzy", "Kommissionsvorschlag", "1999"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run faster on one thread (no OpenMP hand-offs on a busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A 4-layer random BERT with a small WordPiece vocabulary (words split into several subwords)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=120, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tokenizer = BertTokenizer(tokenizer_object=tok)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def random_pairs(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    # short sentences (networkx' matching in simalign is slow); min(m, n) <= 2 is a special case in itermax
    lengths = [1, 2, 3, 12] + [rng.randint(1, 12) for _ in range(n)]
    return [
        ([rng.choice(VOCAB) for _ in range(rng.choice(lengths))], [rng.choice(VOCAB) for _ in range(rng.choice(lengths))])
        for _ in range(n)
    ]


def simalign_links(model: str, layer: int, pairs, token_type: str = "bpe") -> list[dict[str, list]]:
    from simalign import SentenceAligner

    ref = SentenceAligner(model=model, token_type=token_type, matching_methods="mai", layer=layer)
    return [ref.get_word_aligns(s, t) for s, t in pairs]


OURS_TO_SIMALIGN = {"argmax": "inter", "itermax": "itermax", "match": "mwmf"}


def test_matrix_methods_equal_simalign_static_methods():
    import numpy as np
    from simalign import SentenceAligner

    from core.align.embedding import apply_distortion, argmax_inter, iter_max, max_weight_match

    rng = np.random.default_rng(0)
    for m, n in [(1, 4), (2, 2), (3, 7), (9, 5), (12, 12)]:
        sim = rng.random((m, n)).astype(np.float32)
        sim[0, :] = sim[0, 0]  # a tie: argmax takes the first, as numpy does in SimAlign
        fwd, rev = SentenceAligner.get_alignment_matrix(sim)
        assert np.array_equal(argmax_inter(sim)[2], fwd * rev)
        assert np.array_equal(iter_max(sim), SentenceAligner.iter_max(sim))
        assert np.allclose(apply_distortion(sim, 0.5), SentenceAligner.apply_distortion(sim, 0.5))
        untied = rng.random((m, n))
        assert np.array_equal(max_weight_match(untied), SentenceAligner.get_max_weight_match(untied))


@pytest.mark.parametrize("layer,batch_size", [(3, 3), (4, 64), (0, 5)])
def test_batched_equals_simalign(tiny_model, layer, batch_size):
    # ragged batches (3 sentences per forward over 40 sentences), one big padded batch,
    # the last layer, and layer 0 (embeddings: the full-forward path instead of early stop)
    pairs = random_pairs(20, seed=layer)
    ours = SimAlignAligner(model=tiny_model, layer=layer, batch_size=batch_size, precision="float32")
    got = ours.align_methods(pairs, list(OURS_TO_SIMALIGN))
    ref = simalign_links(tiny_model, layer, pairs)
    for method, theirs in OURS_TO_SIMALIGN.items():
        for k, (links, expected) in enumerate(zip(got[method], ref)):
            assert [(ln.src, ln.tgt) for ln in links] == expected[theirs], f"{method} pair {k}"
    if 1 <= layer:
        assert ours._packed is not None  # BERT blocks run packed, stopping after block `layer`


def test_equal_length_runs_are_contiguous_token_slices():
    from core.align.embedding import _equal_length_runs

    assert _equal_length_runs([3, 3, 5, 3, 3, 3]) == [(0, 2, 3), (6, 1, 5), (11, 3, 3)]
    assert _equal_length_runs([4]) == [(0, 1, 4)]
    assert _equal_length_runs([]) == []


def test_subword_counts_ignore_the_tokenizer_state_of_a_padded_call(tiny_model):
    # a padded, truncating batch call leaves its settings on a fast tokenizer's backend;
    # word counts asked afterwards must still be tokenize(word)'s
    aligner = SimAlignAligner(model=tiny_model, layer=2)
    aligner.align(random_pairs(3, seed=5))  # encodes with padding=True, truncation=True
    words = [w for s in CORPUS for w in s.split()] + ["unseenword", "x"]
    counts = aligner._subword_counts([words])
    assert all(counts[w] == len(aligner._tokenizer.tokenize(w)) for w in words)


@pytest.mark.parametrize("rows_multiple", [1, 64])  # 64: zero rows padded after the real tokens
def test_packed_blocks_equal_model_hidden_states(tiny_model, rows_multiple, monkeypatch):
    import torch

    from core.align import embedding
    from core.align.embedding import _has_bert_blocks, _PackedBert, load_model
    from core.encoder import transformer_blocks

    monkeypatch.setattr(embedding, "PACKED_ROWS_MULTIPLE", rows_multiple)

    tokenizer, model = load_model(tiny_model)
    blocks = transformer_blocks(model)
    assert _has_bert_blocks(model, blocks)
    sentences = [s.split() for s in CORPUS] + [["x"], VOCAB[:30]]  # very different lengths: much padding
    sentences = sorted(sentences, key=len) + [["x"], ["y"], VOCAB[:30]]  # runs of equal length, and not sorted
    inputs = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    lengths = inputs["attention_mask"].sum(dim=1).tolist()
    assert any(a == b for a, b in zip(lengths, lengths[1:]))  # attention runs over several sentences at once
    real = inputs["attention_mask"].bool()
    with torch.inference_mode():
        states = model(**inputs, output_hidden_states=True).hidden_states
        for layer in (1, 3, 4):
            packed = _PackedBert(model, blocks, layer)(inputs)
            assert torch.allclose(packed[real], states[layer][real], atol=1e-5, rtol=1e-4)


def test_hook_path_when_packing_is_off(tiny_model, monkeypatch):
    # a model whose blocks are not BERT-style still stops early (hook), with the same links
    import core.align.embedding as emb

    pairs = random_pairs(10, seed=3)
    packed = SimAlignAligner(model=tiny_model, layer=3, batch_size=4, precision="float32")
    expected = [[(ln.src, ln.tgt) for ln in links] for links in packed.align(pairs)]
    monkeypatch.setattr(emb, "_has_bert_blocks", lambda model, blocks: False)
    hooked = SimAlignAligner(model=tiny_model, layer=3, batch_size=4, precision="float32")
    assert [[(ln.src, ln.tgt) for ln in links] for links in hooked.align(pairs)] == expected
    assert hooked._packed is None and hooked._early_stop is True


def test_bfloat16_stays_close_to_float32_on_every_path(tiny_model, monkeypatch):
    # packed blocks in bf16, and the hook / full-forward paths under autocast: vectors within
    # bf16 rounding of the float32 ones, nearly all links the same, float32 out
    import numpy as np
    import torch

    import core.align.embedding as emb

    pairs = random_pairs(30, seed=4)

    def run(layer: int, precision: str):
        aligner = SimAlignAligner(model=tiny_model, layer=layer, batch_size=8, precision=precision)
        links = [{(ln.src, ln.tgt) for ln in lk} for lk in aligner.align(pairs)]
        sims = [s for s, _, _ in aligner.similarities(pairs)]
        return aligner, links, sims

    for layer, packed in ((3, True), (3, False), (0, False)):
        if not packed:
            monkeypatch.setattr(emb, "_has_bert_blocks", lambda model, blocks: False)
        exact, want, want_sims = run(layer, "float32")
        low, got, got_sims = run(layer, "bfloat16")
        assert exact.compute_precision == "float32" and low.compute_precision == "bfloat16"
        assert (low._packed is not None) == (packed and layer > 0)
        assert all(s.dtype == np.float32 for s in got_sims)
        assert max(float(np.abs(a - b).max()) for a, b in zip(got_sims, want_sims)) < 0.01
        shared = sum(len(a & b) for a, b in zip(got, want))
        assert shared / sum(len(a | b) for a, b in zip(got, want)) > 0.9
    assert compute_dtype("float32", "cpu") == torch.float32
    assert compute_dtype("bfloat16", "cpu") == torch.bfloat16
    assert compute_dtype("auto", "cuda") == torch.float32  # launch-bound there: exact links cost nothing


def test_auto_precision_follows_the_cpu(monkeypatch):
    import torch


    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert compute_dtype("auto", "cpu") == torch.float32  # emulated bf16 is no faster
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert compute_dtype("auto", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        SimAlignAligner(precision="half")
    monkeypatch.setenv("LABELBRIDGE_ALIGN_PRECISION", "float32")
    assert SimAlignAligner().precision == "float32"
    monkeypatch.setenv("LABELBRIDGE_ALIGN_PRECISION", "fp8")
    with pytest.raises(ValueError, match="unknown LABELBRIDGE_ALIGN_PRECISION 'fp8'"):
        SimAlignAligner()


def test_mean_pooling_equals_simalign_word_mode(tiny_model):
    pairs = random_pairs(12, seed=7)
    ours = SimAlignAligner(model=tiny_model, layer=2, pooling="mean", batch_size=4, precision="float32")
    got = ours.align_methods(pairs, list(OURS_TO_SIMALIGN))
    ref = simalign_links(tiny_model, 2, pairs, token_type="word")
    for method, theirs in OURS_TO_SIMALIGN.items():
        assert [[(ln.src, ln.tgt) for ln in links] for links in got[method]] == [r[theirs] for r in ref], method


def test_links_scores_order_and_edge_cases(tiny_model):
    aligner = get_aligner("simalign:itermax", model=tiny_model, layer=2, pooling="first")
    pairs = random_pairs(6, seed=3) + [([], ["das"]), (["the"], [])]
    out = aligner.align(pairs)
    assert len(out) == len(pairs)
    assert out[-2] == [] and out[-1] == []
    for (src, tgt), links in zip(pairs, out):
        assert [(ln.src, ln.tgt) for ln in links] == sorted({(ln.src, ln.tgt) for ln in links})
        for ln in links:
            assert 0 <= ln.src < len(src) and 0 <= ln.tgt < len(tgt)
            assert 0.0 <= ln.score <= 1.0
    # identical sentences: every word is most similar to itself
    same = ["the", "european", "parliament", "votes", "today"]
    assert {(ln.src, ln.tgt) for ln in aligner.align([(same, same)])[0]} >= {(i, i) for i in range(len(same))}


def test_bad_input_is_named(tiny_model):
    aligner = SimAlignAligner(model=tiny_model, layer=2)
    with pytest.raises(ValueError, match="pair 1 target word 0"):
        aligner.align([(["a"], ["b"]), (["a"], [""])])
    with pytest.raises(ValueError, match="pair 0 source must be a list of words"):
        aligner.align([("a b", ["b"])])
    with pytest.raises(ValueError, match="unknown method"):
        SimAlignAligner(method="best")
    with pytest.raises(ValueError, match="layer 9"):
        SimAlignAligner(model=tiny_model, layer=9).align([(["a"], ["b"])])


def test_align_items_fills_alignment(tiny_model):
    items = [
        Item("1", Sentence.from_words(["the", "report"], "en"), target=Sentence.from_words(["der", "bericht"], "de")),
        Item("2", Sentence.from_words(["alone"], "en")),
    ]
    out = align_items(items, SimAlignAligner(model=tiny_model, layer=2))
    assert out[0].alignment and all(0 <= ln.src < 2 and 0 <= ln.tgt < 2 for ln in out[0].alignment)
    assert out[1].alignment == [] and items[0].alignment == []  # input untouched


def write_conll(path: Path, sentences: list[list[str]]) -> None:
    path.write_text("".join("".join(f"{w}\tO\n" for w in s) + "\n" for s in sentences), encoding="utf-8")


def test_bench_function_and_script(tiny_model, tmp_path, capsys):
    pairs = random_pairs(8, seed=11)
    write_conll(tmp_path / "en.conll", [s for s, _ in pairs])
    write_conll(tmp_path / "de.conll", [t for _, t in pairs])
    assert read_conll_words(tmp_path / "en.conll") == [s for s, _ in pairs]
    result = bench_align_speed(
        tmp_path / "en.conll", tmp_path / "de.conll", limit=6, method="match", layer=3, model=tiny_model, block=4, warmup=2,
        precision="float32",
    )  # fmt: skip
    assert result["pairs"] == 6 and result["method"] == "match" and result["layer"] == 3
    assert result["precision"] == "float32"
    assert result["link_agreement"] == 1.0 and result["links_ours"] == result["links_simalign"] > 0
    assert result["ours_pairs_per_second"] > 0 and result["ratio"] > 0
    bound = result["compute_bound"]  # the machine's limit, measured in the same run
    assert bound["gflop_per_pair"] > 0 and bound["machine_matmul_gflops"] > 0
    assert bound["ratio_bound"] == pytest.approx(
        bound["machine_matmul_gflops"] / bound["gflop_per_pair"] / result["simalign_pairs_per_second"], rel=0.05
    )
    code = run_script(
        "align-speed",
        ["--source", str(tmp_path / "en.conll"), "--target", str(tmp_path / "de.conll"), "--limit", "3",
         "--layer", "2", "--model", tiny_model, "--precision", "bfloat16", "--json"]
    )  # fmt: skip
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()
    assert len(line) == 1 and json.loads(line[0])["pairs"] == 3
    assert json.loads(line[0])["precision"] == "bfloat16"
    write_conll(tmp_path / "short.conll", [["a"]])
    assert run_script("align-speed", ["--source", str(tmp_path / "en.conll"), "--target", str(tmp_path / "short.conll"), "--json"]) == 2
    assert "must be parallel" in capsys.readouterr().err


def test_encoder_gflop_counts_products_per_sentence():
    # one block, one 3-subword sentence, h=2, i=4: 2*3*(4*4 + 2*2*4) + 4*9*2 = 192 + 72 flop
    assert encoder_gflop([3], layers=1, hidden=2, intermediate=4) == pytest.approx(264e-9)
    # sentences are encoded apart: attention grows with each length squared, not the sum's
    assert encoder_gflop([3, 3], 1, 2, 4) == pytest.approx(2 * 264e-9)
    assert encoder_gflop([3], layers=8, hidden=2, intermediate=4) == pytest.approx(8 * 264e-9)


@pytest.mark.integration
def test_real_encoder_agrees_with_simalign(europarl_dir):
    from core.config import settings

    encoder = Path(settings().encoder)
    if not (encoder / "config.json").is_file():
        pytest.skip(f"default encoder not prepared at {encoder} (python -m core.cli models prepare)")
    src = read_conll_words(europarl_dir / "en-europarl.test.conll02")[:20]
    tgt = read_conll_words(europarl_dir / "de-europarl.test.conll02")[:20]
    for precision in ("float32", "auto"):
        result = bench_align_speed(
            europarl_dir / "en-europarl.test.conll02", europarl_dir / "de-europarl.test.conll02",
            limit=20, method="itermax", layer=8, model=str(encoder), block=20, warmup=1, precision=precision,
        )  # fmt: skip
        assert result["pairs"] == len(src) == len(tgt) == 20
        if result["precision"] == "float32":
            assert result["link_agreement"] >= 0.99, result  # 1.0 here: the same links
        else:
            # bf16 products: links move only at near-ties (0.992 over 200 pairs; 20-pair
            # windows of Europarl range 0.984-1.0)
            assert result["link_agreement"] >= 0.98, result


def test_similarities_are_cached_for_the_next_stage(tiny_model, monkeypatch):
    # the projection's soft alignment after the aligner reuses its similarity matrices
    import numpy as np

    from core.align.embedding import clear_similarity_cache

    clear_similarity_cache()
    pairs = random_pairs(6, seed=11)
    first = SimAlignAligner(model=tiny_model, layer=2)
    sims = [s for s, _, _ in first.similarities(pairs)]
    second = SimAlignAligner("argmax", model=tiny_model, layer=2)
    monkeypatch.setattr(second, "_encode", lambda *a, **k: pytest.fail("encoder ran again"))
    again = [s for s, _, _ in second.similarities(pairs + pairs[:2])]  # repeats are served too
    assert all(np.array_equal(a, b) for a, b in zip(again, sims + sims[:2]))
    distinct = 2 * len({(tuple(s), tuple(t)) for s, t in pairs})
    other_precision = "float32" if first.compute_precision != "float32" else "bfloat16"
    for other in (SimAlignAligner(model=tiny_model, layer=3), SimAlignAligner(model=tiny_model, layer=2, precision=other_precision)):
        calls = []
        original = other._encode
        monkeypatch.setattr(other, "_encode", lambda s, bar, original=original, calls=calls: calls.append(len(s)) or original(s, bar))
        list(other.similarities(pairs))
        assert calls == [distinct]  # another layer, or another precision, is another key
    clear_similarity_cache()


def test_several_layers_average_the_layers_similarities_on_every_path(tiny_model, monkeypatch):
    import numpy as np

    import core.align.embedding as emb
    from core.align.embedding import clear_similarity_cache

    pairs = random_pairs(8, seed=5)

    def sims(aligner):
        clear_similarity_cache()
        return [sim for sim, _, _ in aligner.similarities(pairs)]

    one = {k: sims(SimAlignAligner(model=tiny_model, layer=k, batch_size=4, precision="float32")) for k in (2, 3)}
    packed = SimAlignAligner(model=tiny_model, layers=[3, 2], batch_size=4, precision="float32")
    assert packed.layer == 3 and packed.layers == (2, 3)
    averaged = sims(packed)
    assert packed._packed is not None
    for a, b, c in zip(averaged, one[2], one[3]):
        np.testing.assert_allclose(a, (b + c) / 2, atol=1e-5)  # (cos + 1) / 2 of the side-by-side vectors = the mean
    monkeypatch.setattr(emb, "_has_bert_blocks", lambda model, blocks: False)
    plain = SimAlignAligner(model=tiny_model, layers=[2, 3], batch_size=4, precision="float32")
    for a, b in zip(sims(plain), averaged):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert SimAlignAligner(model=tiny_model, layers=[2]).layers is None  # one layer is just ``layer``
    with pytest.raises(emb.AlignError, match="layers must be"):
        SimAlignAligner(layers=[0, 1])
