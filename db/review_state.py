"""Each person's own status of each item (new, reviewed, skipped, flagged), so several
annotators work through the same items without taking them out of each other's queues."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.annotations.records import STATUSES
from db import models as orm
from db import review_models as rm

__all__ = ["Progress", "set_review_state", "progress", "annotators", "reviewers"]


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    counts: dict[str, int]  # status -> items with that status for this person (new = the rest)

    @property
    def done(self) -> int:
        return self.counts.get("reviewed", 0)


def set_review_state(s: Session, project_id: int, item_id: int, user: str, status: str | None, comment: str | None = None) -> str:
    """Create (status "new") or change this person's state of the item; ``status`` None
    only makes sure a row exists (the person started the item). Returns the status.
    ``updated_at`` moves only when the status changes: it says when they decided."""
    row = s.scalars(select(rm.ReviewState).where(rm.ReviewState.item_id == item_id, rm.ReviewState.user_name == user)).first()
    now = orm.utcnow()
    if row is None:
        row = rm.ReviewState(project_id=project_id, item_id=item_id, user_name=user, status=status or "new",
                             flag_comment=comment if status == "flagged" else None, updated_at=now)  # fmt: skip
        s.add(row)
    elif status is not None:
        row.status, row.flag_comment, row.updated_at = status, comment if status == "flagged" else None, now
    s.flush()
    return row.status


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


def reviewers(s: Session, project_id: int, users: Sequence[str] | None = None) -> dict[int, set[str]]:
    """item id -> the people who marked it reviewed (optionally among ``users``)."""
    stmt = select(rm.ReviewState.item_id, rm.ReviewState.user_name).where(rm.ReviewState.project_id == project_id, rm.ReviewState.status == "reviewed")
    if users is not None:
        stmt = stmt.where(rm.ReviewState.user_name.in_(list(users)))
    out: dict[int, set[str]] = defaultdict(set)
    for item_id, name in s.execute(stmt):
        out[item_id].add(name)
    return dict(out)
