"""Strict IOB2 entity scores on hand-made cases whose figures are worked out by hand."""

from __future__ import annotations

import pytest

from core.data import Sentence, make_span
from core.metrics import entity_scores, span_scores


def test_perfect_prediction_scores_one():
    tags = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    scores = entity_scores(tags, tags)
    assert scores["precision"] == scores["recall"] == scores["f1"] == 1.0
    assert scores["support"] == 3
    assert set(scores["per_label"]) == {"PER", "LOC", "ORG"}


def test_known_figures_overall_and_per_label():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "B-PER"]]
    # PER 1 right (Anna Smith), PER 2 missed; LOC predicted as ORG (wrong type);
    # ORG right; one extra MISC.
    pred = [["B-PER", "I-PER", "O", "B-ORG", "B-MISC"], ["B-ORG", "O", "O"]]
    scores = entity_scores(gold, pred)
    # gold 4 entities, predicted 4, correct 2 (PER, ORG)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(0.5)
    per = scores["per_label"]
    assert per["PER"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert per["LOC"]["recall"] == 0.0 and per["LOC"]["support"] == 1
    assert per["ORG"]["precision"] == pytest.approx(0.5) and per["ORG"]["recall"] == 1.0
    assert per["MISC"]["precision"] == 0.0 and per["MISC"]["support"] == 0


def test_strict_mode_requires_exact_boundaries_and_valid_iob2():
    gold = [["B-ORG", "I-ORG", "I-ORG"]]
    assert entity_scores(gold, [["B-ORG", "I-ORG", "O"]])["f1"] == 0.0  # partial match earns nothing
    # an I- without B- is not an entity in strict IOB2 (lenient conlleval would count it)
    assert entity_scores(gold, [["I-ORG", "I-ORG", "I-ORG"]])["f1"] == 0.0


def test_no_entities_anywhere_gives_zeros():
    scores = entity_scores([["O", "O"]], [["O", "O"]])
    assert scores["f1"] == 0.0 and scores["support"] == 0 and scores["per_label"] == {}


def test_length_mismatch_names_the_sentence():
    with pytest.raises(ValueError, match="sentence 1"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 gold sentences but 1"):
        entity_scores([["O"], ["O"]], [["O"]])


def test_span_scores_from_spans():
    s = Sentence.from_words(["Angela", "Merkel", "visited", "Paris"])
    gold = [[make_span(s, 0, 2, "PER"), make_span(s, 3, 4, "LOC")]]
    pred = [[make_span(s, 0, 1, "PER"), make_span(s, 3, 4, "LOC", source="student")]]
    scores = span_scores([s], gold, pred)
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert span_scores([4], gold, gold)["f1"] == 1.0


def test_span_scores_rejects_overlapping_spans_naming_the_sentence():
    s = Sentence.from_words(["a", "b", "c"])
    bad = [make_span(s, 0, 2, "PER"), make_span(s, 1, 3, "LOC")]
    with pytest.raises(ValueError, match="sentence 0: predicted"):
        span_scores([s], [[]], [bad])
