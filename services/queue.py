"""Keeping the review queue's numbers up to date: computed by the ledger, stored in
``item_stats`` (db.stats) so the queue (db.queue) is an index walk."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Sequence

from sqlalchemy.orm import Session

from core.annotations.ledger import queue_stats
from db.codecs import chunks
from db.items import item_ids as project_item_ids
from db.items import load_items
from db.stats import mark_stats_checked, stale_stats_ids, stats_checked_at, write_item_stats
from services.labels import preferred_source

__all__ = ["refresh_items", "refresh_stats", "ensure_stats"]


def refresh_items(s: Session, item_ids: Sequence[int]) -> int:
    """Recompute and store the queue numbers of these items; returns how many."""
    done = 0
    preferred: dict[int, str | None] = {}
    for chunk in chunks(list(item_ids), 500):
        values = []
        for r in load_items(s, chunk):
            if r.project_id not in preferred:
                preferred[r.project_id] = preferred_source(s, r.project_id)
            values.append((r.id, r.project_id, queue_stats(r.annotations, preferred[r.project_id])))
        done += write_item_stats(s, values)
    return done


def refresh_stats(
    s: Session, project_id: int, item_ids: Sequence[int] | None = None, progress_cb: Callable[[int, int], None] | None = None
) -> int:
    """Recompute the queue numbers of a project's items (all, or ``item_ids``); returns how many."""
    started = datetime.now(timezone.utc)
    ids = list(item_ids) if item_ids is not None else project_item_ids(s, project_id)
    done = 0
    for chunk in chunks(ids, 2000):
        done += refresh_items(s, chunk)
        if progress_cb is not None:
            progress_cb(done, len(ids))
    if item_ids is None:
        mark_stats_checked(s, project_id, started)
    return done


def ensure_stats(s: Session, project_id: int, progress_cb: Callable[[int, int], None] | None = None) -> int:
    """Bring missing or outdated queue numbers up to date (new imports, pipeline re-runs);
    returns how many items were recomputed."""
    started = datetime.now(timezone.utc)
    first_check = stats_checked_at(s, project_id) is None
    stale = stale_stats_ids(s, project_id)
    done = refresh_stats(s, project_id, stale, progress_cb) if stale else 0
    if stale or first_check:
        mark_stats_checked(s, project_id, started)
    return done
