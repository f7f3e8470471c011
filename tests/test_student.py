"""Student token classifier on a tiny random BERT made in the test (seconds on a CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import Item, Sentence, make_span
from core.student import (
    StudentPrediction,
    TrainConfig,
    TrainingCancelled,
    decode_iob2,
    disagreement,
    load_student,
    predict,
    predict_details,
    save_student,
    span_f1,
    train_student,
)
from core.student.data import (
    IGNORE,
    MAX_GOLD_REPEATS,
    balance_gold,
    build_windows,
    choose_word_form,
    examples_from_items,
    label_list,
    split_windows,
    word_form,
    word_pieces,
)

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def make_tiny_encoder(folder) -> str:
    """A 2-layer BERT with a character-level WordPiece vocabulary: every lowercase word is
    split into one subword per letter (except the few whole words in the vocabulary)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + list(LETTERS) + [f"##{c}" for c in LETTERS]
    vocab += ["the", "in", "met", "paris", "berlin", "anna", "bob"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


def _item(i: int, words: list[str], spans: list[tuple[int, int, str]], source: str = "gold", conf=None, **meta) -> Item:
    sentence = Sentence.from_words(words)
    return Item(
        id=f"s{i}",
        source=sentence,
        target=sentence,
        target_spans=[make_span(sentence, a, b, label, source, conf) for a, b, label in spans],
        meta=dict(meta),
    )


def toy_items() -> list[Item]:
    people, places = ["anna", "bob", "carla", "dieter"], ["paris", "berlin", "rome", "madrid"]
    items = []
    for i in range(16):
        who, where = people[i % 4], places[(i // 2) % 4]
        items.append(_item(i, [who, "met", "us", "in", where, "."], [(0, 1, "PER"), (4, 5, "LOC")]))
    return items


def fast_config(encoder: str, **changes) -> TrainConfig:
    base = dict(
        encoder=encoder, epochs=8, learning_rate=3e-3, head_learning_rate=3e-3, batch_size=4, device="cpu", seed=1, threads=1,
        warmup_ratio=0.0, dropout=0.0,
    )  # fmt: skip
    base.update(changes)
    return TrainConfig(**base)


# ------------------------------------------------------------------------ data preparation


def test_labels_sit_on_the_first_subword_only(tiny_encoder):
    from core.encoder import load_encoder

    tokenizer, _ = load_encoder(tiny_encoder, "cpu")
    words = ["carla", "met", "xy"]  # carla -> c ##a ##r ##l ##a ; met is one piece ; xy -> x ##y
    pieces = word_pieces(tokenizer, [words])[0]
    assert [len(p) for p in pieces] == [5, 1, 2]
    labels = {"O": 0, "B-PER": 1, "I-PER": 2}
    (window,) = build_windows(tokenizer, [words], 64, tags=[["B-PER", "O", None]], label_ids=labels)
    assert window.input_ids[0] == tokenizer.cls_token_id and window.input_ids[-1] == tokenizer.sep_token_id
    assert window.first_positions == (1, 6, 7)
    expected = [IGNORE, 1, IGNORE, IGNORE, IGNORE, IGNORE, 0, IGNORE, IGNORE, IGNORE]  # xy masked (None)
    assert list(window.labels) == expected


def test_long_sentence_is_split_into_windows_not_truncated(tiny_encoder):
    from core.encoder import load_encoder

    tokenizer, _ = load_encoder(tiny_encoder, "cpu")
    words = ["carla", "met"] * 20  # 120 subwords
    windows = build_windows(tokenizer, [words], 16)
    assert len(windows) > 5
    assert all(len(w.input_ids) <= 16 for w in windows)
    covered = [i for w in windows for i in range(w.word_start, w.word_end)]
    assert covered == list(range(len(words)))  # every word once, in order
    assert split_windows([3, 3, 3], 6) == [(0, 2), (2, 3)]
    assert split_windows([9, 1], 4) == [(0, 1), (1, 2)]  # an over-long word gets its own window


def marked_vocabulary_tokenizer(folder):
    """A fast WordPiece tokenizer that keeps marks (no lower-casing, no accent stripping):
    letters, the marked letter e-acute, the combining acute, and a few whole words. "ade"
    is one piece; "adé" three (composed), two decomposed; "esta" four but "está" one (a vocabulary that has the
    marked word, as Spanish in XLM-R's)."""
    from transformers import AutoTokenizer, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(LETTERS) + [f"##{c}" for c in LETTERS]
    vocab += ["\u00e9", "##\u00e9", "##\u0301", "ade", "ola", "bisi", "est\u00e1", "r\u00e1pido"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False, strip_accents=False).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def test_word_forms_compose_or_drop_marks_and_keep_every_word():
    decomposed = "e\u0323\u0300"  # e + dot below + grave, as stored in some Yoruba files
    assert word_form(decomposed, "as-is") == decomposed
    assert word_form(decomposed, "nfc") == "\u1eb9\u0300"  # composed as far as Unicode goes
    assert word_form(decomposed, "no-marks") == "e"
    assert word_form("I\u0300ba\u0301da\u0300n", "no-marks") == "Ibadan"
    assert word_form("\u0301", "no-marks") == "\u0301"  # a lone mark keeps its position and form
    assert word_form("Madrid", "no-marks") == "Madrid"
    with pytest.raises(ValueError, match="word form 'auto'"):
        word_form("x", "auto")
    with pytest.raises(ValueError, match="word_form must be one of"):
        TrainConfig(word_form="ascii")


def test_marks_are_dropped_only_where_the_vocabulary_covers_the_bare_words_better(tmp_path):
    tokenizer = marked_vocabulary_tokenizer(tmp_path / "tok")
    yoruba_like = [["ade\u0301", "ade\u0301", "bisi"], ["ade\u0301", "ola"]]  # decomposed marks
    pieces = word_pieces(tokenizer, yoruba_like, "as-is")
    assert [len(p) for p in pieces[0]] == [2, 2, 1]  # "ade" + "##\u0301"
    assert [len(p) for p in word_pieces(tokenizer, yoruba_like, "nfc")[0]] == [3, 3, 1]
    assert [len(p) for p in word_pieces(tokenizer, yoruba_like, "no-marks")[0]] == [1, 1, 1]
    assert choose_word_form(tokenizer, yoruba_like) == "no-marks"
    spanish_like = [["est\u00e1", "r\u00e1pido"], ["ade"]]  # the vocabulary has the marked words
    assert choose_word_form(tokenizer, spanish_like) == "nfc"
    assert choose_word_form(tokenizer, [["ade", "bisi"]]) == "nfc"  # nothing to gain: the lossless form
    # the labels stay on their words: one window position per word, whatever the form
    (window,) = build_windows(tokenizer, yoruba_like[:1], 32, tags=[["B-PER", "O", "B-PER"]], label_ids={"O": 0, "B-PER": 1}, form="no-marks")
    assert window.first_positions == (1, 2, 3) and [window.labels[i] for i in window.first_positions] == [1, 0, 1]


def test_training_chooses_the_word_form_once_and_prediction_reads_it_back(tiny_encoder, tmp_path):
    import json

    student = train_student(toy_items(), (), fast_config(tiny_encoder, epochs=1))
    assert student.config.word_form == "nfc"  # auto, decided on the training words and saved with the model
    save_student(student, tmp_path / "model")
    assert load_student(tmp_path / "model", device="cpu").config.word_form == "nfc"
    meta_path = tmp_path / "model" / "student.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["word_form"]  # a student saved before the option read its words as they were
    meta_path.write_text(json.dumps(meta))
    old = load_student(tmp_path / "model", device="cpu")
    assert old.config.word_form == "as-is"
    sentences = [it.target for it in toy_items()[:3]]
    np.testing.assert_allclose(predict_details(old, sentences)[0].probs, predict_details(student, sentences)[0].probs, atol=1e-5)
    fixed = train_student(toy_items(), (), fast_config(tiny_encoder, epochs=1, word_form="no-marks"))
    assert fixed.config.word_form == "no-marks"  # a form given is kept


def test_low_confidence_silver_spans_are_masked_not_taught_as_o():
    config = TrainConfig(silver_threshold=0.5, w_gold=1.0, w_silver=0.3)
    silver = _item(0, ["anna", "met", "bob", "in", "paris"], [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")], "projection:heuristic", 0.2)
    # give one span a high confidence: it is kept
    sentence = silver.target
    silver = silver.with_(target_spans=[silver.target_spans[0], make_span(sentence, 2, 3, "PER", "projection:heuristic", 0.9)])
    gold = _item(1, ["anna", "met", "bob"], [(0, 1, "PER")], "human:ann")
    ex_silver, ex_gold = examples_from_items([silver, gold], config)
    assert ex_silver.tags == (None, "O", "B-PER", "O", "O")
    assert ex_silver.weight == 0.3 and ex_gold.weight == 1.0
    assert ex_gold.tags == ("B-PER", "O", "O")
    # an explicit flag wins over the span sources
    flagged = _item(2, ["anna"], [(0, 1, "PER")], "projection:x", 0.1, gold=True)
    assert examples_from_items([flagged], config)[0].weight == 1.0
    assert label_list([ex_silver, ex_gold]) == ["O", "B-PER", "I-PER"]


def test_a_few_corrections_are_repeated_until_they_carry_their_share_of_an_epoch():
    config = TrainConfig(gold_share=0.5)
    silver = [_item(i, ["anna", "met", "bob"], [(0, 1, "PER")], "projection:heuristic", 0.9) for i in range(9)]
    gold = [_item(9, ["anna", "met", "bob"], [(2, 3, "PER")], "human:ann")]
    examples = examples_from_items(silver + gold, config)
    balanced = balance_gold(examples, config.gold_share)
    assert [ex.key for ex in balanced[:10]] == [ex.key for ex in examples]  # every sentence once, in order
    assert sum(ex.gold for ex in balanced) == 9 and len(balanced) == 18  # gold repeated to half the epoch
    assert balance_gold(examples, None) == examples  # None: every sentence once
    assert balance_gold(examples[:9], 0.5) == examples[:9]  # no gold: nothing to repeat
    assert balance_gold(examples[9:], 0.5) == examples[9:]  # no silver: gold is the whole epoch already
    many = examples_from_items([_item(i, ["anna"], [(0, 1, "PER")], "projection:x", 0.9) for i in range(1000)], config)
    assert sum(ex.gold for ex in balance_gold(many + examples[9:], 0.5)) == MAX_GOLD_REPEATS  # a bound, not 1,000 copies
    assert sum(ex.gold for ex in balance_gold(examples[:1] + examples[9:], 0.5)) == 1  # gold already half: no repeat
    with pytest.raises(ValueError, match="gold_share"):
        TrainConfig(gold_share=1.0)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="side"):
        TrainConfig(side="middle")
    with pytest.raises(ValueError, match="silver_threshold"):
        TrainConfig(silver_threshold=1.5)
    assert TrainConfig.from_dict({**TrainConfig(epochs=2).to_dict(), "unknown": 1}).epochs == 2
    with pytest.raises(ValueError, match="feature_layers"):
        TrainConfig(feature_layers=4)
    with pytest.raises(ValueError, match="feature_layers"):
        TrainConfig(feature_layers=(9, 5))


def test_feature_layers_round_trip_and_read_old_configs():
    import json

    from core.student.model import resolve_layers

    config = TrainConfig(feature_layers=(3, 7))
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # JSON turns the tuple into a list
    assert TrainConfig.from_dict({"feature_layers": 4}).feature_layers == (-4, -1)  # old "last 4 layers"
    assert resolve_layers((-4, -1), 13) == (9, 12)
    assert resolve_layers((5, 9), 13) == (5, 9)
    assert resolve_layers((5, 9), 3) == (2, 2)  # a 2-layer encoder: clamped to its last layer


# --------------------------------------------------------------------- training and use


@pytest.mark.parametrize(
    "finetune, freeze, storage",
    [(False, True, "reference"), (True, True, "trained"), (True, False, "full")],
    ids=["frozen-encoder", "finetuned-frozen-embeddings", "finetuned-everything"],
)
def test_train_save_load_predict_round_trip(tiny_encoder, tmp_path, finetune, freeze, storage):
    import json

    items = toy_items()
    steps = []
    config = fast_config(tiny_encoder, finetune_encoder=finetune, freeze_embeddings=freeze, head_learning_rate=1e-2 if finetune else 3e-3)
    student = train_student(items, items[:4], config, progress_cb=lambda s, t, loss: steps.append((s, t, loss)))
    assert steps and steps[0][1] == 8 * 4 and all(0 < s <= t for s, t, _ in steps)
    losses = [h["loss"] for h in student.history]
    assert losses[-1] < losses[0]
    assert "dev_f1" in student.history[0]
    assert student.history[0]["mode"] == ("fine-tune" if finetune else "frozen")
    assert student.history[0]["sentences"] == student.history[0]["distinct_sentences"] == 16  # all gold: nothing repeated

    sentences = [it.target for it in items[:6]] + [Sentence.from_words(["bob", "met", "anna", "in", "rome"])]
    before = predict_details(student, sentences)
    learned = [p.spans for p in before[:6]]
    gold = [it.target_spans for it in items[:6]]
    assert np.mean([span_f1(p, g) for p, g in zip(learned, gold)]) > 0.5  # it learned something

    save_student(student, tmp_path / "model")
    # only what training changed is saved: nothing of a frozen encoder, no frozen embedding matrix
    meta = json.loads((tmp_path / "model" / "student.json").read_text())
    assert meta["encoder_storage"] == storage
    assert (tmp_path / "model" / "encoder" / "config.json").is_file() == (storage == "full")
    assert (tmp_path / "model" / "encoder.safetensors").is_file() == (storage == "trained")
    if storage == "trained":
        from safetensors import safe_open

        with safe_open(tmp_path / "model" / "encoder.safetensors", "pt") as f:
            saved = set(f.keys())
        assert "embeddings.word_embeddings.weight" not in saved and any(k.startswith("encoder.layer.") for k in saved)
    loaded = load_student(tmp_path / "model", device="cpu")
    assert loaded.labels == student.labels and loaded.config == student.config
    after = predict_details(loaded, sentences)
    for a, b in zip(before, after):
        assert [s.key() for s in a.spans] == [s.key() for s in b.spans]
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
        assert [s.confidence for s in a.spans] == pytest.approx([s.confidence for s in b.spans], abs=1e-5)


def test_fine_tuning_keeps_the_first_layers_and_leaves_the_shared_encoder_whole(tiny_encoder, tmp_path):
    from core.encoder import load_encoder, transformer_blocks

    _, base = load_encoder(tiny_encoder, "cpu")
    weights = base.get_input_embeddings().weight.detach().clone()
    student = train_student(toy_items(), (), fast_config(tiny_encoder, finetune_encoder=True, encoder_layers=1, epochs=2))
    assert len(transformer_blocks(student.model.encoder)) == 1 and student.model.encoder.config.num_hidden_layers == 1
    assert len(transformer_blocks(base)) == 2  # the loader's cached encoder is not cut or trained
    assert torch.equal(base.get_input_embeddings().weight, weights)
    save_student(student, tmp_path / "cut")
    assert len(transformer_blocks(load_student(tmp_path / "cut", device="cpu").model.encoder)) == 1


@pytest.mark.parametrize("finetune", [True, False], ids=["fine-tuned", "frozen-encoder"])
def test_a_warm_start_goes_on_from_the_student_and_leaves_it_unchanged(tiny_encoder, tmp_path, finetune):
    from core.student.train import continued_config

    items = toy_items()
    first = train_student(items, (), fast_config(tiny_encoder, finetune_encoder=finetune, encoder_layers=1, epochs=6, head_learning_rate=1e-2))
    save_student(first, tmp_path / "v1")
    start = load_student(tmp_path / "v1", device="cpu")
    before = {k: v.clone() for k, v in start.model.state_dict().items()}
    sentences = [it.target for it in items[:6]]
    known = predict_details(start, sentences)

    # steps too small to matter (learning rate 1e-12): the continued model predicts as the one it came from
    same = train_student(items, (), fast_config(tiny_encoder, epochs=1, learning_rate=1e-12, head_learning_rate=1e-12, finetune_encoder=not finetune),
                         start_from=start)  # fmt: skip
    assert same.model.finetune_encoder == finetune and same.config.encoder_layers == 1  # the structure is the start's
    for a, b in zip(known, predict_details(same, sentences)):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)

    # a new label: the known rows keep their weights, the new one is added
    more = items + [_item(99, ["acme", "hired", "anna"], [(0, 1, "ORG"), (2, 3, "PER")])] * 4
    grown = train_student(more, (), fast_config(tiny_encoder, epochs=2), start_from=start)
    assert grown.labels[: len(start.labels)] == start.labels and "B-ORG" in grown.labels
    assert grown.model.num_labels == len(grown.labels)
    # the student it started from is untouched (its own copy was trained)
    for k, v in start.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    if finetune:  # the frozen embedding matrix is shared, not copied
        assert grown.model.encoder.get_input_embeddings().weight is start.model.encoder.get_input_embeddings().weight
    assert continued_config(fast_config(tiny_encoder, encoder_layers=None), start).encoder_layers == 1


def test_bfloat16_and_float32_fine_tuning_agree(tiny_encoder):
    items = toy_items()
    sentences = [it.target for it in items[:8]]
    runs = {}
    for precision in ("float32", "bfloat16"):
        config = fast_config(tiny_encoder, finetune_encoder=True, precision=precision, head_learning_rate=1e-2)
        student = train_student(items, (), config)
        assert student.history[0]["precision"] == precision
        runs[precision] = (student, predict_details(student, sentences))
    # the same trained weights read in both precisions: probabilities within bf16 rounding
    fp32_student, fp32 = runs["float32"]
    from dataclasses import replace

    fp32_student.config = replace(fp32_student.config, precision="bfloat16")
    read_in_bf16 = predict_details(fp32_student, sentences)
    for a, b in zip(fp32, read_in_bf16):
        np.testing.assert_allclose(a.probs, b.probs, atol=0.05)
    # trained in bf16 vs in fp32: the same spans learned
    gold = [it.target_spans for it in items[:8]]
    for precision, (_, predictions) in runs.items():
        assert np.mean([span_f1(p.spans, g) for p, g in zip(predictions, gold)]) > 0.8, precision


def test_the_mode_is_chosen_by_the_time_budget():
    from dataclasses import replace

    from core.student.train import estimated_finetune_seconds, resolve_mode

    config = TrainConfig(epochs=3, precision="float32", threads=2)
    assert resolve_mode(config, 100, "cpu").finetune_encoder is True
    assert resolve_mode(replace(config, time_budget_s=1.0), 100, "cpu").finetune_encoder is False
    assert resolve_mode(replace(config, finetune_encoder=False), 100, "cpu").finetune_encoder is False
    assert estimated_finetune_seconds(config, 2000, "cpu") == pytest.approx(2 * estimated_finetune_seconds(config, 1000, "cpu"))
    assert estimated_finetune_seconds(config, 1000, "cuda:0") < estimated_finetune_seconds(config, 1000, "cpu")


def test_a_head_only_student_needs_its_own_encoder(tmp_path):
    import json
    import shutil

    encoder = make_tiny_encoder(tmp_path / "enc")
    student = train_student(toy_items(), (), fast_config(encoder, epochs=1))
    save_student(student, tmp_path / "model")
    sentences = [it.target for it in toy_items()[:3]]
    expected = predict_details(student, sentences)
    got = predict_details(load_student(tmp_path / "model", device="cpu"), sentences)
    np.testing.assert_allclose(expected[0].probs, got[0].probs, atol=1e-5)

    meta_path = tmp_path / "model" / "student.json"
    meta = json.loads(meta_path.read_text())
    other = make_tiny_encoder(tmp_path / "other")  # same shapes and vocabulary, other weights
    from transformers import BertModel

    torch.manual_seed(7)
    BertModel(BertModel.from_pretrained(other).config, add_pooling_layer=False).save_pretrained(other)
    meta["config"]["encoder"] = other
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not the one this student's head was trained on"):
        load_student(tmp_path / "model", device="cpu")

    meta["config"]["encoder"] = str(tmp_path / "gone")
    shutil.copytree(encoder, tmp_path / "gone")
    shutil.rmtree(tmp_path / "gone")
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="keeps only what it trained.*cannot be loaded"):
        load_student(tmp_path / "model", device="cpu")


def test_prediction_stitches_windows_of_a_long_sentence(tiny_encoder):
    items = toy_items()
    student = train_student(items, (), fast_config(tiny_encoder, epochs=2, max_subwords=12))
    long = Sentence.from_words(["anna", "met", "us", "in", "paris", "."] * 6)
    (prediction,) = predict_details(student, [long])
    assert prediction.probs.shape == (len(long), len(student.labels))
    assert len(prediction.tags) == len(long)
    assert np.allclose(prediction.probs.sum(axis=1), 1.0, atol=1e-4)  # every word got a prediction
    assert 0.0 <= prediction.uncertainty <= 1.0
    for span in prediction.spans:
        assert span.source == "student" and 0.0 <= span.confidence <= 1.0
    assert predict(student, [Sentence("", [])]) == [[]]


def test_cancel_callback_stops_training(tiny_encoder):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(TrainingCancelled):
        train_student(toy_items(), (), fast_config(tiny_encoder), cancel_cb=cancel)


def test_training_needs_entities(tiny_encoder):
    empty = [_item(0, ["the", "met"], [])]
    with pytest.raises(ValueError, match="no entity"):
        train_student(empty, (), fast_config(tiny_encoder))


# ------------------------------------------------------------------------- decoding


def test_decoding_never_produces_an_orphan_inside_tag():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    probs = np.array(
        [
            [0.5, 0.05, 0.4, 0.03, 0.02],  # greedy: O
            [0.1, 0.05, 0.8, 0.03, 0.02],  # greedy: I-PER after O (invalid)
            [0.1, 0.1, 0.1, 0.1, 0.6],  # greedy: I-LOC after I-PER (invalid)
        ]
    )
    tags = decode_iob2(probs, labels)
    for prev, cur in zip(["O"] + tags, tags):
        if cur.startswith("I-"):
            assert prev[2:] == cur[2:] and prev != "O"
    assert decode_iob2(np.zeros((0, 5)), labels) == []


def test_span_f1_compares_exact_spans():
    s = Sentence.from_words(["anna", "met", "bob", "in", "paris"])
    a = [make_span(s, 0, 1, "PER"), make_span(s, 4, 5, "LOC")]
    b = [make_span(s, 0, 1, "PER"), make_span(s, 2, 3, "PER", "student")]
    assert span_f1(a, a) == 1.0 and span_f1([], []) == 1.0
    assert span_f1(a, []) == 0.0
    assert span_f1(a, b) == pytest.approx(0.5)


def test_disagreement_is_one_minus_the_lowest_probability_of_the_given_tags():
    s = Sentence.from_words(["anna", "met", "bob"])
    labels = ("O", "B-PER", "I-PER")
    probs = np.array([[0.1, 0.85, 0.05], [0.9, 0.05, 0.05], [0.3, 0.6, 0.1]], dtype=np.float32)
    prediction = StudentPrediction([], ["B-PER", "O", "B-PER"], probs, 0.4, 0.5, labels)
    both = [make_span(s, 0, 1, "PER"), make_span(s, 2, 3, "PER")]
    assert disagreement(prediction, both) == pytest.approx(1 - 0.6)  # the weakest given tag: bob as B-PER
    assert disagreement(prediction, both[:1]) == pytest.approx(1 - 0.3)  # bob as O is less likely
    assert disagreement(prediction, []) == pytest.approx(1 - 0.1)  # anna as O
    assert disagreement(prediction, [make_span(s, 0, 1, "LOC")]) == 1.0  # a label the student never saw
    soft = StudentPrediction([], [], np.zeros((0, 3), dtype=np.float32), 0.0, 0.0, labels)
    assert disagreement(soft, []) == 0.0


def test_bench_student_measures_every_setting_on_nested_corrections(tiny_encoder, monkeypatch):
    # the bench harness on toy data: train 16 / test 8, the "projection" loses the LOC of
    # the sentences whose index is odd and says so with a low confidence
    from core.student import bench

    items = toy_items() + [it.with_(id=f"t{k}") for k, it in enumerate(toy_items()[:8])]
    for it in items:
        it.meta["gold"] = True
    items = [it.with_(source_spans=list(it.target_spans)) for it in items]

    def project(train, progress=True):
        out = []
        for i, it in enumerate(train):
            spans = [s for s in it.target_spans if not (i % 2 and s.label == "LOC")]
            conf = 0.4 if i % 2 else 0.9
            spans = [make_span(it.target, s.start, s.end, s.label, "projection:test", conf) for s in spans]
            out.append(it.with_(target_spans=spans, meta={"gold": False}))
        return out, "test projection"

    monkeypatch.setattr(bench, "load_europarl", lambda data_dir, source, target: items)
    monkeypatch.setattr(bench, "project_for_bench", project)
    monkeypatch.setattr(bench, "N_TRAIN", 16)
    monkeypatch.setattr(bench, "N_TEST", 8)
    config = fast_config(tiny_encoder, epochs=2)
    result = bench.bench_student("unused", config=config, corrections=(4, 8), n_seeds=2)
    assert result["train"] == 16 and result["test"] == 8 and result["seeds"] == [1, 2]
    assert set(result["corrected_f1"]) == {"4", "8"}
    for key in ("model_transfer", "data_transfer", "corrected_4", "corrected_8", "all_corrected"):
        assert len(result["per_seed"][key]) == 2 and all(0.0 <= f <= 1.0 for f in result["per_seed"][key])
    assert 0.0 <= result["all_corrected_f1"] <= 1.0
    # 8 of the 16 training sentences lost a LOC; the lowest-confidence ones are corrected first
    assert result["projection_train_errors"] == {"sentences": 8, "spans": 8}
    assert result["errors_fixed"] == {"4": {"sentences": 4, "spans": 4}, "8": {"sentences": 8, "spans": 8}}
