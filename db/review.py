"""Database side of the review workbench: each person's own version of each item, the
queue (ordered and filtered in SQL), progress, "apply to all occurrences", agreement
data, adjudication and the adjudicated-gold export.

Each person's work is kept apart. A person's version of one side of an item is the replay
of *their own* rows of the append-only edit log (``edits.user_name``): edit/accept/reject
set the spans, undo/redo move along their own history, so two annotators never undo each
other's work and every step survives reloads. Without a version of their own a person
sees the machine suggestion (gold, else an imported human set, else the newest machine
set, as in db.queries). Spans in a version may carry ``"pending": true``: a machine
suggestion not yet accepted; "accept" clears them and marks the item reviewed for that
person (``review_states``); the item's own ``status`` follows the latest decision of
anyone, so db.queries counts and exports keep working.

Lost updates are impossible: every write names the last edit id the person saw of this
item (``base_head``); if their own stream moved meanwhile (another tab, another device)
a ReviewConflictError carries what changed and nothing is written. Each write also bumps
the item's version through the ORM version check, so two concurrent transactions cannot
both pass the check; the loser is retried on fresh data.

As in db.queries, functions take the Session first, never commit, and return plain
dataclasses or core.data objects.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from core.data import Item, Sentence, Span, check_spans
from core.review import (
    STATUSES,
    ItemStatsValues,
    QueueFilter,
    apply_to_occurrence,
    compute_item_stats,
    describe_change,
    shuffle_key,
    student_uncertainty,
)
from db import models as orm
from db import queries as q
from db import review_models as rm
from db.models import SIDES, SPAN_ACTIONS, utcnow
from db.queries import (
    ConflictError,
    EditRecord,
    ItemRecord,
    NotFoundError,
    NothingToUndoError,
    QueryError,
    UserInfo,
)

__all__ = [
    "ReviewConflictError",
    "ReviewView",
    "SaveResult",
    "Progress",
    "QueueRow",
    "HistoryEntry",
    "OccurrenceReport",
    "AdjudicationInfo",
    "load_view",
    "load_views",
    "save_review_edit",
    "accept_item",
    "undo_review",
    "redo_review",
    "set_review_status",
    "queue_next",
    "queue_count",
    "queue_rows",
    "find_item",
    "item_project",
    "progress",
    "annotators",
    "refresh_stats",
    "ensure_stats",
    "reshuffle",
    "occurrence_items",
    "apply_occurrences",
    "item_history",
    "agreement_data",
    "adjudication_queue",
    "save_adjudication",
    "export_adjudicated",
    "count_adjudicated",
    "create_login_session",
    "user_for_session",
    "end_login_session",
]

_CHUNK = 500
_RETRIES = 3
T = TypeVar("T")


# --------------------------------------------------------------------------- result types


class ReviewConflictError(ConflictError):
    """The person's own version of the item moved since ``base_head`` (another tab or device).

    ``current_spans`` is their version of ``side`` now, ``changes`` the edits made since
    (who, when, what); nothing was written.
    """

    def __init__(self, item_id: int, current_version: int, current_spans: list[Span] | None, side: str | None, head: int, changes: list[EditRecord]):
        super().__init__(item_id, current_version, current_spans, side)
        self.head = head
        self.changes = changes
        who = sorted({c.user for c in changes})
        self.args = (
            f"item {item_id} changed since you loaded it ({len(changes)} newer edit(s) by {', '.join(who) or 'someone'}); "
            "nothing was saved",
        )


@dataclass(frozen=True, slots=True)
class AdjudicationInfo:
    spans: list[Span]
    user: str
    merged_from: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReviewView:
    """One item as one person sees it in the workbench."""

    record: ItemRecord
    user: str
    spans: dict[str, list[Span]]  # side -> this person's version, else the suggestion
    pending: dict[str, frozenset[tuple[int, int, str]]]  # side -> keys of suggestions not yet accepted
    own: dict[str, bool]  # side -> this person has a version of it
    suggestion_source: dict[str, str | None]  # side -> where the machine suggestion comes from
    undo_side: str | None  # the side "undo" would change (None: nothing to undo)
    redo_side: str | None
    head: int  # id of this person's newest edit of the item (0: none): the base of the next write
    status: str  # this person's status
    flag_comment: str | None
    others: dict[str, dict[str, list[Span]]]  # other people -> side -> their version
    other_status: dict[str, str]
    adjudicated: dict[str, AdjudicationInfo]  # side -> newest adjudication

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def item(self) -> Item:
        return self.record.item

    def sentence(self, side: str) -> Sentence | None:
        return self.record.item.source if side == "source" else self.record.item.target


@dataclass(frozen=True, slots=True)
class SaveResult:
    item_id: int
    version: int  # the item's version after the write
    head: int  # the new base for this person's next write
    status: str  # this person's status now
    changed: bool  # False when the request changed nothing (nothing was written)


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    counts: dict[str, int]  # status -> items with that status for this person (new = the rest)

    @property
    def done(self) -> int:
        return self.counts.get("reviewed", 0)


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    external_id: str
    position: int
    status: str  # this person's status
    min_confidence: float | None
    disagreement: float | None
    uncertainty: float | None
    source_text: str
    target_text: str | None


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


# --------------------------------------------------------------------------- helpers


def _spans_from(data: Iterable[Mapping[str, Any]] | None, default_source: str) -> list[Span]:
    return q._spans_from_json(data or [], default_source)


def _stream_json(spans: Iterable[Span], pending: Iterable[tuple[int, int, str]] = ()) -> list[dict[str, Any]]:
    keys = set(pending)
    out = []
    for sp in spans:
        d = q._span_json(sp, True)
        if sp.key() in keys:
            d["pending"] = True
        out.append(d)
    return out


def _pending_of(data: Iterable[Mapping[str, Any]] | None) -> frozenset[tuple[int, int, str]]:
    return frozenset((int(d["start"]), int(d["end"]), str(d["label"])) for d in (data or []) if d.get("pending"))


@dataclass(slots=True)
class _Stream:
    """One person's version of one side, replayed from their rows of the edit log."""

    spans: list[dict[str, Any]] | None = None  # None: no version of their own
    undo: list[tuple[list[dict[str, Any]] | None, int]] = field(default_factory=list)  # (state before, edit id)
    redo: list[tuple[list[dict[str, Any]] | None, int]] = field(default_factory=list)


def _replay(rows: Iterable[Any]) -> _Stream:
    st = _Stream()
    for e in rows:
        if e.action in SPAN_ACTIONS:
            st.undo.append((st.spans, e.id))
            st.spans = e.after
            st.redo.clear()
        elif e.action == "undo" and st.undo:
            previous, _ = st.undo.pop()
            st.redo.append((st.spans, e.id))
            st.spans = previous
        elif e.action == "redo" and st.redo:
            following, _ = st.redo.pop()
            st.undo.append((st.spans, e.id))
            st.spans = following
    return st


def _suggestion(meta: Sequence[Any]) -> Any:
    """The machine suggestion among one side's span sets (same rule as db.queries)."""
    for r in meta:
        if r.source == "gold":
            return r
    key = lambda r: (q._utc(r.created_at), r.id)  # noqa: E731
    humans = [r for r in meta if r.source.startswith("human:")]
    if humans:
        return max(humans, key=key)
    return max(meta, key=key) if meta else None


def _is_machine(source: str | None) -> bool:
    return bool(source) and source != "gold" and not source.startswith("human:")


def _retrying(s: Session, fn: Callable[[], T]) -> T:
    """Run a write; when a concurrent transaction won the item's version check (or SQLite
    refused to upgrade a stale read snapshot), roll back and run it again on fresh data."""
    for attempt in range(_RETRIES):
        try:
            return fn()
        except StaleDataError:
            s.rollback()
        except OperationalError as exc:
            if "locked" not in str(exc).lower() or attempt == _RETRIES - 1:
                raise
            s.rollback()
    return fn()


def _sentence_of(record: ItemRecord, side: str) -> Sentence:
    sentence = record.item.source if side == "source" else record.item.target
    if sentence is None:
        raise QueryError(f"item {record.external_id} has no translation yet")
    return sentence


# --------------------------------------------------------------------------- loading


@dataclass(slots=True)
class _Extra:
    meta: dict[int, list[Any]]
    edits: dict[int, list[Any]]
    states: dict[int, list[Any]]
    adjudications: dict[int, dict[str, Any]]


def _extra(s: Session, ids: Sequence[int], with_edits_before: bool = False) -> _Extra:
    meta: dict[int, list[Any]] = defaultdict(list)
    edits: dict[int, list[Any]] = defaultdict(list)
    states: dict[int, list[Any]] = defaultdict(list)
    adjs: dict[int, dict[str, Any]] = defaultdict(dict)
    edit_cols = [orm.Edit.id, orm.Edit.item_id, orm.Edit.user_name, orm.Edit.side, orm.Edit.action, orm.Edit.after, orm.Edit.created_at]
    if with_edits_before:
        edit_cols += [orm.Edit.before, orm.Edit.base_version, orm.Edit.comment]
    for chunk in q._chunks(list(ids), _CHUNK):
        for r in s.execute(
            select(orm.SpanSet.id, orm.SpanSet.item_id, orm.SpanSet.side, orm.SpanSet.source, orm.SpanSet.created_at).where(
                orm.SpanSet.item_id.in_(chunk)
            )
        ):
            meta[r.item_id].append(r)
        for r in s.execute(select(*edit_cols).where(orm.Edit.item_id.in_(chunk)).order_by(orm.Edit.item_id, orm.Edit.id)):
            edits[r.item_id].append(r)
        for r in s.execute(select(rm.ReviewState).where(rm.ReviewState.item_id.in_(chunk)).execution_options(populate_existing=True)).scalars():
            states[r.item_id].append(r)
        for r in s.execute(
            select(rm.Adjudication.id, rm.Adjudication.item_id, rm.Adjudication.side, rm.Adjudication.spans, rm.Adjudication.user_name, rm.Adjudication.merged_from, rm.Adjudication.created_at)
            .where(rm.Adjudication.item_id.in_(chunk))
            .order_by(rm.Adjudication.id)
        ):
            adjs[r.item_id][r.side] = r  # the newest wins
    return _Extra(meta, edits, states, adjs)


def _view(record: ItemRecord, user: str, extra: _Extra) -> ReviewView:
    rows = extra.edits.get(record.id, [])
    by_user_side: dict[tuple[str, str], list[Any]] = defaultdict(list)
    head = 0
    for e in rows:
        if e.side is not None:
            by_user_side[(e.user_name, e.side)].append(e)
        if e.user_name == user:
            head = max(head, e.id)
    meta = extra.meta.get(record.id, [])
    spans: dict[str, list[Span]] = {}
    pending: dict[str, frozenset[tuple[int, int, str]]] = {}
    own: dict[str, bool] = {}
    suggestion_source: dict[str, str | None] = {}
    undo_top: dict[str, int] = {}
    redo_top: dict[str, int] = {}
    sides = ["source"] + (["target"] if record.item.target is not None else [])
    suggestions: dict[str, list[Span]] = {}
    for side in sides:
        chosen = _suggestion([m for m in meta if m.side == side])
        suggestion_source[side] = chosen.source if chosen is not None else None
        suggestions[side] = list(record.span_sets.get((side, chosen.source), [])) if chosen is not None else []
        stream = _replay(by_user_side.get((user, side), []))
        if stream.spans is not None:
            spans[side] = _spans_from(stream.spans, f"human:{user}")
            pending[side] = _pending_of(stream.spans)
            own[side] = True
        else:
            spans[side] = suggestions[side]
            pending[side] = frozenset(s.key() for s in spans[side]) if _is_machine(suggestion_source[side]) else frozenset()
            own[side] = False
        if stream.undo:
            undo_top[side] = stream.undo[-1][1]
        if stream.redo:
            redo_top[side] = stream.redo[-1][1]
    others: dict[str, dict[str, list[Span]]] = defaultdict(dict)
    for (name, side), side_rows in by_user_side.items():
        if name == user or side not in sides:
            continue
        stream = _replay(side_rows)
        if stream.spans is not None:
            others[name][side] = _spans_from(stream.spans, f"human:{name}")
    mine = next((st for st in extra.states.get(record.id, []) if st.user_name == user), None)
    other_status = {st.user_name: st.status for st in extra.states.get(record.id, []) if st.user_name != user}
    for name in other_status:
        others.setdefault(name, {})
    adjudicated = {
        side: AdjudicationInfo(_spans_from(r.spans, "adjudicated"), r.user_name, tuple(r.merged_from or ()), q._utc(r.created_at))
        for side, r in extra.adjudications.get(record.id, {}).items()
    }
    return ReviewView(
        record=record,
        user=user,
        spans=spans,
        pending=pending,
        own=own,
        suggestion_source=suggestion_source,
        undo_side=max(undo_top, key=undo_top.__getitem__) if undo_top else None,
        redo_side=max(redo_top, key=redo_top.__getitem__) if redo_top else None,
        head=head,
        status=mine.status if mine is not None else "new",
        flag_comment=mine.flag_comment if mine is not None else None,
        others=dict(others),
        other_status=other_status,
        adjudicated=adjudicated,
    )


def load_views(s: Session, item_ids: Sequence[int], user: str, media_dir: Path | None = None) -> list[ReviewView]:
    """Several items as ``user`` sees them (in the given order; unknown ids left out)."""
    user = q._check_user(user)
    records = q.load_items(s, list(item_ids), media_dir)
    extra = _extra(s, [r.id for r in records])
    return [_view(r, user, extra) for r in records]


def load_view(s: Session, item_id: int, user: str, media_dir: Path | None = None) -> ReviewView:
    """One item as ``user`` sees it: their version or the suggestion, their undo/redo,
    their status, the other annotators' versions and the newest adjudication."""
    found = load_views(s, [item_id], user, media_dir)
    if not found:
        raise NotFoundError(f"no item with id {item_id}")
    return found[0]


# --------------------------------------------------------------------------- writing


def _edit_record(e: Any, user: str | None = None) -> EditRecord:
    def decode(value: Any) -> Any:
        if e.side is None or value is None:
            return value
        return _spans_from(value, f"human:{e.user_name}")

    return EditRecord(
        e.id, e.item_id, e.user_name, e.side, e.action, decode(getattr(e, "before", None)), decode(e.after),
        getattr(e, "base_version", 0), getattr(e, "comment", None), q._utc(e.created_at),
    )  # fmt: skip


def _check_base(s: Session, view: ReviewView, base_head: int | None, side: str | None) -> None:
    if base_head is None or view.head == base_head:
        return
    newer = [
        r
        for r in s.execute(
            select(orm.Edit).where(orm.Edit.item_id == view.id, orm.Edit.user_name == view.user, orm.Edit.id > base_head).order_by(orm.Edit.id)
        ).scalars()
    ]
    raise ReviewConflictError(
        view.id, view.record.version, view.spans.get(side) if side else None, side, view.head, [_edit_record(e) for e in newer]
    )


def _set_state(s: Session, view: ReviewView, status: str | None, comment: str | None = None) -> str:
    """Create (status "new") or update this person's review state; return the status."""
    row = s.scalars(
        select(rm.ReviewState).where(rm.ReviewState.item_id == view.id, rm.ReviewState.user_name == view.user)
    ).first()
    now = utcnow()
    if row is None:
        row = rm.ReviewState(
            project_id=view.record.project_id, item_id=view.id, user_name=view.user, status=status or "new",
            flag_comment=comment if status == "flagged" else None, updated_at=now,
        )  # fmt: skip
        s.add(row)
    elif status is not None:
        row.status, row.flag_comment, row.updated_at = status, comment if status == "flagged" else None, now
    return row.status


def _labels(s: Session, project_id: int) -> list[str]:
    return list(s.scalar(select(orm.Project.labels).where(orm.Project.id == project_id)) or [])


def _finish_write(s: Session, view: ReviewView, item_status: str | None, flag_comment: str | None = None) -> int:
    """Bump the item's version (compare-and-set) and optionally its shared status."""
    row = s.get(orm.Item, view.id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"no item with id {view.id}")
    if row.version != view.record.version:
        raise StaleDataError(f"item {view.id} changed during the write")
    if item_status is not None:
        row.status = item_status
        row.flag_comment = flag_comment if item_status == "flagged" else None
    row.updated_at = utcnow()
    s.flush()
    return row.version


def _write_spans(
    s: Session,
    view: ReviewView,
    side: str,
    spans: Sequence[Span],
    pending: Iterable[tuple[int, int, str]],
    action: str,
    comment: str | None,
) -> orm.Edit:
    sentence = _sentence_of(view.record, side)
    ordered = check_spans(sentence, spans, f"item {view.record.external_id} {side}")
    labels = _labels(s, view.record.project_id)
    unknown = sorted({sp.label for sp in ordered} - set(labels))
    if labels and unknown:
        raise QueryError(f"item {view.record.external_id} {side}: label(s) {', '.join(unknown)} not in the project's labels")
    pend = set(pending) & {sp.key() for sp in ordered}
    edit = orm.Edit(
        item_id=view.id,
        user_name=view.user,
        side=side,
        action=action,
        before=_stream_json(view.spans[side], view.pending[side]),
        after=_stream_json(ordered, pend),
        base_version=view.record.version,
        comment=comment,
        created_at=utcnow(),
    )
    s.add(edit)
    return edit


def save_review_edit(
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
    overlap, QueryError for a label outside the project. Call it in its own session_scope:
    a lost race rolls the session back and retries.
    """
    q._check_choice(side, SIDES, "side")
    q._check_choice(action, SPAN_ACTIONS, "span action")
    user = q._check_user(user)
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
        edit = _write_spans(s, view, side, spans, pending, action, comment)
        status = _set_state(s, view, None)
        version = _finish_write(s, view, None)
        _refresh_items(s, [view.id])
        return SaveResult(view.id, version, edit.id, status, True)

    return _retrying(s, run)


def accept_item(
    s: Session,
    item_id: int,
    user: str,
    base_head: int | None,
    spans: Mapping[str, Sequence[Span]] | None = None,
    comment: str | None = None,
) -> SaveResult:
    """"Accept all": the person's version of each side becomes final (suggestions accepted,
    nothing pending), and the item is reviewed for them.

    ``spans`` (side -> spans) are what the editor shows; omitted sides keep the person's
    version or the suggestion. A side is written when it has a translation and either is
    the translation, was given, has pending suggestions or has a version of this person.
    """
    user = q._check_user(user)
    given = dict(spans or {})
    for side in given:
        q._check_choice(side, SIDES, "side")

    def run() -> SaveResult:
        view = load_view(s, item_id, user)
        _check_base(s, view, base_head, next(iter(given), None))
        last: orm.Edit | None = None
        for side in view.spans:
            if side not in given and not (side == "target" or view.pending[side] or view.own[side]):
                continue
            chosen = given.get(side, view.spans[side])
            last = _write_spans(s, view, side, chosen, (), "accept", comment)
        status = _set_state(s, view, "reviewed")
        version = _finish_write(s, view, "reviewed")
        _refresh_items(s, [view.id])
        head = last.id if last is not None else view.head
        if last is None:  # an item with nothing to accept still records the decision
            edit = orm.Edit(
                item_id=view.id, user_name=user, side=None, action="status",
                before={"status": view.status, "flag_comment": view.flag_comment},
                after={"status": "reviewed", "flag_comment": None}, base_version=view.record.version,
                comment=comment, created_at=utcnow(),
            )  # fmt: skip
            s.add(edit)
            s.flush()
            head = edit.id
        return SaveResult(view.id, version, head, status, True)

    return _retrying(s, run)


def _move(s: Session, item_id: int, user: str, base_head: int | None, side: str | None, action: str) -> SaveResult:
    user = q._check_user(user)
    if side is not None:
        q._check_choice(side, SIDES, "side")

    def run() -> SaveResult:
        view = load_view(s, item_id, user)
        _check_base(s, view, base_head, side)
        chosen = side or (view.undo_side if action == "undo" else view.redo_side)
        if chosen is None:
            raise NothingToUndoError(f"item {view.record.external_id}: nothing to {action}")
        rows = [e for e in _extra(s, [view.id]).edits.get(view.id, []) if e.user_name == user and e.side == chosen]
        stream = _replay(rows)
        stack = stream.undo if action == "undo" else stream.redo
        if not stack:
            raise NothingToUndoError(f"item {view.record.external_id} {chosen}: nothing to {action}")
        edit = orm.Edit(
            item_id=view.id, user_name=user, side=chosen, action=action,
            before=_stream_json(view.spans[chosen], view.pending[chosen]) if view.own[chosen] else None,
            after=stack[-1][0], base_version=view.record.version, created_at=utcnow(),
        )  # fmt: skip
        s.add(edit)
        status = _set_state(s, view, None)
        version = _finish_write(s, view, None)
        _refresh_items(s, [view.id])
        return SaveResult(view.id, version, edit.id, status, True)

    return _retrying(s, run)


def undo_review(s: Session, item_id: int, user: str, base_head: int | None, side: str | None = None) -> SaveResult:
    """Undo ``user``'s newest change of the item (of ``side``, default: whichever side it
    was on); appends an ``undo`` row, so it works after reloads and on another device.
    Raises NothingToUndoError."""
    return _move(s, item_id, user, base_head, side, "undo")


def redo_review(s: Session, item_id: int, user: str, base_head: int | None, side: str | None = None) -> SaveResult:
    """Re-apply ``user``'s newest undone change; see undo_review."""
    return _move(s, item_id, user, base_head, side, "redo")


_STATUS_ACTIONS = {"skipped": "skip", "flagged": "flag"}


def set_review_status(
    s: Session, item_id: int, user: str, status: str, comment: str | None = None, base_head: int | None = None
) -> SaveResult:
    """Skip, flag (with a comment) or reset an item for ``user`` (logged in the edit log;
    the item's shared status follows). Setting "reviewed" is accept_item's job."""
    q._check_choice(status, STATUSES, "status")
    if status == "reviewed":
        raise QueryError("an item becomes reviewed by accepting it (accept_item)")
    user = q._check_user(user)
    if status == "flagged" and not (comment or "").strip():
        raise QueryError("a flag needs a comment saying what is wrong")

    def run() -> SaveResult:
        view = load_view(s, item_id, user)
        _check_base(s, view, base_head, None)
        edit = orm.Edit(
            item_id=view.id, user_name=user, side=None, action=_STATUS_ACTIONS.get(status, "status"),
            before={"status": view.status, "flag_comment": view.flag_comment},
            after={"status": status, "flag_comment": comment if status == "flagged" else None},
            base_version=view.record.version, comment=comment, created_at=utcnow(),
        )  # fmt: skip
        s.add(edit)
        new_status = _set_state(s, view, status, comment)
        version = _finish_write(s, view, status, comment)
        return SaveResult(view.id, version, edit.id, new_status, True)

    return _retrying(s, run)


# --------------------------------------------------------------------------- queue


_ORDER_KEYS = {
    "confidence": rm.ItemStats.confidence_key,
    "disagreement": rm.ItemStats.disagreement_key,
    "uncertainty": rm.ItemStats.uncertainty_key,
    "random": rm.ItemStats.shuffle_key,
}


def _queue_select(project_id: int, user: str, filt: QueueFilter, columns: Sequence[Any] = ()):  # noqa: ANN202
    """(select of (key, item id, *columns) with every filter, key column, id column).

    Ordered queues are driven by an item_stats index (project, key, item); the original
    order by the items (project, position) index; filters are checked row by row along it.
    """
    uses_stats = filt.order != "original" or filt.labels or filt.min_confidence is not None or filt.max_confidence is not None or filt.min_disagreement is not None
    if filt.order == "original":
        key, idcol = orm.Item.position, orm.Item.id
        stmt = select(key, idcol, *columns).where(orm.Item.project_id == project_id)
        if uses_stats:
            stmt = stmt.join(rm.ItemStats, rm.ItemStats.item_id == orm.Item.id)
    else:
        key, idcol = _ORDER_KEYS[filt.order], rm.ItemStats.item_id
        stmt = select(key, idcol, *columns).join(orm.Item, orm.Item.id == rm.ItemStats.item_id).where(rm.ItemStats.project_id == project_id)
    if set(filt.statuses) != set(STATUSES):
        mine = aliased(rm.ReviewState)
        stmt = stmt.outerjoin(mine, and_(mine.item_id == orm.Item.id, mine.user_name == user))
        cond = mine.status.in_(filt.statuses)
        stmt = stmt.where(or_(mine.id.is_(None), cond) if "new" in filt.statuses else cond)
    if filt.labels:
        stmt = stmt.where(or_(*[rm.ItemStats.labels.contains(f"|{lab}|", autoescape=True) for lab in filt.labels]))
    if filt.min_confidence is not None:
        stmt = stmt.where(rm.ItemStats.min_confidence >= filt.min_confidence)
    if filt.max_confidence is not None:
        stmt = stmt.where(rm.ItemStats.min_confidence <= filt.max_confidence)
    if filt.min_disagreement is not None:
        stmt = stmt.where(rm.ItemStats.disagreement >= filt.min_disagreement)
    if filt.annotator:
        theirs = aliased(rm.ReviewState)
        stmt = stmt.where(exists().where(theirs.item_id == orm.Item.id, theirs.user_name == filt.annotator))
    if filt.text:
        stmt = stmt.where(
            or_(
                orm.Item.external_id.icontains(filt.text, autoescape=True),
                orm.Item.source_text.icontains(filt.text, autoescape=True),
                orm.Item.target_text.icontains(filt.text, autoescape=True),
            )
        )
    return stmt, key, idcol


def _cursor(s: Session, item_id: int, filt: QueueFilter) -> tuple[Any, int] | None:
    if filt.order == "original":
        value = s.scalar(select(orm.Item.position).where(orm.Item.id == item_id))
    else:
        value = s.scalar(select(_ORDER_KEYS[filt.order]).where(rm.ItemStats.item_id == item_id))
    return None if value is None else (value, item_id)


def queue_next(
    s: Session,
    project_id: int,
    user: str,
    filt: QueueFilter,
    after_item_id: int | None = None,
    *,
    backwards: bool = False,
    wrap: bool = True,
) -> int | None:
    """The next (or previous) item of ``user``'s queue after ``after_item_id`` (from the
    start when None); past the end it wraps to the start once. None: the queue is empty."""
    stmt, key, idcol = _queue_select(project_id, user, filt)
    order = (key.desc(), idcol.desc()) if backwards else (key.asc(), idcol.asc())
    cursor = _cursor(s, after_item_id, filt) if after_item_id is not None else None
    if cursor is not None:
        bound = tuple_(key, idcol) < tuple_(*cursor) if backwards else tuple_(key, idcol) > tuple_(*cursor)
        row = s.execute(stmt.where(bound).order_by(*order).limit(1)).first()
        if row is not None or not wrap:
            return row[1] if row is not None else None
        stmt = stmt.where(idcol != after_item_id)
    row = s.execute(stmt.order_by(*order).limit(1)).first()
    return row[1] if row is not None else None


def queue_count(s: Session, project_id: int, user: str, filt: QueueFilter) -> int:
    """How many items match the filters (for "n items in this queue")."""
    stmt, _, _ = _queue_select(project_id, user, filt)
    return int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def queue_rows(s: Session, project_id: int, user: str, filt: QueueFilter, limit: int = 50, offset: int = 0) -> list[QueueRow]:
    """One page of the queue in its order (for the item list and "jump to")."""
    mine = aliased(rm.ReviewState)
    stmt, key, idcol = _queue_select(project_id, user, filt)
    stats = aliased(rm.ItemStats)
    stmt = (
        stmt.outerjoin(stats, stats.item_id == orm.Item.id)
        .outerjoin(mine, and_(mine.item_id == orm.Item.id, mine.user_name == user))
        .add_columns(
            orm.Item.external_id, orm.Item.position, mine.status.label("my_status"), stats.min_confidence,
            stats.disagreement, stats.uncertainty, orm.Item.source_text, orm.Item.target_text,
        )  # fmt: skip
        .order_by(key, idcol)
        .limit(max(0, limit))
        .offset(max(0, offset))
    )
    return [
        QueueRow(r[1], r.external_id, r.position, r.my_status or "new", r.min_confidence, r.disagreement, r.uncertainty, r.source_text, r.target_text)
        for r in s.execute(stmt)
    ]


def find_item(s: Session, project_id: int, ref: str) -> int | None:
    """An item by its external id, or by its number in the original order ("#12" or "12")."""
    ref = ref.strip()
    found = s.scalar(select(orm.Item.id).where(orm.Item.project_id == project_id, orm.Item.external_id == ref))
    if found is not None:
        return found
    number = ref[1:] if ref.startswith("#") else ref
    if number.isdigit() and int(number) >= 1:
        return s.scalar(select(orm.Item.id).where(orm.Item.project_id == project_id, orm.Item.position == int(number) - 1))
    return None


def item_project(s: Session, item_id: int) -> int | None:
    """The project of an item (None: no such item)."""
    return s.scalar(select(orm.Item.project_id).where(orm.Item.id == item_id))


def progress(s: Session, project_id: int, users: Sequence[str] | None = None) -> dict[str, Progress]:
    """Per person: how many of the project's items they reviewed, skipped, flagged."""
    total = int(s.scalar(select(func.count()).select_from(orm.Item).where(orm.Item.project_id == project_id)) or 0)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    stmt = (
        select(rm.ReviewState.user_name, rm.ReviewState.status, func.count())
        .where(rm.ReviewState.project_id == project_id)
        .group_by(rm.ReviewState.user_name, rm.ReviewState.status)
    )
    if users is not None:
        stmt = stmt.where(rm.ReviewState.user_name.in_(list(users)))
    for name, status, n in s.execute(stmt):
        counts[name][status] = int(n)
    out = {}
    for name in sorted(set(counts) | set(users or ())):
        c = {st: counts[name].get(st, 0) for st in STATUSES if st != "new"}
        c["new"] = total - sum(c.values())
        out[name] = Progress(total, c)
    return out


def annotators(s: Session, project_id: int) -> list[str]:
    """Everyone who has worked on an item of the project."""
    return list(
        s.scalars(select(rm.ReviewState.user_name).where(rm.ReviewState.project_id == project_id).distinct().order_by(rm.ReviewState.user_name))
    )


# --------------------------------------------------------------------------- queue numbers


def _seed(s: Session, project_id: int) -> int:
    settings = s.scalar(select(orm.Project.settings).where(orm.Project.id == project_id)) or {}
    return int(settings.get("review_seed", 0))


def _stats_values(item_id: int, sets: Sequence[Any], edits: Sequence[Any]) -> ItemStatsValues:
    """Queue numbers of one item from its span set rows and its edit rows."""
    target_meta = [r for r in sets if r.side == "target"]
    chosen = _suggestion(target_meta)
    suggested = _spans_from(chosen.spans, chosen.source) if chosen is not None else None
    unprojected = _spans_from(chosen.unprojected, "gold") if chosen is not None and chosen.unprojected else []
    compare: dict[str, list[Span]] = {r.source: _spans_from(r.spans, r.source) for r in target_meta}
    all_spans: list[Span] = [sp for r in sets for sp in _spans_from(r.spans, r.source)]
    by_user_side: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for e in edits:
        if e.side is not None:
            by_user_side[(e.user_name, e.side)].append(e)
    for (name, side), rows in by_user_side.items():
        stream = _replay(rows)
        if stream.spans is None:
            continue
        spans = _spans_from(stream.spans, f"human:{name}")
        all_spans.extend(spans)
        if side == "target":
            compare[f"human:{name}"] = spans
    students = sorted((r for r in target_meta if r.source.startswith("student")), key=lambda r: (q._utc(r.created_at), r.id))
    uncertainty = student_uncertainty(_spans_from(students[-1].spans, students[-1].source), students[-1].settings) if students else None
    stored = (students[-1].settings or {}).get("disagreement") if students else None
    soft = float(stored) if isinstance(stored, (int, float)) else None
    return compute_item_stats(suggested, unprojected, compare, uncertainty, all_spans, soft)


def _refresh_items(s: Session, ids: Sequence[int], seed: int | None = None) -> int:
    """Recompute and store the queue numbers of these items."""
    done = 0
    now = utcnow()
    for chunk in q._chunks(list(ids), _CHUNK):
        rows = s.execute(select(orm.Item.id, orm.Item.project_id).where(orm.Item.id.in_(chunk))).all()
        if not rows:
            continue
        project_seeds: dict[int, int] = {}
        sets: dict[int, list[Any]] = defaultdict(list)
        for r in s.execute(
            select(orm.SpanSet.id, orm.SpanSet.item_id, orm.SpanSet.side, orm.SpanSet.source, orm.SpanSet.spans, orm.SpanSet.unprojected, orm.SpanSet.settings, orm.SpanSet.created_at).where(
                orm.SpanSet.item_id.in_(chunk)
            )
        ):
            sets[r.item_id].append(r)
        edits: dict[int, list[Any]] = defaultdict(list)
        for r in s.execute(
            select(orm.Edit.id, orm.Edit.item_id, orm.Edit.user_name, orm.Edit.side, orm.Edit.action, orm.Edit.after)
            .where(orm.Edit.item_id.in_(chunk), orm.Edit.side.is_not(None))
            .order_by(orm.Edit.item_id, orm.Edit.id)
        ):
            edits[r.item_id].append(r)
        values = []
        for item_id, project_id in rows:
            if project_id not in project_seeds:
                project_seeds[project_id] = seed if seed is not None else _seed(s, project_id)
            v = _stats_values(item_id, sets.get(item_id, []), edits.get(item_id, []))
            values.append(
                {
                    "item_id": item_id, "project_id": project_id, "min_confidence": v.min_confidence,
                    "disagreement": v.disagreement, "uncertainty": v.uncertainty, "n_spans": v.n_spans,
                    "labels": v.label_text, "confidence_key": v.confidence_key, "disagreement_key": v.disagreement_key,
                    "uncertainty_key": v.uncertainty_key, "shuffle_key": shuffle_key(project_seeds[project_id], item_id),
                    "computed_at": now,
                }
            )  # fmt: skip
        s.execute(delete(rm.ItemStats).where(rm.ItemStats.item_id.in_([v["item_id"] for v in values])).execution_options(synchronize_session=False))
        s.execute(insert(rm.ItemStats), values)
        done += len(values)
    return done


_CHECKED_KEY = "review_stats_checked_at"  # project setting: span sets older than this are counted


def _checked_at(s: Session, project_id: int) -> datetime | None:
    settings = s.scalar(select(orm.Project.settings).where(orm.Project.id == project_id)) or {}
    value = settings.get(_CHECKED_KEY)
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def stale_stats_ids(s: Session, project_id: int) -> list[int]:
    """Items whose queue numbers are missing or older than one of their span sets.

    Cheap on a big project: item and stats counts are index counts, and only span sets
    written since the last check are read (index on span_sets.created_at).
    """
    ids: set[int] = set()
    n_items = s.scalar(select(func.count()).select_from(orm.Item).where(orm.Item.project_id == project_id)) or 0
    n_stats = s.scalar(select(func.count()).select_from(rm.ItemStats).where(rm.ItemStats.project_id == project_id)) or 0
    if n_items != n_stats:
        ids.update(
            s.scalars(
                select(orm.Item.id)
                .outerjoin(rm.ItemStats, rm.ItemStats.item_id == orm.Item.id)
                .where(orm.Item.project_id == project_id, rm.ItemStats.item_id.is_(None))
            )
        )
    checked = _checked_at(s, project_id)
    if checked is None:
        ids.update(
            s.scalars(
                select(orm.SpanSet.item_id)
                .join(rm.ItemStats, rm.ItemStats.item_id == orm.SpanSet.item_id)
                .where(rm.ItemStats.project_id == project_id, orm.SpanSet.created_at > rm.ItemStats.computed_at)
                .distinct()
            )
        )
        return sorted(ids)
    # Span sets written since the last check (an index range scan), then which of them are
    # newer than their item's numbers.
    recent: dict[int, datetime] = {}
    for item_id, created in s.execute(select(orm.SpanSet.item_id, orm.SpanSet.created_at).where(orm.SpanSet.created_at > checked)):
        created = q._utc(created)
        if item_id not in recent or created > recent[item_id]:
            recent[item_id] = created
    for chunk in q._chunks(sorted(recent), _CHUNK):
        for item_id, computed in s.execute(
            select(rm.ItemStats.item_id, rm.ItemStats.computed_at).where(rm.ItemStats.item_id.in_(chunk), rm.ItemStats.project_id == project_id)
        ):
            if recent[item_id] > q._utc(computed):
                ids.add(item_id)
    return sorted(ids)


def refresh_stats(
    s: Session, project_id: int, item_ids: Sequence[int] | None = None, progress_cb: Callable[[int, int], None] | None = None
) -> int:
    """Recompute the queue numbers of a project's items (all, or ``item_ids``); returns how many."""
    started = utcnow()
    ids = list(item_ids) if item_ids is not None else list(s.scalars(select(orm.Item.id).where(orm.Item.project_id == project_id)))
    seed = _seed(s, project_id)
    done = 0
    for chunk in q._chunks(ids, 2000):
        done += _refresh_items(s, chunk, seed)
        if progress_cb is not None:
            progress_cb(done, len(ids))
    if item_ids is None:
        q.update_project_settings(s, project_id, {_CHECKED_KEY: started.isoformat()})
    return done


def ensure_stats(s: Session, project_id: int, progress_cb: Callable[[int, int], None] | None = None) -> int:
    """Bring missing or outdated queue numbers up to date (new imports, pipeline re-runs);
    returns how many items were recomputed."""
    started = utcnow()
    first_check = _checked_at(s, project_id) is None
    stale = stale_stats_ids(s, project_id)
    done = refresh_stats(s, project_id, stale, progress_cb) if stale else 0
    if stale or first_check:
        q.update_project_settings(s, project_id, {_CHECKED_KEY: started.isoformat()})
    return done


def reshuffle(s: Session, project_id: int, seed: int) -> None:
    """Use ``seed`` for the project's random order (stored in the project settings).

    Rewrites every item's shuffle key (seconds for 100,000 items, most of it SQLite
    maintaining the index): the order is then one index walk for every "next".
    """
    if _seed(s, project_id) == seed:
        return
    q.update_project_settings(s, project_id, {"review_seed": int(seed)})
    ids = list(s.scalars(select(rm.ItemStats.item_id).where(rm.ItemStats.project_id == project_id)))
    stats = rm.ItemStats.__table__
    stmt = update(stats).where(stats.c.item_id == bindparam("iid")).values(shuffle_key=bindparam("key"))
    for chunk in q._chunks(ids, 5000):
        s.connection().execute(stmt, [{"iid": i, "key": shuffle_key(seed, i)} for i in chunk])


# --------------------------------------------------------------------------- apply to all occurrences


def occurrence_items(
    s: Session, project_id: int, side: str, text: str, exclude_item_id: int | None = None, limit: int = 500
) -> list[int]:
    """Items of the project whose ``side`` text contains ``text`` (a candidate list: the
    token check is apply_occurrences' job)."""
    q._check_choice(side, SIDES, "side")
    if not text.strip():
        return []
    column = orm.Item.source_text if side == "source" else orm.Item.target_text
    stmt = select(orm.Item.id).where(orm.Item.project_id == project_id, column.contains(text, autoescape=True))
    if exclude_item_id is not None:
        stmt = stmt.where(orm.Item.id != exclude_item_id)
    return list(s.scalars(stmt.order_by(orm.Item.position).limit(limit)))


def apply_occurrences(
    s: Session,
    project_id: int,
    user: str,
    side: str,
    words: Sequence[str],
    label: str | None,
    item_ids: Sequence[int],
) -> OccurrenceReport:
    """Apply one correction (give ``words`` the label ``label``; None: remove its span) to
    every whole-token occurrence in ``item_ids``, as one appended edit per changed item in
    ``user``'s versions. Items of other projects are ignored."""
    user = q._check_user(user)
    q._check_choice(side, SIDES, "side")
    phrase = " ".join(words)
    items_changed = occ = refused = 0
    changed_ids: list[int] = []
    for chunk in q._chunks(list(item_ids), 200):
        for view in load_views(s, chunk, user):
            if view.record.project_id != project_id or side not in view.spans:
                continue
            sentence = _sentence_of(view.record, side)
            result = apply_to_occurrence(sentence, view.spans[side], words, label, f"human:{user}")
            refused += result.refused
            if not result.changed:
                continue
            _write_spans(s, view, side, result.spans, view.pending[side], "edit", f"applied to all occurrences of '{phrase}'")
            _set_state(s, view, None)
            _finish_write(s, view, None)
            items_changed += 1
            occ += result.changed
            changed_ids.append(view.id)
    if changed_ids:
        _refresh_items(s, changed_ids)
    return OccurrenceReport(items_changed, occ, refused, tuple(changed_ids))


# --------------------------------------------------------------------------- history


def item_history(s: Session, item_id: int) -> list[HistoryEntry]:
    """Everything people did to the item, oldest first: who, when, what."""
    record = q.load_item(s, item_id)
    out: list[HistoryEntry] = []
    for e in q.history(s, item_id):
        sentence = record.item.source if e.side == "source" else record.item.target
        if e.side is None:
            after = e.after or {}
            what = f"status {after.get('status')}" + (f": {e.comment}" if e.comment else "")
        elif e.action in ("undo", "redo"):
            what = f"{e.action}: " + describe_change(e.before, e.after, sentence)
        else:
            what = describe_change(e.before, e.after, sentence) + (f" ({e.comment})" if e.comment else "")
        out.append(HistoryEntry(e.id, e.created_at, e.user, e.action, e.side, what))
    for r in s.execute(select(rm.Adjudication).where(rm.Adjudication.item_id == item_id).order_by(rm.Adjudication.id)).scalars():
        sentence = record.item.source if r.side == "source" else record.item.target
        spans = _spans_from(r.spans, "adjudicated")
        what = f"adjudicated from {', '.join(r.merged_from or []) or 'no annotator'}: " + ", ".join(
            f"{sp.label} '{sp.text(sentence)}'" for sp in spans
        )
        out.append(HistoryEntry(-r.id, q._utc(r.created_at), r.user_name, "adjudicate", r.side, what if spans else what + "no entities"))
    out.sort(key=lambda h: (h.when, abs(h.id)))
    return out


# --------------------------------------------------------------------------- agreement and adjudication


def agreement_data(
    s: Session, project_id: int, side: str = "target", users: Sequence[str] | None = None
) -> tuple[dict[int, dict[str, list[Span]]], dict[int, int], dict[int, str]]:
    """For every item that at least two people reviewed: person -> their final spans of
    ``side``; plus each item's token count and external id."""
    q._check_choice(side, SIDES, "side")
    stmt = select(rm.ReviewState.item_id, rm.ReviewState.user_name).where(
        rm.ReviewState.project_id == project_id, rm.ReviewState.status == "reviewed"
    )
    if users is not None:
        stmt = stmt.where(rm.ReviewState.user_name.in_(list(users)))
    reviewers: dict[int, set[str]] = defaultdict(set)
    for item_id, name in s.execute(stmt):
        reviewers[item_id].add(name)
    ids = sorted(i for i, names in reviewers.items() if len(names) >= 2)
    annotations: dict[int, dict[str, list[Span]]] = {}
    lengths: dict[int, int] = {}
    external: dict[int, str] = {}
    for chunk in q._chunks(ids, _CHUNK):
        records = {r.id: r for r in q.load_items(s, chunk)}
        extra = _extra(s, chunk)
        for item_id in chunk:
            record = records.get(item_id)
            if record is None or (side == "target" and record.item.target is None):
                continue
            per_user = {}
            for name in sorted(reviewers[item_id]):
                per_user[name] = _view(record, name, extra).spans[side]
            annotations[item_id] = per_user
            lengths[item_id] = len(_sentence_of(record, side))
            external[item_id] = record.external_id
    return annotations, lengths, external


def adjudication_queue(s: Session, project_id: int, min_reviewers: int = 2, only_open: bool = True, limit: int = 200) -> list[QueueRow]:
    """Items at least ``min_reviewers`` people reviewed (not yet adjudicated when
    ``only_open``), most disagreement first."""
    n = func.count(rm.ReviewState.id)
    reviewed = (
        select(rm.ReviewState.item_id)
        .where(rm.ReviewState.project_id == project_id, rm.ReviewState.status == "reviewed")
        .group_by(rm.ReviewState.item_id)
        .having(n >= min_reviewers)
    )
    stmt = (
        select(orm.Item.id, orm.Item.external_id, orm.Item.position, orm.Item.status, rm.ItemStats.min_confidence, rm.ItemStats.disagreement, rm.ItemStats.uncertainty, orm.Item.source_text, orm.Item.target_text)
        .outerjoin(rm.ItemStats, rm.ItemStats.item_id == orm.Item.id)
        .where(orm.Item.project_id == project_id, orm.Item.id.in_(reviewed))
    )
    if only_open:
        stmt = stmt.where(~exists().where(rm.Adjudication.item_id == orm.Item.id))
    stmt = stmt.order_by(func.coalesce(rm.ItemStats.disagreement, 0.0).desc(), orm.Item.position).limit(limit)
    return [QueueRow(*r) for r in s.execute(stmt)]


def save_adjudication(
    s: Session,
    item_id: int,
    side: str,
    spans: Sequence[Span],
    user: str,
    merged_from: Sequence[str],
    comment: str | None = None,
) -> int:
    """Store a reviewer's merged gold spans for one side (appended; the newest counts)."""
    q._check_choice(side, SIDES, "side")
    user = q._check_user(user)
    record = q.load_item(s, item_id)
    sentence = _sentence_of(record, side)
    ordered = check_spans(sentence, [Span(sp.start, sp.end, sp.label, sp.char_start, sp.char_end, "adjudicated", None) for sp in spans], f"item {record.external_id} {side}")
    labels = _labels(s, record.project_id)
    unknown = sorted({sp.label for sp in ordered} - set(labels))
    if labels and unknown:
        raise QueryError(f"item {record.external_id} {side}: label(s) {', '.join(unknown)} not in the project's labels")
    row = rm.Adjudication(
        project_id=record.project_id, item_id=item_id, side=side, spans=q._spans_json(ordered, False),
        user_name=user, merged_from=list(merged_from), comment=comment, created_at=utcnow(),
    )  # fmt: skip
    s.add(row)
    s.flush()
    return row.id


def count_adjudicated(s: Session, project_id: int) -> int:
    return int(s.scalar(select(func.count(func.distinct(rm.Adjudication.item_id))).where(rm.Adjudication.project_id == project_id)) or 0)


def export_adjudicated(s: Session, project_id: int, media_dir: Path | None = None) -> list[Item]:
    """Adjudicated gold only: the items a reviewer adjudicated, in original order, with the
    adjudicated spans on each adjudicated side (the other side keeps its current spans)."""
    q.get_project(s, project_id)
    ids = list(
        s.scalars(
            select(orm.Item.id)
            .where(orm.Item.project_id == project_id, exists().where(rm.Adjudication.item_id == orm.Item.id))
            .order_by(orm.Item.position)
        )
    )
    out: list[Item] = []
    for chunk in q._chunks(ids, _CHUNK):
        extra = _extra(s, chunk)
        for record in q.load_items(s, chunk, media_dir):
            adj = extra.adjudications.get(record.id, {})
            item = record.item
            changes: dict[str, Any] = {}
            if "source" in adj:
                changes["source_spans"] = _spans_from(adj["source"].spans, "adjudicated")
            if "target" in adj and item.target is not None:
                changes["target_spans"] = _spans_from(adj["target"].spans, "adjudicated")
            out.append(item.with_(**changes))
    return out


EXPORT_SELECTIONS = {
    "all": "every item, current spans",
    "reviewed": "reviewed items only",
    "adjudicated": "adjudicated gold only",
}


def export_selection(s: Session, project_id: int, selection: str = "all", media_dir: Path | None = None) -> list[Item]:
    """The one entry point for exports: all items, reviewed only, or adjudicated gold only."""
    if selection == "adjudicated":
        return export_adjudicated(s, project_id, media_dir)
    if selection not in EXPORT_SELECTIONS:
        raise ValueError(f"unknown export selection {selection!r}; expected one of {', '.join(EXPORT_SELECTIONS)}")
    return q.export_items(s, project_id, reviewed_only=selection == "reviewed", media_dir=media_dir)


# --------------------------------------------------------------------------- login sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_login_session(s: Session, user_name: str, hours: float = 12.0) -> str:
    """A new random session token for a logged-in user (only its hash is stored)."""
    user_id = s.scalar(select(orm.User.id).where(orm.User.name == user_name))
    if user_id is None:
        raise NotFoundError(f"no user named {user_name!r}")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    s.execute(delete(rm.AuthSession).where(rm.AuthSession.expires_at < now))
    s.add(rm.AuthSession(token_sha256=_token_hash(token), user_id=user_id, created_at=now, expires_at=now + timedelta(hours=hours)))
    s.flush()
    return token


def user_for_session(s: Session, token: str | None) -> UserInfo | None:
    """The user of a valid, unexpired session token, else None."""
    if not token:
        return None
    row = s.execute(
        select(orm.User.name, rm.AuthSession.expires_at)
        .join(rm.AuthSession, rm.AuthSession.user_id == orm.User.id)
        .where(rm.AuthSession.token_sha256 == _token_hash(token))
    ).first()
    if row is None or q._utc(row.expires_at) < utcnow():
        return None
    return q.get_user(s, row.name)


def end_login_session(s: Session, token: str | None) -> None:
    if token:
        s.execute(delete(rm.AuthSession).where(rm.AuthSession.token_sha256 == _token_hash(token)))
