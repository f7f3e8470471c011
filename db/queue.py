"""The review queue in SQL: each person's queue of a project, ordered and filtered by the
per-item numbers in ``item_stats`` (kept by db.stats) and their own review states.

Ordered queues are driven by an item_stats index (project, key, item), the original order
by the items (project, position) index; "next" is one keyset step along it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import and_, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from core.annotations.queue import STATUSES, QueueFilter
from db import models as orm
from db import review_models as rm

__all__ = ["QueueRow", "queue_next", "queue_count", "queue_rows", "queue_position", "adjudication_queue"]

_ORDER_KEYS = {
    "confidence": rm.ItemStats.confidence_key,
    "disagreement": rm.ItemStats.disagreement_key,
    "uncertainty": rm.ItemStats.uncertainty_key,
    "random": rm.ItemStats.shuffle_key,
}


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


def _queue_select(project_id: int, user: str, filt: QueueFilter, columns: Sequence[Any] = ()):  # noqa: ANN202
    """(select of (key, item id, *columns) with every filter, key column, id column)."""
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
    s: Session, project_id: int, user: str, filt: QueueFilter, after_item_id: int | None = None, *, backwards: bool = False, wrap: bool = True
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


def queue_position(s: Session, project_id: int, user: str, filt: QueueFilter, item_id: int) -> int | None:
    """1-based place of the item in the queue as it is now (None: not in this queue)."""
    stmt, key, idcol = _queue_select(project_id, user, filt)
    cursor = _cursor(s, item_id, filt)
    if cursor is None or s.execute(stmt.where(idcol == item_id).limit(1)).first() is None:
        return None
    before = stmt.where(tuple_(key, idcol) < tuple_(*cursor))
    return int(s.scalar(select(func.count()).select_from(before.subquery())) or 0) + 1


def queue_rows(s: Session, project_id: int, user: str, filt: QueueFilter, limit: int = 50, offset: int = 0, after_item_id: int | None = None) -> list[QueueRow]:
    """One page of the queue in its order (from ``after_item_id`` when given: a keyset page)."""
    mine = aliased(rm.ReviewState)
    stmt, key, idcol = _queue_select(project_id, user, filt)
    if after_item_id is not None and (cursor := _cursor(s, after_item_id, filt)) is not None:
        stmt = stmt.where(tuple_(key, idcol) > tuple_(*cursor))
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
        select(orm.Item.id, orm.Item.external_id, orm.Item.position, orm.Item.status, rm.ItemStats.min_confidence,
               rm.ItemStats.disagreement, rm.ItemStats.uncertainty, orm.Item.source_text, orm.Item.target_text)
        .outerjoin(rm.ItemStats, rm.ItemStats.item_id == orm.Item.id)
        .where(orm.Item.project_id == project_id, orm.Item.id.in_(reviewed))
    )  # fmt: skip
    if only_open:
        stmt = stmt.where(~exists().where(rm.Adjudication.item_id == orm.Item.id))
    stmt = stmt.order_by(func.coalesce(rm.ItemStats.disagreement, 0.0).desc(), orm.Item.position).limit(limit)
    return [QueueRow(*r) for r in s.execute(stmt)]
