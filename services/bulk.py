"""Fast modes: accept every item of a queue whose suggestion is confident enough, as one
edit per item in the log (so each is undoable), and undo such a batch as a whole."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from typing import Callable

from sqlalchemy.orm import Session

from core.annotations.queue import QueueFilter
from db.edits import events_with_comment
from db.errors import QueryError
from db.queue import queue_count, queue_rows
from services import review

__all__ = ["BulkReport", "confident_filter", "count_confident", "accept_confident", "undo_bulk"]

MARK = "bulk accept"


@dataclass(frozen=True, slots=True)
class BulkReport:
    batch: str  # the comment every edit of this batch carries
    item_ids: tuple[int, ...]
    conflicts: int  # items someone changed meanwhile (left alone)


def confident_filter(filt: QueueFilter, threshold: float) -> QueueFilter:
    """The queue ``filt`` narrowed to items whose lowest suggested confidence is >= threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise QueryError(f"threshold {threshold} outside [0, 1]")
    low = max(threshold, filt.min_confidence or 0.0)
    return dc_replace(filt, min_confidence=low, max_confidence=filt.max_confidence if (filt.max_confidence or 1.0) >= low else low)


def count_confident(s: Session, project_id: int, user: str, filt: QueueFilter, threshold: float) -> int:
    return queue_count(s, project_id, user, confident_filter(filt, threshold))


def accept_confident(
    s: Session, project_id: int, user: str, filt: QueueFilter, threshold: float, on_progress: Callable[[int, int], None] | None = None
) -> BulkReport:
    """Accept (as ``user``) every item of the queue whose suggestion's lowest confidence is at
    least ``threshold`` and that is not reviewed by them yet: one accept per item, committed
    item by item, all carrying one batch comment so ``undo_bulk`` can take the batch back."""
    narrowed = confident_filter(filt, threshold)
    total = queue_count(s, project_id, user, narrowed)
    batch = f"{MARK} >= {threshold:.2f} ({uuid.uuid4().hex[:8]})"
    done: list[int] = []
    conflicts = seen = 0
    after: int | None = None
    while rows := queue_rows(s, project_id, user, narrowed, limit=200, after_item_id=after):
        for row in rows:
            after, seen = row.id, seen + 1
            if row.status == "reviewed":
                continue
            try:
                review.accept_item(s, row.id, user, None, comment=batch)
                s.commit()
                done.append(row.id)
            except review.ReviewConflictError:
                s.rollback()
                conflicts += 1
            if on_progress is not None:
                on_progress(seen, total)
    return BulkReport(batch, tuple(done), conflicts)


def undo_bulk(s: Session, project_id: int, user: str, batch: str) -> int:
    """Take a bulk accept back: each item whose newest change by ``user`` is still that
    accept gets it undone (one undo row per side) and becomes new again for them. Items
    changed since are left as they are. Returns how many items were taken back."""
    undone = 0
    for item_id, edit_ids in events_with_comment(s, project_id, user, batch).items():
        view = review.load_view(s, item_id, user)
        if view.head not in edit_ids:
            continue
        for side in ("target", "source"):
            stack = view.stream(side).undo
            if stack and stack[-1][1] in edit_ids:
                review.undo(s, item_id, user, None, side)
        review.set_status(s, item_id, user, "new")
        s.commit()
        undone += 1
    return undone
