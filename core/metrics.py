"""Entity-level evaluation: seqeval in strict IOB2 mode, the measure the NER literature reports.

Gold is scored as its file wrote it. A reader that repairs tags (the CoNLL reader turns an
``I-`` without a ``B-`` into a span, as conlleval does) keeps the tags as written in
``item.meta["written_tags"]`` and ``gold_tags`` scores those, so an invalid gold tag counts
as seqeval strict counts it (no entity), never as the repair; ``item_scores`` reports how
many gold sentences had repaired tags.

Strict mode counts an entity as correct only when its type and exact token boundaries match,
so a projection that catches "European" of "European Parliament" earns nothing. Every score
in LabelBridge (benchmarks, the review page, student training) goes through this module so
the figures are comparable.
"""

from __future__ import annotations

import warnings
from typing import Sequence

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from core.data import Item, Sentence, Span
from core.errors import ConfigError
from core.tags import TagError, spans_to_tags, tags_to_spans

__all__ = ["WRITTEN_TAGS", "entity_scores", "gold_tags", "item_scores", "label_scores", "span_scores"]

WRITTEN_TAGS = "written_tags"  # item.meta key: {side: the IOB2 tags as the file wrote them}

_AVERAGES = ("micro avg", "macro avg", "weighted avg")


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Strict IOB2 precision, recall and F1, overall (micro) and per label.

    ``gold`` and ``pred`` hold one IOB2 tag sequence per sentence. Returns
    ``{"precision", "recall", "f1", "support", "per_label": {label: {"precision", "recall",
    "f1", "support"}}}`` where support counts gold entities. No entity on either side gives
    zeros (seqeval's convention with ``zero_division=0``).
    """
    if len(gold) != len(pred):
        raise ConfigError(f"{len(gold)} gold sentences but {len(pred)} predicted sentences")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ConfigError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted tags")
    gold_lists = [list(g) for g in gold]
    pred_lists = [list(p) for p in pred]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on empty label sets; zeros are the answer
        report = classification_report(
            gold_lists, pred_lists, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
        )
    micro = report["micro avg"]
    per_label = {
        label: {
            "precision": float(r["precision"]),
            "recall": float(r["recall"]),
            "f1": float(r["f1-score"]),
            "support": int(r["support"]),
        }
        for label, r in sorted(report.items())
        if label not in _AVERAGES
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "support": int(micro["support"]),
        "per_label": per_label,
    }


def span_scores(
    sentences: Sequence[Sentence | int],
    gold: Sequence[Sequence[Span]],
    pred: Sequence[Sequence[Span]],
) -> dict:
    """``entity_scores`` for span lists: gold and predicted spans of the same sentences.

    ``sentences`` gives each sentence (or just its token count) so both sides are written as
    IOB2 tags of the right length by the one converter, ``core.tags.spans_to_tags``.
    """
    if not (len(sentences) == len(gold) == len(pred)):
        raise ConfigError(f"{len(sentences)} sentences, {len(gold)} gold span lists, {len(pred)} predicted span lists")
    gold_tags: list[list[str]] = []
    pred_tags: list[list[str]] = []
    for i, (sentence, g, p) in enumerate(zip(sentences, gold, pred)):
        n = sentence if isinstance(sentence, int) else len(sentence)
        for side, spans, out in (("gold", g, gold_tags), ("predicted", p, pred_tags)):
            try:
                out.append(spans_to_tags(n, spans))
            except TagError as exc:
                raise ConfigError(f"sentence {i}: {side} spans: {exc}") from exc
    return entity_scores(gold_tags, pred_tags)


def label_scores(
    sentences: Sequence[Sentence | int],
    gold: Sequence[Sequence[Span]],
    pred: Sequence[Sequence[Span]],
    labels: set[str] | frozenset[str],
) -> dict:
    """``span_scores`` counting only ``labels`` on both sides, rounded for a benchmark's JSON.

    Used where the model and the gold know different label sets (a CoNLL-2003 model on
    MasakhaNER2's DATE): a label the model cannot predict is left out, and the caller says so.
    """
    keep = frozenset(labels)
    out = span_scores(sentences, [[sp for sp in g if sp.label in keep] for g in gold], [[sp for sp in p if sp.label in keep] for p in pred])
    return {
        "precision": round(out["precision"], 4),
        "recall": round(out["recall"], 4),
        "f1": round(out["f1"], 4),
        "support": out["support"],
        "per_label": {k: {m: round(v, 4) if isinstance(v, float) else v for m, v in r.items()} for k, r in out["per_label"].items()},
    }


def gold_tags(item: Item, side: str = "source") -> tuple[list[str], bool]:
    """The gold IOB2 tags of one side of an item, and whether they are the tags as written.

    The written tags count when a reader kept them (``meta["written_tags"][side]``) and the
    side's spans are still the ones the reader made of them; once a person changed the
    spans, the spans are the gold."""
    sentence = item.source if side == "source" else item.target
    spans = item.source_spans if side == "source" else item.target_spans
    if sentence is None:
        raise ConfigError(f"item {item.id}: no {side} sentence")
    written = (item.meta.get(WRITTEN_TAGS) or {}).get(side) if isinstance(item.meta.get(WRITTEN_TAGS), dict) else None
    if isinstance(written, list) and len(written) == len(sentence):
        try:
            repaired, _issues = tags_to_spans(sentence, written, "IOB2")
        except TagError:
            repaired = None
        if repaired is not None and sorted(s.key() for s in repaired) == sorted(s.key() for s in spans):
            return [str(tag) for tag in written], True
    return spans_to_tags(len(sentence), spans), False


def item_scores(gold: Sequence[Item], pred: Sequence[Sequence[Span]], side: str = "source") -> dict:
    """``entity_scores`` of predicted spans against the gold items' ``side``, scored strictly
    on the tags as written (``gold_tags``); adds ``repaired_gold``: the gold sentences whose
    written tags a reader had to repair (scored as written)."""
    if len(gold) != len(pred):
        raise ConfigError(f"{len(gold)} gold items but {len(pred)} predicted span lists")
    gold_lists: list[list[str]] = []
    pred_lists: list[list[str]] = []
    repaired = 0
    for i, (item, p) in enumerate(zip(gold, pred)):
        tags, as_written = gold_tags(item, side)
        if as_written and tags != spans_to_tags(len(tags), item.source_spans if side == "source" else item.target_spans):
            repaired += 1
        gold_lists.append(tags)
        try:
            pred_lists.append(spans_to_tags(len(tags), p))
        except TagError as exc:
            raise ConfigError(f"sentence {i}: predicted spans: {exc}") from exc
    return {**entity_scores(gold_lists, pred_lists), "repaired_gold": repaired}
