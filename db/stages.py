"""Pipeline stage marks: which stage is done (or failed, with the error) for each item,
so a stopped run resumes where it left off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from db import models as orm
from db.codecs import chunks, utc
from db.errors import QueryError

__all__ = [
    "StageFailure",
    "mark_stage",
    "items_needing_stage",
    "items_with_stage",
    "clear_stages",
    "stage_counts",
    "stage_failures",
]


@dataclass(frozen=True, slots=True)
class StageFailure:
    item_id: int
    external_id: str
    stage: str
    error: str | None
    updated_at: datetime


def mark_stage(s: Session, item_ids: Iterable[int], stage: str, error: str | None = None) -> None:
    """Record that a pipeline stage is done for items (or failed, with the error text)."""
    ids = list(item_ids)
    if not stage:
        raise QueryError("a stage name is required")
    status = "done" if error is None else "failed"
    now = orm.utcnow()
    for chunk in chunks(ids):
        existing = {r.item_id: r for r in s.scalars(select(orm.ItemStage).where(orm.ItemStage.item_id.in_(chunk), orm.ItemStage.stage == stage))}
        for item_id in chunk:
            r = existing.get(item_id)
            if r is None:
                s.add(orm.ItemStage(item_id=item_id, stage=stage, status=status, error=error, updated_at=now))
            else:
                r.status, r.error, r.updated_at = status, error, now
    s.flush()


def items_needing_stage(s: Session, project_id: int, stage: str, *, retry_failed: bool = True, limit: int | None = None) -> list[int]:
    """Ids (in original order) of items where ``stage`` is not done yet (failed ones too
    when ``retry_failed``)."""
    blocking = ["done"] if retry_failed else ["done", "failed"]
    done = select(orm.ItemStage.item_id).where(orm.ItemStage.stage == stage, orm.ItemStage.status.in_(blocking))
    stmt = select(orm.Item.id).where(orm.Item.project_id == project_id, orm.Item.id.not_in(done)).order_by(orm.Item.position)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(s.scalars(stmt))


def items_with_stage(s: Session, project_id: int, stage: str, status: str = "done") -> set[int]:
    """Ids of the project's items whose ``stage`` mark has ``status`` (done or failed)."""
    return set(
        s.scalars(
            select(orm.ItemStage.item_id)
            .join(orm.Item, orm.Item.id == orm.ItemStage.item_id)
            .where(orm.Item.project_id == project_id, orm.ItemStage.stage == stage, orm.ItemStage.status == status)
        )
    )


def clear_stages(s: Session, item_ids: Iterable[int], prefixes: Sequence[str]) -> int:
    """Forget the stage marks of items whose stage name starts with one of ``prefixes``, so
    those stages run again (their input changed). Returns the number of marks removed."""
    ids = list(item_ids)
    if not ids or not prefixes:
        return 0
    removed = 0
    matches = or_(*(orm.ItemStage.stage.startswith(p, autoescape=True) for p in prefixes))
    for chunk in chunks(ids):
        res = s.execute(delete(orm.ItemStage).where(orm.ItemStage.item_id.in_(chunk), matches).execution_options(synchronize_session=False))
        removed += int(res.rowcount or 0)
    return removed


def stage_counts(s: Session, project_id: int) -> dict[str, dict[str, int]]:
    """``{stage: {"done": n, "failed": n}}`` over the project's items (one grouped query)."""
    out: dict[str, dict[str, int]] = {}
    rows = s.execute(
        select(orm.ItemStage.stage, orm.ItemStage.status, func.count())
        .join(orm.Item, orm.Item.id == orm.ItemStage.item_id)
        .where(orm.Item.project_id == project_id)
        .group_by(orm.ItemStage.stage, orm.ItemStage.status)
    ).all()
    for stage, status, n in rows:
        out.setdefault(stage, {"done": 0, "failed": 0})[status] = int(n)
    return out


def stage_failures(s: Session, project_id: int, stage: str | None = None, limit: int | None = 100) -> list[StageFailure]:
    """Failed stage marks of the project's items with their errors, in item order."""
    stmt = (
        select(orm.Item.id, orm.Item.external_id, orm.ItemStage.stage, orm.ItemStage.error, orm.ItemStage.updated_at)
        .join(orm.ItemStage, orm.ItemStage.item_id == orm.Item.id)
        .where(orm.Item.project_id == project_id, orm.ItemStage.status == "failed")
        .order_by(orm.Item.position, orm.ItemStage.stage)
    )
    if stage is not None:
        stmt = stmt.where(orm.ItemStage.stage == stage)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [StageFailure(r[0], r[1], r[2], r[3], utc(r[4])) for r in s.execute(stmt).all()]
