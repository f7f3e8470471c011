"""Which items an export writes, in original order (their labels are the ledger's)."""

from __future__ import annotations

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from db import models as orm
from db import review_models as rm
from db.errors import QueryError

__all__ = ["EXPORT_SELECTIONS", "export_item_ids", "count_export_items"]

EXPORT_SELECTIONS = {
    "all": "every item, current spans",
    "reviewed": "reviewed items only",
    "adjudicated": "adjudicated gold only",
}


def _select(project_id: int, selection: str):  # noqa: ANN202
    if selection not in EXPORT_SELECTIONS:
        raise QueryError(f"unknown export selection {selection!r}; expected one of {', '.join(EXPORT_SELECTIONS)}")
    stmt = select(orm.Item.id).where(orm.Item.project_id == project_id)
    if selection == "reviewed":
        stmt = stmt.where(orm.Item.status == "reviewed")  # kept equal to ledger.item_status on every write
    elif selection == "adjudicated":
        stmt = stmt.where(exists().where(rm.Adjudication.item_id == orm.Item.id))
    return stmt


def export_item_ids(s: Session, project_id: int, selection: str = "all") -> list[int]:
    """Ids of the items of ``selection`` (all, reviewed, adjudicated) in original order."""
    return list(s.scalars(_select(project_id, selection).order_by(orm.Item.position)))


def count_export_items(s: Session, project_id: int, selection: str = "all") -> int:
    """How many items an export of ``selection`` writes (a progress bar's total)."""
    return int(s.scalar(select(func.count()).select_from(_select(project_id, selection).subquery())) or 0)
