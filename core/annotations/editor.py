"""What the span editor component is sent (JSON-serializable), built from the ledger's
views. Pure: the Review and Adjudicate pages and the bench use it.

The editor holds a small queue in the browser: the item shown now and the next few of the
person's queue (``items``), so Enter shows the next sentence at once while the save goes to
the server in the background. ``reset`` tells it to drop what it shows and start from
``items[0]`` (a new filter, a jump, a resolved conflict); ``ack`` answers the event with
that client id and sequence number once the database has it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from core.annotations.edits import span_origins, unprojected_spans
from core.annotations.ledger import ReviewView
from core.data import Sentence, Span
from core.highlight import label_colours

__all__ = ["editor_data", "item_payload", "label_palette", "side_names"]


def _tokens(sentence: Sentence) -> tuple[list[str], list[bool]]:
    words = [t.text for t in sentence.tokens]
    spaces = [i + 1 < len(sentence.tokens) and sentence.tokens[i + 1].start > t.end for i, t in enumerate(sentence.tokens)]
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


def label_palette(labels: Sequence[str], views: Sequence[ReviewView] = ()) -> list[dict[str, str]]:
    """The project's labels (then any other label the spans use) with their colours."""
    names = list(labels)
    for view in views:
        for spans in view.spans.values():
            for s in spans:
                if s.label not in names:
                    names.append(s.label)
    colours = label_colours(names)
    return [{"name": lab, "colour": colours[lab]} for lab in names]


def item_payload(view: ReviewView, *, image_uri: str | None = None, position: str | None = None) -> dict[str, Any]:
    """One item as the editor shows it: tokens, spans, links, what was not projected."""
    record = view.record
    item = view.item
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
        "sides": sides,
        "origins": origins,
        "links": [[ln.src, ln.tgt] for ln in item.alignment],
        "unprojected": unprojected,
        "image": image_uri,
        "has_image": record.image_path is not None,
        "can_undo": view.undo_side is not None,
        "can_redo": view.redo_side is not None,
    }


def side_names(direction: str = "translate-train") -> dict[str, str]:
    """What each side is called to a person: in translate-test the target side is the
    original sentence being labelled and the source side its translation (the evidence)."""
    if direction == "translate-test":
        return {"source": "Translation", "target": "Original"}
    return {"source": "Source", "target": "Translation"}


def editor_data(
    views: ReviewView | Sequence[ReviewView],
    labels: Sequence[str],
    *,
    ack: Mapping[str, Any] | None = None,
    saved: str | None = None,
    message: tuple[str, str] | None = None,
    images: Mapping[int, str | None] | None = None,
    image_uri: str | None = None,
    position: str | None = None,
    queue: Mapping[str, Any] | None = None,
    reset: int = 0,
    readonly: bool = False,
    show_links: bool = False,
    binary: str | None = None,
    prefetch: bool = True,
    direction: str = "translate-train",
) -> dict[str, Any]:
    """Everything the span editor is sent: the item shown now and the next ones of the queue.

    ``views``: the item to show first, then the next items of the queue (or one view).
    ``images``: item id -> thumbnail data URI (the first items only: the rest arrive later).
    ``queue``: ``{"index": place of views[0] in the queue, "total": items in the queue}``.
    ``binary``: a label: the editor asks yes/no for each suggested span of that label.
    ``prefetch`` False: every navigation goes to the server (pages without a queue).
    ``direction``: the project's, for what the two sides are called (see side_names).
    """
    views = [views] if isinstance(views, ReviewView) else list(views)
    images = dict(images or {})
    if image_uri is not None and views:
        images.setdefault(views[0].id, image_uri)
    items = [item_payload(v, image_uri=images.get(v.id), position=position if k == 0 else None) for k, v in enumerate(views)]
    return {
        "user": views[0].user if views else None,
        "labels": label_palette(labels, views),
        "items": items,
        "queue": dict(queue) if queue else None,
        "reset": int(reset),
        "ack": dict(ack or {}),
        "saved": saved,
        "message": {"kind": message[0], "text": message[1]} if message else None,
        "readonly": readonly,
        "show_links": show_links,
        "binary": binary,
        "prefetch": prefetch,
        "side_names": side_names(direction),
    }
