"""Agreement figures on hand-made cases (core.annotations.agreement)."""

from __future__ import annotations

import random

import pytest

from core.annotations.agreement import agreement, f1, matches
from core.data import Sentence, make_span
from core.metrics import span_scores

S = Sentence.from_words("Anna Weber met the Mayor of Berlin in New York today".split(), "en")


def sp(a: int, b: int, label: str):
    return make_span(S, a, b, label)


def test_identical_annotations_agree_fully() -> None:
    spans = [sp(0, 2, "PER"), sp(6, 7, "LOC")]
    result = agreement({1: {"a": spans, "b": list(spans)}}, {1: len(S)})
    (pair,) = result.pairs
    assert (pair.exact_f1, pair.partial_f1, pair.n_items) == (1.0, 1.0, 1)
    assert result.items[0].exact_f1 == 1.0


def test_boundary_difference_is_partial_but_not_exact_agreement() -> None:
    a = [sp(0, 2, "PER")]
    b = [sp(1, 2, "PER")]
    assert matches(a, b, "exact") == 0
    assert matches(a, b, "partial") == 1
    result = agreement({1: {"a": a, "b": b}}, {1: len(S)})
    assert result.pairs[0].exact_f1 == 0.0
    assert result.pairs[0].partial_f1 == 1.0


def test_label_mismatch_counts_for_neither() -> None:
    result = agreement({1: {"a": [sp(6, 7, "LOC")], "b": [sp(6, 7, "ORG")]}}, {1: len(S)})
    assert (result.pairs[0].exact_f1, result.pairs[0].partial_f1) == (0.0, 0.0)
    assert result.pairs[0].per_label["LOC"].n_a == 1 and result.pairs[0].per_label["LOC"].n_b == 0


def test_partial_matching_is_one_to_one() -> None:
    # One long span cannot agree with two short ones: 1 match, F1 = 2*1 / (1 + 2).
    a = [sp(8, 10, "LOC")]
    b = [sp(8, 9, "LOC"), sp(9, 10, "LOC")]
    assert matches(a, b, "partial") == 1
    assert agreement({1: {"a": a, "b": b}}, {1: len(S)}).pairs[0].partial_f1 == pytest.approx(2 / 3)


def test_micro_f1_over_items_per_label_and_per_item_order() -> None:
    annotations = {
        1: {"a": [sp(0, 2, "PER"), sp(6, 7, "LOC")], "b": [sp(0, 2, "PER"), sp(6, 7, "LOC")]},
        2: {"a": [sp(0, 2, "PER")], "b": [sp(0, 1, "PER"), sp(8, 10, "LOC")]},
        3: {"a": [sp(4, 7, "PER")]},  # only one annotator: not compared
    }
    result = agreement(annotations, {1: len(S), 2: len(S), 3: len(S)})
    pair = result.pairs[0]
    assert pair.n_items == 2
    # exact: 2 matches of 3 (a) + 4 (b) spans; partial: 3 matches
    assert pair.exact_f1 == pytest.approx(2 * 2 / 7)
    assert pair.partial_f1 == pytest.approx(2 * 3 / 7)
    assert pair.per_label["PER"].exact_f1 == pytest.approx(2 * 1 / 4)
    assert pair.per_label["PER"].partial_f1 == pytest.approx(1.0)
    assert pair.per_label["LOC"].n_a == 1 and pair.per_label["LOC"].n_b == 2
    assert [it.item for it in result.items] == [2, 1]  # lowest agreement first
    assert result.items[0].exact_f1 == pytest.approx(0.0)
    assert result.items[0].partial_f1 == pytest.approx(2 * 1 / 3)


def test_three_annotators_give_three_pairs_and_means() -> None:
    x = [sp(0, 2, "PER")]
    result = agreement({1: {"a": x, "b": x, "c": []}}, {1: len(S)})
    assert [(p.a, p.b) for p in result.pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [p.exact_f1 for p in result.pairs] == [1.0, 0.0, 0.0]
    assert result.exact_f1 == pytest.approx(1 / 3)
    assert result.items[0].exact_f1 == pytest.approx(1 / 3)


def test_no_shared_item_and_empty_annotations() -> None:
    assert agreement({1: {"a": []}, 2: {"b": []}}, {1: 3, 2: 3}).exact_f1 is None
    both_empty = agreement({1: {"a": [], "b": []}}, {1: len(S)})
    assert both_empty.pairs[0].exact_f1 == 1.0 and both_empty.items[0].exact_f1 == 1.0
    assert f1(0, 0, 0) == 1.0
    with pytest.raises(ValueError):
        matches([], [], "fuzzy")


def _random_spans(rng: random.Random, n_tokens: int) -> list:
    spans, pos = [], 0
    while pos < n_tokens:
        pos += rng.randrange(0, 3)
        length = rng.randrange(1, 3)
        if pos + length > n_tokens:
            break
        if rng.random() < 0.6:
            spans.append(sp(pos, pos + length, rng.choice(["PER", "LOC", "ORG"])))
        pos += length
    return spans


def test_exact_f1_equals_seqeval_strict_on_random_annotations() -> None:
    rng = random.Random(7)
    annotations = {i: {"a": _random_spans(rng, len(S)), "b": _random_spans(rng, len(S))} for i in range(40)}
    result = agreement(annotations, {i: len(S) for i in annotations})
    ref = span_scores([len(S)] * 40, [annotations[i]["a"] for i in range(40)], [annotations[i]["b"] for i in range(40)])
    n_match = sum(matches(v["a"], v["b"]) for v in annotations.values())
    n = sum(len(v["a"]) + len(v["b"]) for v in annotations.values())
    assert result.pairs[0].exact_f1 == pytest.approx(ref["f1"]) == pytest.approx(2 * n_match / n)
