"""Review actions: each person's own version of each item, written to the append-only log.

Every write names the last edit id the person saw of this item (``base_head``); if their
own stream moved meanwhile (another tab, another device) a ReviewConflictError carries what
changed and nothing is written. Each write also bumps the item's version (compare-and-set),
so two concurrent transactions cannot both pass the check: the loser is rolled back and run
again on fresh data, and when it keeps losing it becomes a conflict, never a lost edit.
After every write the item's shared status is set to the ledger's ``item_status`` and its
queue numbers are recomputed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.annotations.edits import apply_to_occurrence, describe_change
from core.annotations.ledger import ReviewView, as_decision, item_status, user_view
from core.annotations.records import SIDES, SPAN_ACTIONS, STATUSES, EditEvent, StatusChange, Version
from core.data import Sentence, Span, check_spans
from db.codecs import chunks
from db.edits import append_edit, events_since, history
from db.errors import NotFoundError, QueryError, check_choice, check_user
from db.items import StaleItemError, bump_item, load_item, load_items
from db.projects import get_project
from db.review_state import set_review_state
from services.labels import preferred_source
from services.queue import refresh_items

__all__ = [
    "ReviewConflictError",
    "NothingToUndoError",
    "SaveResult",
    "HistoryEntry",
    "OccurrenceReport",
    "load_view",
    "load_views",
    "save_edit",
    "accept_item",
    "undo",
    "redo",
    "set_status",
    "apply_occurrences",
    "item_history",
]

RETRIES = 8  # backoff up to ~0.6 s in all: two people saving one item at once rarely see a conflict
T = TypeVar("T")


class NothingToUndoError(QueryError):
    """Undo (or redo) with an empty history."""


class ReviewConflictError(QueryError):
    """The person's own version of the item moved since ``base_head`` (another tab or
    device), or concurrent writers kept winning. ``current_spans`` is their version of
    ``side`` now, ``changes`` the edits made since; nothing was written."""

    def __init__(self, item_id: int, current_spans: list[Span] | None, side: str | None, head: int, changes: list[EditEvent]):
        who = sorted({c.user for c in changes})
        super().__init__(
            f"item {item_id} changed since you loaded it ({len(changes)} newer edit(s) by {', '.join(who) or 'someone'}); nothing was saved"
        )
        self.item_id = item_id
        self.current_spans = current_spans
        self.side = side
        self.head = head
        self.changes = changes


@dataclass(frozen=True, slots=True)
class SaveResult:
    item_id: int
    version: int  # the item's version after the write
    head: int  # the new base for this person's next write
    status: str  # this person's status now
    changed: bool  # False when the request changed nothing (nothing was written)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    when: datetime
    user: str
    action: str
    side: str | None
    what: str


@dataclass(frozen=True, slots=True)
class OccurrenceReport:
    items_changed: int
    occurrences_changed: int
    refused: int  # occurrences another span overlapped partly (left alone)
    item_ids: tuple[int, ...]


# --------------------------------------------------------------------------- loading


def load_views(s: Session, item_ids: Sequence[int], user: str, media_dir: Path | None = None) -> list[ReviewView]:
    """Several items as ``user`` sees them (in the given order; unknown ids left out)."""
    user = check_user(user)
    preferred: dict[int, str | None] = {}
    out = []
    for record in load_items(s, list(item_ids), media_dir):
        if record.project_id not in preferred:
            preferred[record.project_id] = preferred_source(s, record.project_id)
        out.append(user_view(record, user, preferred[record.project_id]))
    return out


def load_view(s: Session, item_id: int, user: str, media_dir: Path | None = None) -> ReviewView:
    """One item as ``user`` sees it (core.annotations.ledger.user_view). Raises NotFoundError."""
    found = load_views(s, [item_id], user, media_dir)
    if not found:
        raise NotFoundError(f"no item with id {item_id}")
    return found[0]


# --------------------------------------------------------------------------- writing


def _retrying(s: Session, item_id: int, user: str, side: str | None, fn: Callable[[], T]) -> T:
    """Run a write; when a concurrent transaction won the item's version check (or SQLite
    refused to upgrade a stale read snapshot), roll back and run it again on fresh data.
    A write that loses every time is a conflict: the person sees what is stored now."""
    for attempt in range(RETRIES):
        try:
            return fn()
        except (StaleItemError, StaleDataError):
            s.rollback()
        except OperationalError as exc:
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            s.rollback()
        time.sleep(random.uniform(0, 0.005 * 2**attempt))  # two writers that keep colliding fall out of step
    view = load_view(s, item_id, user)
    raise ReviewConflictError(item_id, view.spans.get(side) if side else None, side, view.head, [])


def _check_base(s: Session, view: ReviewView, base_head: int | None, side: str | None) -> None:
    if base_head is None or view.head == base_head:
        return
    raise ReviewConflictError(view.id, view.spans.get(side) if side else None, side, view.head, events_since(s, view.id, view.user, base_head))


def _sentence_of(view: ReviewView, side: str) -> Sentence:
    sentence = view.sentence(side)
    if sentence is None:
        raise QueryError(f"item {view.record.external_id} has no translation yet")
    return sentence


def _checked(s: Session, view: ReviewView, side: str, spans: Sequence[Span]) -> list[Span]:
    """Spans that fit the sentence, do not overlap, carry the project's labels, and carry
    no machine confidence where a person made them."""
    ordered = check_spans(_sentence_of(view, side), as_decision(spans), f"item {view.record.external_id} {side}")
    labels = set(get_project(s, view.record.project_id).labels)
    unknown = sorted({sp.label for sp in ordered} - labels)
    if labels and unknown:
        raise QueryError(f"item {view.record.external_id} {side}: label(s) {', '.join(unknown)} not in the project's labels")
    return ordered


def _write_spans(s: Session, view: ReviewView, side: str, spans: Sequence[Span], pending: Iterable[tuple[int, int, str]], action: str, comment: str | None) -> int:
    ordered = _checked(s, view, side, spans)
    pend = frozenset(set(pending) & {sp.key() for sp in ordered})
    before = Version(tuple(view.spans[side]), view.pending[side])
    return append_edit(s, view.id, view.user, side, action, before, Version(tuple(ordered), pend), view.record.version, comment)


def _finish(s: Session, view: ReviewView) -> int:
    """The item's shared status from the ledger, its version bumped (compare-and-set), its
    queue numbers recomputed; returns the new version."""
    fresh = load_item(s, view.id)
    version = bump_item(s, view.id, view.record.version, item_status(fresh.annotations))
    refresh_items(s, [view.id])
    return version


def save_edit(
    s: Session,
    item_id: int,
    side: str,
    spans: Sequence[Span],
    user: str,
    base_head: int | None,
    *,
    pending: Iterable[tuple[int, int, str]] = (),
    action: str = "edit",
    comment: str | None = None,
) -> SaveResult:
    """Store ``user``'s new version of one side (one row of the edit log).

    ``pending``: keys of spans that are still unaccepted suggestions. ``action`` is edit,
    accept or reject (reject: a suggestion was removed). The person's status is unchanged
    (a started item stays in their queue until they accept it). Raises ReviewConflictError
    when their version moved since ``base_head``, SpanError for spans that do not fit or
    overlap, QueryError for a label outside the project.
    """
    check_choice(side, SIDES, "side")
    check_choice(action, SPAN_ACTIONS, "span action")
    user = check_user(user)
    pending = list(pending)

    def run() -> SaveResult:
        view = load_view(s, item_id, user)
        _check_base(s, view, base_head, side)
        if side not in view.spans:
            raise QueryError(f"item {view.record.external_id} has no translation yet")
        new_keys = sorted(sp.key() for sp in spans)
        if (
            action == "edit"
            and view.own[side]
            and new_keys == sorted(sp.key() for sp in view.spans[side])
            and set(pending) & set(new_keys) == set(view.pending[side])
        ):
            return SaveResult(view.id, view.record.version, view.head, view.status, False)
        head = _write_spans(s, view, side, spans, pending, action, comment)
        status = set_review_state(s, view.record.project_id, view.id, user, None)
        return SaveResult(view.id, _finish(s, view), head, status, True)

    return _retrying(s, item_id, user, side, run)


def accept_item(
    s: Session, item_id: int, user: str, base_head: int | None, spans: Mapping[str, Sequence[Span]] | None = None, comment: str | None = None
) -> SaveResult:
    """"Accept all": the person's version of each side becomes final (suggestions accepted,
    nothing pending), and the item is reviewed for them.

    ``spans`` (side -> spans) are what the editor shows; omitted sides keep the person's
    version or the suggestion. A side is written when it has a translation and either is
    the translation, was given, has pending suggestions or has a version of this person.
    """
    user = check_user(user)
    given = dict(spans or {})
    for side in given:
        check_choice(side, SIDES, "side")

    def run() -> SaveResult:
        view = load_view(s, item_id, user)
        _check_base(s, view, base_head, next(iter(given), None))
        head: int | None = None
        for side in view.spans:
            if side not in given and not (side == "target" or view.pending[side] or view.own[side]):
                continue
            head = _write_spans(s, view, side, given.get(side, view.spans[side]), (), "accept", comment)
        if head is None:  # an item with nothing to accept still records the decision
            head = append_edit(s, view.id, user, None, "status", StatusChange(view.status, view.flag_comment), StatusChange("reviewed"),
                               view.record.version, comment)  # fmt: skip
        status = set_review_state(s, view.record.project_id, view.id, user, "reviewed")
        return SaveResult(view.id, _finish(s, view), head, status, True)

    return _retrying(s, item_id, user, next(iter(given), None), run)


def _move(s: Session, item_id: int, user: str, base_head: int | None, side: str | None, action: str) -> SaveResult:
    user = check_user(user)
    if side is not None:
        check_choice(side, SIDES, "side")

    def run() -> SaveResult:
        view = load_view(s, item_id, user)
        _check_base(s, view, base_head, side)
        chosen = side or (view.undo_side if action == "undo" else view.redo_side)
        if chosen is None:
            raise NothingToUndoError(f"item {view.record.external_id}: nothing to {action}")
        stream = view.stream(chosen)
        stack = stream.undo if action == "undo" else stream.redo
        if not stack:
            raise NothingToUndoError(f"item {view.record.external_id} {chosen}: nothing to {action}")
        before = Version(tuple(view.spans[chosen]), view.pending[chosen]) if view.own[chosen] else None
        head = append_edit(s, view.id, user, chosen, action, before, stack[-1][0], view.record.version)
        status = set_review_state(s, view.record.project_id, view.id, user, None)
        return SaveResult(view.id, _finish(s, view), head, status, True)

    return _retrying(s, item_id, user, side, run)


def undo(s: Session, item_id: int, user: str, base_head: int | None, side: str | None = None) -> SaveResult:
    """Undo ``user``'s newest change of the item (of ``side``, default: whichever side it
    was on); appends an ``undo`` row, so it works after reloads and on another device.
    Raises NothingToUndoError."""
    return _move(s, item_id, user, base_head, side, "undo")


def redo(s: Session, item_id: int, user: str, base_head: int | None, side: str | None = None) -> SaveResult:
    """Re-apply ``user``'s newest undone change; see undo."""
    return _move(s, item_id, user, base_head, side, "redo")


_STATUS_ACTIONS = {"skipped": "skip", "flagged": "flag"}


def set_status(s: Session, item_id: int, user: str, status: str, comment: str | None = None, base_head: int | None = None) -> SaveResult:
    """Skip, flag (with a comment) or reset an item for ``user`` (logged in the edit log;
    the item's shared status follows the ledger). Setting "reviewed" is accept_item's job."""
    check_choice(status, STATUSES, "status")
    if status == "reviewed":
        raise QueryError("an item becomes reviewed by accepting it (accept_item)")
    user = check_user(user)
    if status == "flagged" and not (comment or "").strip():
        raise QueryError("a flag needs a comment saying what is wrong")

    def run() -> SaveResult:
        view = load_view(s, item_id, user)
        _check_base(s, view, base_head, None)
        head = append_edit(s, view.id, user, None, _STATUS_ACTIONS.get(status, "status"), StatusChange(view.status, view.flag_comment),
                           StatusChange(status, comment if status == "flagged" else None), view.record.version, comment)  # fmt: skip
        new_status = set_review_state(s, view.record.project_id, view.id, user, status, comment)
        return SaveResult(view.id, _finish(s, view), head, new_status, True)

    return _retrying(s, item_id, user, None, run)


# --------------------------------------------------------------------------- apply to all occurrences


def apply_occurrences(s: Session, project_id: int, user: str, side: str, words: Sequence[str], label: str | None, item_ids: Sequence[int]) -> OccurrenceReport:
    """Apply one correction (give ``words`` the label ``label``; None: remove its span) to
    every whole-token occurrence in ``item_ids``, as one appended edit per changed item in
    ``user``'s versions. Items of other projects are ignored."""
    user = check_user(user)
    check_choice(side, SIDES, "side")
    phrase = " ".join(words)
    items_changed = occ = refused = 0
    changed_ids: list[int] = []
    for chunk in chunks(list(item_ids), 200):
        for view in load_views(s, chunk, user):
            if view.record.project_id != project_id or side not in view.spans:
                continue
            result = apply_to_occurrence(_sentence_of(view, side), view.spans[side], words, label, f"human:{user}")
            refused += result.refused
            if not result.changed:
                continue
            _write_spans(s, view, side, result.spans, view.pending[side], "edit", f"applied to all occurrences of '{phrase}'")
            set_review_state(s, project_id, view.id, user, None)
            _finish(s, view)
            items_changed += 1
            occ += result.changed
            changed_ids.append(view.id)
    return OccurrenceReport(items_changed, occ, refused, tuple(changed_ids))


# --------------------------------------------------------------------------- history


def _versions(value: object) -> list[Span] | None:
    return list(value.spans) if isinstance(value, Version) else None


def item_history(s: Session, item_id: int) -> list[HistoryEntry]:
    """Everything people did to the item, oldest first: who, when, what. An undo is told as
    the reverse of the change it undid ("undo: added LOC 'Bonn'" when it restored Bonn)."""
    record = load_item(s, item_id)
    out: list[HistoryEntry] = []
    done: dict[tuple[str, str], list[EditEvent]] = {}  # (user, side) -> span edits that undo would reverse
    undone: dict[tuple[str, str], list[EditEvent]] = {}
    for e in history(s, item_id):
        if e.side is None:
            after = e.after if isinstance(e.after, StatusChange) else StatusChange("new")
            what = f"status {after.status}" + (f": {e.comment}" if e.comment else "")
            out.append(HistoryEntry(e.id, e.created_at, e.user, e.action, e.side, what))
            continue
        sentence = record.sentence(e.side)
        key = (e.user, e.side)
        stack, redo_stack = done.setdefault(key, []), undone.setdefault(key, [])
        if e.action in SPAN_ACTIONS:
            stack.append(e)
            redo_stack.clear()
            what = describe_change(_versions(e.before), _versions(e.after), sentence) + (f" ({e.comment})" if e.comment else "")
        elif e.action == "undo" and stack:
            target = stack.pop()
            redo_stack.append(target)
            what = "undo: " + describe_change(_versions(target.after), _versions(target.before), sentence)
        elif e.action == "redo" and redo_stack:
            target = redo_stack.pop()
            stack.append(target)
            what = "redo: " + describe_change(_versions(target.before), _versions(target.after), sentence)
        else:
            what = f"{e.action}: nothing to {e.action}"
        out.append(HistoryEntry(e.id, e.created_at, e.user, e.action, e.side, what))
    for a in record.annotations.adjudications:
        sentence = record.sentence(a.side)
        what = f"adjudicated from {', '.join(a.merged_from) or 'no annotator'}: " + (
            ", ".join(f"{sp.label} '{sp.text(sentence)}'" for sp in a.spans) or "no entities"
        )
        out.append(HistoryEntry(-a.id, a.created_at, a.user, "adjudicate", a.side, what))
    out.sort(key=lambda h: (h.when, abs(h.id)))
    return out
