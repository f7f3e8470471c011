"""What happens to each event the span editor sends: store it at once, say which item to
show next, and turn a person's mistakes (conflicts, refused spans, empty queues) into
messages. The Review page, the bench (``bench review``) and the tests call these same
functions, so the measured "accept and next" is the code path people use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.annotations.edits import describe_change, find_occurrences, merge_three_way, spans_from_payload
from core.annotations.queue import QueueFilter
from core.data import Sentence, Span, SpanError
from db.client_events import applied_outcome, record_applied
from db.errors import NotFoundError, QueryError
from db.items import load_item, occurrence_items
from db.queue import queue_next
from services import review
from services.review import NothingToUndoError, OccurrenceReport, ReviewConflictError

__all__ = [
    "Correction",
    "ConflictInfo",
    "EventOutcome",
    "EDIT_OPS",
    "handle_event",
    "resolve_conflict",
    "apply_correction",
    "find_correction_items",
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
    edited_item: int | None = None  # the item the event wrote to (None: nothing was written)
    head: int | None = None  # the person's new head on that item
    status: str | None = None  # their status of it now
    duplicate: bool = False  # the event was applied before (a retry): nothing was written now

    def to_json(self) -> dict[str, Any]:
        """What is kept of an applied event, to answer a retry of it the same way."""
        return {"item_id": self.item_id, "saved": self.saved, "message": list(self.message) if self.message else None,
                "queue_empty": self.queue_empty, "edited_item": self.edited_item, "head": self.head, "status": self.status}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EventOutcome":
        message = data.get("message")
        return cls(data.get("item_id"), data.get("saved"), tuple(message) if message else None, queue_empty=bool(data.get("queue_empty")),
                   edited_item=data.get("edited_item"), head=data.get("head"), status=data.get("status"), duplicate=True)  # fmt: skip


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


def _next(s: Session, project_id: int, user: str, filt: QueueFilter, item_id: int, backwards: bool = False) -> int | None:
    return queue_next(s, project_id, user, filt, item_id, backwards=backwards)


def handle_event(s: Session, user: str, project_id: int, event: Mapping[str, Any], filt: QueueFilter, labels: Sequence[str]) -> EventOutcome:
    """Store one editor event at once and say which item to show next.

    ``event``: {action, item, head, side?, spans?, before?, op?, comment?, client?, seq?}.
    Nothing raises for a person's mistake: conflicts, refused spans and empty queues come
    back in the outcome for the page to show. An event with a client id and sequence number
    is applied at most once: a retry gets the stored outcome (``duplicate``). The caller
    commits the session.
    """
    client, seq = event.get("client"), event.get("seq")
    if not (isinstance(client, str) and client and isinstance(seq, int)):
        return _handle(s, user, project_id, event, filt, labels)
    stored = applied_outcome(s, client, seq)
    if stored is not None:
        return EventOutcome.from_json(stored)
    outcome = _handle(s, user, project_id, event, filt, labels)
    if outcome.edited_item is not None:
        try:
            record_applied(s, client, seq, user, outcome.edited_item, str(event.get("action") or ""), outcome.to_json())
        except IntegrityError:  # the same event, applied by a concurrent request first: keep that one
            s.rollback()
            stored = applied_outcome(s, client, seq)
            return EventOutcome.from_json(stored) if stored is not None else EventOutcome(outcome.edited_item, message=("error", "Not saved: try again."))
    return outcome


def _handle(s: Session, user: str, project_id: int, event: Mapping[str, Any], filt: QueueFilter, labels: Sequence[str]) -> EventOutcome:
    action = str(event.get("action") or "")
    try:
        item_id = int(event["item"])
        head = int(event.get("head") or 0)
    except (KeyError, TypeError, ValueError):
        return EventOutcome(None, message=("error", f"malformed editor event: {dict(event)!r}"))
    side = event.get("side")
    try:
        if action == "edit":
            return _edit(s, user, project_id, item_id, head, str(side), event, labels)
        if action in ("undo", "redo"):
            move = review.undo if action == "undo" else review.redo
            try:
                result = move(s, item_id, user, head)
            except NothingToUndoError as exc:
                return EventOutcome(item_id, message=("info", str(exc)))
            except ReviewConflictError as exc:
                return EventOutcome(item_id, message=("error", str(exc)), conflict=_conflict_info(exc, None, [], [], frozenset(), action))
            return EventOutcome(item_id, saved=f"Saved {_now_text()} · {action} done", edited_item=item_id, head=result.head, status=result.status)
        if action in ("accept_all", "skip", "flag"):
            try:
                if action == "accept_all":
                    result = review.accept_item(s, item_id, user, head)
                    saved = f"Saved {_now_text()} · item accepted"
                elif action == "skip":
                    result = review.set_status(s, item_id, user, "skipped", base_head=head)
                    saved = f"Saved {_now_text()} · item skipped"
                else:
                    comment = str(event.get("comment") or "").strip()
                    result = review.set_status(s, item_id, user, "flagged", comment, base_head=head)
                    saved = f"Saved {_now_text()} · item flagged: {comment}"
            except ReviewConflictError as exc:
                return EventOutcome(item_id, message=("error", str(exc)), conflict=_conflict_info(exc, None, [], [], frozenset(), action))
            done = {"edited_item": item_id, "head": result.head, "status": result.status}
            nxt = _next(s, project_id, user, filt, item_id)
            if nxt is None or nxt == item_id:
                return EventOutcome(item_id, saved=saved, message=("info", "That was the last item of this queue."), queue_empty=True, **done)
            return EventOutcome(nxt, saved=saved, **done)
        if action in ("next", "prev"):
            nxt = _next(s, project_id, user, filt, item_id, backwards=action == "prev")
            if nxt is None:
                return EventOutcome(item_id, message=("info", "No other item in this queue."), queue_empty=True)
            return EventOutcome(nxt)
        return EventOutcome(item_id, message=("error", f"unknown editor action {action!r}"))
    except SpanError as exc:
        return EventOutcome(item_id, message=("error", f"Not saved: {exc}"))
    except NotFoundError as exc:
        return EventOutcome(None, message=("error", str(exc)))
    except QueryError as exc:
        return EventOutcome(item_id, message=("error", f"Not saved: {exc}"))


def _edit(s: Session, user: str, project_id: int, item_id: int, head: int, side: str, event: Mapping[str, Any], labels: Sequence[str]) -> EventOutcome:
    op = str(event.get("op") or "")
    if op not in EDIT_OPS:
        return EventOutcome(item_id, message=("error", f"unknown edit {op!r}"))
    view = review.load_view(s, item_id, user)
    if view.record.project_id != project_id:
        return EventOutcome(None, message=("error", f"item {item_id} is not in this project"))
    sentence = view.sentence(side)
    if sentence is None:
        return EventOutcome(item_id, message=("error", "this item has no translation yet"))
    payload = list(event.get("spans") or [])
    spans = spans_from_payload(sentence, payload, labels, f"human:{user}", f"{side} spans")
    before_payload = event.get("before")
    before = spans_from_payload(sentence, before_payload, None, f"human:{user}", f"{side} spans") if before_payload is not None else view.spans[side]
    try:
        result = review.save_edit(s, item_id, side, spans, user, head, pending=_pending(payload), action=EDIT_OPS[op], comment=op)
    except ReviewConflictError as exc:
        return EventOutcome(item_id, message=("error", str(exc)), conflict=_conflict_info(exc, side, before, spans, _pending(payload), "edit"))
    correction = _correction(side, sentence, before, spans, item_id) if op in ("add", "relabel", "delete") else None
    return EventOutcome(item_id, saved=f"Saved {_now_text()} · {describe_change(before, spans, sentence)}", correction=correction,
                        edited_item=item_id, head=result.head, status=result.status)  # fmt: skip


def _conflict_info(exc: ReviewConflictError, side: str | None, base: list[Span], mine: list[Span], pending: frozenset, action: str) -> ConflictInfo:
    changes = []
    for e in exc.changes:
        if e.side is None:
            what = f"status {getattr(e.after, 'status', '?')}"
        else:
            what = f"{e.side}: " + describe_change(getattr(e.before, "spans", None), getattr(e.after, "spans", None))
        changes.append((e.created_at, e.user, what))
    return ConflictInfo(exc.item_id, side, base, mine, pending, exc.current_spans, exc.head, changes, action)


def resolve_conflict(s: Session, user: str, conflict: ConflictInfo, *, prefer_mine: bool = False) -> EventOutcome:
    """Apply the person's change on top of what is stored now (three-way: their removals
    and additions). An addition that overlaps a stored span is left out and reported,
    unless ``prefer_mine``: then it replaces the stored spans it overlaps ("use my label").
    "Saved" is said only when something was written."""
    if conflict.side is None or conflict.theirs is None:
        return EventOutcome(conflict.item_id, message=("info", "Reloaded the current version; do the action again."))
    merged, refused = merge_three_way(conflict.base, conflict.mine, conflict.theirs)
    if prefer_mine and refused:
        merged = sorted([sp for sp in merged if not any(sp.overlaps(r) for r in refused)] + refused, key=lambda x: x.start)
        refused = []
    pending = {sp.key() for sp in conflict.theirs} & {sp.key() for sp in merged}
    view = review.load_view(s, conflict.item_id, user)
    stored_pending = view.pending.get(conflict.side, frozenset())
    keep_pending = (set(stored_pending) & pending) | (set(conflict.mine_pending) & {sp.key() for sp in merged})
    try:
        result = review.save_edit(s, conflict.item_id, conflict.side, merged, user, view.head, pending=keep_pending, comment="merged after a conflict")
    except ReviewConflictError as exc:
        return EventOutcome(conflict.item_id, message=("error", str(exc)))
    left_out = ", ".join(f"{sp.label} [{sp.start}, {sp.end})" for sp in refused)
    if not result.changed:
        text = "Nothing was saved: the stored version already has your change" + (f"; left out because they overlap stored spans: {left_out}" if refused else ".")
        return EventOutcome(conflict.item_id, message=("warning" if refused else "info", text))
    note = f"Saved {_now_text()} · your change applied on top of the stored version"
    if refused:
        return EventOutcome(conflict.item_id, saved=note, message=("warning", f"Left out because they overlap stored spans: {left_out}"))
    return EventOutcome(conflict.item_id, saved=note)


def apply_correction(s: Session, user: str, project_id: int, correction: Correction, item_ids: Sequence[int]) -> OccurrenceReport:
    """Apply a correction to the same string in ``item_ids`` (appended edits)."""
    return review.apply_occurrences(s, project_id, user, correction.side, correction.words, correction.label, item_ids)


def find_correction_items(s: Session, project_id: int, correction: Correction, limit: int = 500) -> list[int]:
    """Items (other than the corrected one) whose text contains the corrected string as it
    is written in the corrected sentence (whole tokens are checked when it is applied)."""
    record = load_item(s, correction.item_id)
    sentence = record.sentence(correction.side)
    text = correction.text
    if sentence is not None:
        starts = find_occurrences(sentence, correction.words)
        if starts:
            i = starts[0]
            text = sentence.text[sentence.tokens[i].start : sentence.tokens[i + len(correction.words) - 1].end]
    return occurrence_items(s, project_id, correction.side, text, correction.item_id, limit)
