"""The review workbench's server side: what the span editor is sent, and what happens to
each event it sends back (store it at once, choose the next item, report conflicts).

The Review page, the bench (``bench review``) and the tests call these same functions, so
the measured "accept and next" is the code path people use. No Streamlit here: the page
keeps only the results in ``st.session_state``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from core.data import Sentence, Span, SpanError
from core.highlight import label_colours
from core.review import (
    QueueFilter,
    describe_change,
    merge_three_way,
    span_origins,
    spans_from_payload,
    unprojected_spans,
)
from db import queries as q
from db import review as rv
from db.engine import session_scope

__all__ = [
    "Correction",
    "ConflictInfo",
    "EventOutcome",
    "editor_data",
    "handle_event",
    "resolve_conflict",
    "apply_correction",
    "EDIT_OPS",
]

# What the editor may ask for in an "edit" event, and the edit-log action each becomes.
EDIT_OPS = {
    "add": "edit",
    "relabel": "edit",
    "delete": "edit",
    "resize": "edit",
    "merge": "edit",
    "split": "edit",
    "accept_span": "accept",
    "accept_side": "accept",
    "reject_span": "reject",
}
NAV_ACTIONS = ("accept_all", "skip", "flag", "next", "prev")


@dataclass(frozen=True, slots=True)
class Correction:
    """One entity string's correction, offered for the same string in other items."""

    side: str
    words: tuple[str, ...]
    label: str | None  # None: the entity was removed
    item_id: int

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True, slots=True)
class ConflictInfo:
    item_id: int
    side: str | None
    base: list[Span]  # what this person saw before their change
    mine: list[Span]  # their change (not saved)
    mine_pending: frozenset[tuple[int, int, str]]
    theirs: list[Span] | None  # what is stored now
    head: int  # base for the next write
    changes: list[tuple[datetime, str, str]]  # (when, who, what) since they loaded the item
    action: str


@dataclass(slots=True)
class EventOutcome:
    item_id: int | None  # the item to show now
    saved: str | None = None  # the "saved" mark
    message: tuple[str, str] | None = None  # (kind: error/warning/info, text)
    conflict: ConflictInfo | None = None
    correction: Correction | None = None
    queue_empty: bool = False
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- payload


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
    view: rv.ReviewView,
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
    item = record.item
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


# --------------------------------------------------------------------------- events


def _pending(payload: Sequence[Mapping[str, Any]]) -> frozenset[tuple[int, int, str]]:
    return frozenset((int(d["start"]), int(d["end"]), str(d["label"])) for d in payload if d.get("pending"))


def _correction(side: str, sentence: Sentence, before: Sequence[Span], after: Sequence[Span], item_id: int) -> Correction | None:
    """The one entity string a change labelled, relabelled or removed (None otherwise)."""
    b = {s.key() for s in before}
    a = {s.key() for s in after}
    added = [s for s in after if s.key() not in b]
    removed = [s for s in before if s.key() not in a]
    if len(added) == 1 and all((r.start, r.end) == (added[0].start, added[0].end) for r in removed):
        s = added[0]
        return Correction(side, tuple(sentence.words[s.start : s.end]), s.label, item_id)
    if len(removed) == 1 and not added:
        s = removed[0]
        return Correction(side, tuple(sentence.words[s.start : s.end]), None, item_id)
    return None


def _now_text() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _next(s, project_id: int, user: str, filt: QueueFilter, item_id: int, backwards: bool = False) -> int | None:  # noqa: ANN001
    return rv.queue_next(s, project_id, user, filt, item_id, backwards=backwards)


def handle_event(
    url: str | None,
    user: str,
    project_id: int,
    event: Mapping[str, Any],
    filt: QueueFilter,
    labels: Sequence[str],
) -> EventOutcome:
    """Store one editor event at once and say which item to show next.

    ``event``: {action, item, head, side?, spans?, before?, op?, comment?}. Nothing raises
    for a person's mistake: conflicts, refused spans and empty queues come back in the
    outcome for the page to show.
    """
    action = str(event.get("action") or "")
    try:
        item_id = int(event["item"])
        head = int(event.get("head") or 0)
    except (KeyError, TypeError, ValueError):
        return EventOutcome(None, message=("error", f"malformed editor event: {dict(event)!r}"))
    side = event.get("side")
    try:
        with session_scope(url) as s:
            if action == "edit":
                op = str(event.get("op") or "")
                if op not in EDIT_OPS:
                    return EventOutcome(item_id, message=("error", f"unknown edit {op!r}"))
                view = rv.load_view(s, item_id, user)
                if view.record.project_id != project_id:
                    return EventOutcome(None, message=("error", f"item {item_id} is not in this project"))
                sentence = view.sentence(str(side))
                if sentence is None:
                    return EventOutcome(item_id, message=("error", "this item has no translation yet"))
                payload = list(event.get("spans") or [])
                spans = spans_from_payload(sentence, payload, labels, f"human:{user}", f"{side} spans")
                before_payload = event.get("before")
                before = (
                    spans_from_payload(sentence, before_payload, None, f"human:{user}", f"{side} spans")
                    if before_payload is not None
                    else view.spans[str(side)]
                )
                try:
                    rv.save_review_edit(
                        s, item_id, str(side), spans, user, head, pending=_pending(payload), action=EDIT_OPS[op], comment=op
                    )
                except rv.ReviewConflictError as exc:
                    return EventOutcome(item_id, message=("error", str(exc)), conflict=_conflict_info(exc, str(side), before, spans, _pending(payload), action))
                correction = _correction(str(side), sentence, before, spans, item_id) if op in ("add", "relabel", "delete") else None
                return EventOutcome(item_id, saved=f"Saved {_now_text()} · {describe_change(before, spans, sentence)}", correction=correction)
            if action in ("undo", "redo"):
                move = rv.undo_review if action == "undo" else rv.redo_review
                try:
                    move(s, item_id, user, head)
                except rv.NothingToUndoError as exc:
                    return EventOutcome(item_id, message=("info", str(exc)))
                except rv.ReviewConflictError as exc:
                    return EventOutcome(item_id, message=("error", str(exc)), conflict=_conflict_info(exc, None, [], [], frozenset(), action))
                return EventOutcome(item_id, saved=f"Saved {_now_text()} · {action} done")
            if action in ("accept_all", "skip", "flag"):
                try:
                    if action == "accept_all":
                        rv.accept_item(s, item_id, user, head)
                        saved = f"Saved {_now_text()} · item accepted"
                    elif action == "skip":
                        rv.set_review_status(s, item_id, user, "skipped", base_head=head)
                        saved = f"Saved {_now_text()} · item skipped"
                    else:
                        comment = str(event.get("comment") or "").strip()
                        rv.set_review_status(s, item_id, user, "flagged", comment, base_head=head)
                        saved = f"Saved {_now_text()} · item flagged: {comment}"
                except rv.ReviewConflictError as exc:
                    return EventOutcome(item_id, message=("error", str(exc)), conflict=_conflict_info(exc, None, [], [], frozenset(), action))
                nxt = _next(s, project_id, user, filt, item_id)
                if nxt is None or nxt == item_id:
                    return EventOutcome(item_id, saved=saved, message=("info", "That was the last item of this queue."), queue_empty=True)
                return EventOutcome(nxt, saved=saved)
            if action in ("next", "prev"):
                nxt = _next(s, project_id, user, filt, item_id, backwards=action == "prev")
                if nxt is None:
                    return EventOutcome(item_id, message=("info", "No other item in this queue."), queue_empty=True)
                return EventOutcome(nxt)
            return EventOutcome(item_id, message=("error", f"unknown editor action {action!r}"))
    except SpanError as exc:
        return EventOutcome(item_id, message=("error", f"Not saved: {exc}"))
    except q.NotFoundError as exc:
        return EventOutcome(None, message=("error", str(exc)))
    except q.QueryError as exc:
        return EventOutcome(item_id, message=("error", f"Not saved: {exc}"))


def _conflict_info(
    exc: rv.ReviewConflictError, side: str | None, base: list[Span], mine: list[Span], pending: frozenset, action: str
) -> ConflictInfo:
    changes = []
    for e in exc.changes:
        if e.side is None:
            what = f"status {(e.after or {}).get('status')}"
        else:
            what = f"{e.side}: " + describe_change(e.before, e.after)
        changes.append((e.created_at, e.user, what))
    return ConflictInfo(exc.item_id, side, base, mine, pending, exc.current_spans, exc.head, changes, action)


def resolve_conflict(url: str | None, user: str, conflict: ConflictInfo) -> EventOutcome:
    """Apply the person's change on top of what is stored now (three-way: their removals
    and additions; additions that overlap a stored span are refused and reported)."""
    if conflict.side is None or conflict.theirs is None:
        return EventOutcome(conflict.item_id, message=("info", "Reloaded the current version; do the action again."))
    merged, refused = merge_three_way(conflict.base, conflict.mine, conflict.theirs)
    pending = {s.key() for s in conflict.theirs} & {s.key() for s in merged}
    with session_scope(url) as s:
        view = rv.load_view(s, conflict.item_id, user)
        stored_pending = view.pending.get(conflict.side, frozenset())
        keep_pending = (set(stored_pending) & pending) | (set(conflict.mine_pending) & {s.key() for s in merged})
        try:
            rv.save_review_edit(s, conflict.item_id, conflict.side, merged, user, view.head, pending=keep_pending, comment="merged after a conflict")
        except rv.ReviewConflictError as exc:
            return EventOutcome(conflict.item_id, message=("error", str(exc)))
    note = f"Saved {_now_text()} · your change applied on top of the stored version"
    if refused:
        return EventOutcome(
            conflict.item_id,
            saved=note,
            message=("warning", "Left out because they overlap stored spans: " + ", ".join(f"{s.label} [{s.start}, {s.end})" for s in refused)),
        )
    return EventOutcome(conflict.item_id, saved=note)


def apply_correction(url: str | None, user: str, project_id: int, correction: Correction, item_ids: Sequence[int]) -> rv.OccurrenceReport:
    """Apply a correction to the same string in ``item_ids`` (appended edits)."""
    with session_scope(url) as s:
        return rv.apply_occurrences(s, project_id, user, correction.side, correction.words, correction.label, item_ids)


def find_correction_items(url: str | None, project_id: int, correction: Correction, limit: int = 500) -> list[int]:
    """Items (other than the corrected one) whose text contains the corrected string."""
    with session_scope(url) as s:
        record = q.load_item(s, correction.item_id)
        sentence = record.item.source if correction.side == "source" else record.item.target
        text = correction.text
        if sentence is not None:
            spans = [i for i in range(len(sentence.tokens) - len(correction.words) + 1) if tuple(sentence.words[i : i + len(correction.words)]) == correction.words]
            if spans:
                i = spans[0]
                text = sentence.text[sentence.tokens[i].start : sentence.tokens[i + len(correction.words) - 1].end]
        return rv.occurrence_items(s, project_id, correction.side, text, correction.item_id, limit)
