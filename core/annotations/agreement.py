"""Inter-annotator agreement on spans: exact and partial F1 between annotators, overall,
per label and per item.

F1 between two annotators treats either one as the reference (F1 is symmetric). Exact:
same token range and label (seqeval strict IOB2, as every score in LabelBridge). Partial:
same label and at least one shared token, each span matched at most once (a maximum
one-to-one matching, scipy's linear_sum_assignment), so one long span cannot "agree" with
three short ones. Only items that both annotators finished count for a pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Hashable, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.data import Span
from core.errors import ConfigError
from core.metrics import span_scores

__all__ = ["matches", "f1", "PairAgreement", "ItemAgreement", "Agreement", "agreement"]


def matches(a: Sequence[Span], b: Sequence[Span], mode: str = "exact", label: str | None = None) -> int:
    """How many spans of ``a`` pair with a span of ``b`` (optionally only of one label)."""
    if label is not None:
        a = [s for s in a if s.label == label]
        b = [s for s in b if s.label == label]
    if mode == "exact":
        return len({s.key() for s in a} & {s.key() for s in b})
    if mode != "partial":
        raise ConfigError(f"unknown match mode {mode!r}; expected exact or partial")
    if not a or not b:
        return 0
    overlap = np.array([[1.0 if (x.label == y.label and x.overlaps(y)) else 0.0 for y in b] for x in a])
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    return int(overlap[rows, cols].sum())


def f1(matched: int, n_a: int, n_b: int) -> float:
    """2·matched / (n_a + n_b); two empty annotations agree fully (1.0)."""
    return 1.0 if n_a + n_b == 0 else 2.0 * matched / (n_a + n_b)


@dataclass(frozen=True, slots=True)
class LabelAgreement:
    exact_f1: float
    partial_f1: float
    n_a: int
    n_b: int


@dataclass(frozen=True, slots=True)
class PairAgreement:
    a: str
    b: str
    n_items: int  # items both finished
    exact_f1: float  # micro over those items
    partial_f1: float
    per_label: dict[str, LabelAgreement]


@dataclass(frozen=True, slots=True)
class ItemAgreement:
    item: Hashable
    annotators: tuple[str, ...]
    exact_f1: float  # mean over the pairs of annotators who finished the item
    partial_f1: float


@dataclass(frozen=True, slots=True)
class Agreement:
    annotators: tuple[str, ...]
    pairs: list[PairAgreement]
    items: list[ItemAgreement]  # lowest exact agreement first
    exact_f1: float | None  # mean over pairs (None: no pair shares an item)
    partial_f1: float | None


def agreement(
    annotations: Mapping[Hashable, Mapping[str, Sequence[Span]]],
    lengths: Mapping[Hashable, int],
    annotators: Sequence[str] | None = None,
) -> Agreement:
    """Agreement of ``annotators`` (default: everyone present) on ``annotations``
    (item -> annotator -> spans of one side), ``lengths`` giving each item's token count."""
    names = tuple(annotators) if annotators is not None else tuple(sorted({a for v in annotations.values() for a in v}))
    pairs: list[PairAgreement] = []
    per_item_scores: dict[Hashable, list[tuple[float, float]]] = {}
    for a, b in combinations(names, 2):
        shared = [k for k, v in annotations.items() if a in v and b in v]
        if not shared:
            pairs.append(PairAgreement(a, b, 0, 0.0, 0.0, {}))
            continue
        spans_a = [list(annotations[k][a]) for k in shared]
        spans_b = [list(annotations[k][b]) for k in shared]
        exact = span_scores([lengths[k] for k in shared], spans_a, spans_b)
        n_a = sum(len(x) for x in spans_a)
        n_b = sum(len(x) for x in spans_b)
        partial_m = sum(matches(x, y, "partial") for x, y in zip(spans_a, spans_b))
        labels = sorted({s.label for x in (*spans_a, *spans_b) for s in x})
        per_label: dict[str, LabelAgreement] = {}
        for lab in labels:
            la = sum(1 for x in spans_a for s in x if s.label == lab)
            lb = sum(1 for x in spans_b for s in x if s.label == lab)
            pm = sum(matches(x, y, "partial", lab) for x, y in zip(spans_a, spans_b))
            ex = exact["per_label"].get(lab, {}).get("f1", 0.0)
            per_label[lab] = LabelAgreement(float(ex), f1(pm, la, lb), la, lb)
        exact_f1 = float(exact["f1"]) if n_a + n_b else 1.0
        pairs.append(PairAgreement(a, b, len(shared), exact_f1, f1(partial_m, n_a, n_b), per_label))
        for k, x, y in zip(shared, spans_a, spans_b):
            per_item_scores.setdefault(k, []).append(
                (f1(matches(x, y, "exact"), len(x), len(y)), f1(matches(x, y, "partial"), len(x), len(y)))
            )
    items = [
        ItemAgreement(
            k,
            tuple(n for n in names if n in annotations[k]),
            sum(e for e, _ in scores) / len(scores),
            sum(p for _, p in scores) / len(scores),
        )
        for k, scores in per_item_scores.items()
    ]
    items.sort(key=lambda it: (it.exact_f1, it.partial_f1, str(it.item)))
    counted = [p for p in pairs if p.n_items]
    return Agreement(
        names,
        pairs,
        items,
        sum(p.exact_f1 for p in counted) / len(counted) if counted else None,
        sum(p.partial_f1 for p in counted) / len(counted) if counted else None,
    )
