"""Adjudications: a reviewer's merged gold spans of one side of an item. Appended, never
changed; the newest per (item, side) counts (core.annotations.ledger)."""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from core.data import Span
from db import models as orm
from db import review_models as rm
from db.codecs import spans_json
from db.errors import check_user

__all__ = ["add_adjudication", "count_adjudicated", "adjudicated_item_ids"]


def add_adjudication(
    s: Session, project_id: int, item_id: int, side: str, spans: Sequence[Span], user: str, merged_from: Sequence[str], comment: str | None = None
) -> int:
    """Append checked spans as the adjudicated gold of one side; returns the row id."""
    row = rm.Adjudication(
        project_id=project_id, item_id=item_id, side=side, spans=spans_json(spans, False), user_name=check_user(user),
        merged_from=list(merged_from), comment=comment, created_at=orm.utcnow(),
    )  # fmt: skip
    s.add(row)
    s.flush()
    return row.id


def count_adjudicated(s: Session, project_id: int) -> int:
    return int(s.scalar(select(func.count(func.distinct(rm.Adjudication.item_id))).where(rm.Adjudication.project_id == project_id)) or 0)


def adjudicated_item_ids(s: Session, project_id: int) -> list[int]:
    """The project's adjudicated items in original order."""
    return list(
        s.scalars(
            select(orm.Item.id)
            .where(orm.Item.project_id == project_id, exists().where(rm.Adjudication.item_id == orm.Item.id))
            .order_by(orm.Item.position)
        )
    )
