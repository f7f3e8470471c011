"""What the span editor component is sent for one item (JSON-serializable), built from
the ledger's view of it. Pure: the Review and Adjudicate pages and the bench use it."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from core.annotations.edits import span_origins, unprojected_spans
from core.annotations.ledger import ReviewView
from core.data import Sentence, Span
from core.highlight import label_colours

__all__ = ["editor_data"]


def _tokens(sentence: Sentence) -> tuple[list[str], list[bool]]:
    words = [t.text for t in sentence.tokens]
    spaces = [
        i + 1 < len(sentence.tokens) and sentence.tokens[i + 1].start > t.end for i, t in enumerate(sentence.tokens)
    ]
    return words, spaces


def _span_payload(spans: Sequence[Span], pending: frozenset[tuple[int, int, str]]) -> list[dict[str, Any]]:
    return [
        {
            "start": s.start,
            "end": s.end,
            "label": s.label,
            "source": s.source,
            "confidence": None if s.confidence is None else round(float(s.confidence), 3),
            "pending": s.key() in pending,
        }
        for s in spans
    ]


def editor_data(
    view: ReviewView,
    labels: Sequence[str],
    *,
    ack: Mapping[str, Any] | None = None,
    saved: str | None = None,
    message: tuple[str, str] | None = None,
    image_uri: str | None = None,
    position: str | None = None,
    readonly: bool = False,
    show_links: bool = False,
) -> dict[str, Any]:
    """Everything the span editor shows for one item (JSON-serializable)."""
    record = view.record
    item = view.item
    all_labels = list(labels) or sorted({s.label for spans in view.spans.values() for s in spans})
    for spans in view.spans.values():
        for s in spans:
            if s.label not in all_labels:
                all_labels.append(s.label)
    colours = label_colours(all_labels)
    sides: dict[str, Any] = {}
    for side, sentence in (("source", item.source), ("target", item.target)):
        if sentence is None:
            continue
        words, spaces = _tokens(sentence)
        sides[side] = {
            "lang": sentence.lang,
            "tokens": words,
            "spaces": spaces,
            "spans": _span_payload(view.spans[side], view.pending[side]),
            "own": view.own[side],
            "suggestion": view.suggestion_source[side],
        }
    links = [[ln.src, ln.tgt] for ln in item.alignment]
    origins: list[int | None] = []
    unprojected: list[dict[str, Any]] = []
    if item.target is not None:
        origins = span_origins(view.spans["source"], view.spans["target"], item.alignment)
        missing = unprojected_spans(view.spans["source"], origins)
        unprojected = [{"start": s.start, "end": s.end, "label": s.label, "text": s.text(item.source)} for s in missing]
    return {
        "item": {
            "id": record.id,
            "external_id": record.external_id,
            "head": view.head,
            "version": record.version,
            "status": view.status,
            "flag_comment": view.flag_comment,
            "position": position,
        },
        "user": view.user,
        "labels": [{"name": lab, "colour": colours[lab]} for lab in all_labels],
        "sides": sides,
        "origins": origins,
        "links": links,
        "unprojected": unprojected,
        "image": image_uri,
        "can_undo": view.undo_side is not None,
        "can_redo": view.redo_side is not None,
        "ack": dict(ack or {}),
        "saved": saved,
        "message": {"kind": message[0], "text": message[1]} if message else None,
        "readonly": readonly,
        "show_links": show_links,
    }
