"""Per-item queue numbers (``item_stats``): stored, found stale, reshuffled.

The numbers themselves come from the ledger (core.annotations.ledger.queue_stats); this
module only keeps them in indexed columns so every queue order is one index walk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from core.annotations.queue import ItemStatsValues, shuffle_key
from db import models as orm
from db import review_models as rm
from db.codecs import chunks, utc
from db.projects import update_project_settings

__all__ = ["write_item_stats", "stale_stats_ids", "mark_stats_checked", "stats_checked_at", "review_seed", "reshuffle"]

CHECKED_KEY = "review_stats_checked_at"  # project setting: span sets older than this are counted


def review_seed(s: Session, project_id: int) -> int:
    settings = s.scalar(select(orm.Project.settings).where(orm.Project.id == project_id)) or {}
    return int(settings.get("review_seed", 0))


def write_item_stats(s: Session, values: Sequence[tuple[int, int, ItemStatsValues]]) -> int:
    """Replace the stored numbers of these (item id, project id, numbers); returns how many."""
    now = orm.utcnow()
    seeds: dict[int, int] = {}
    rows = []
    for item_id, project_id, v in values:
        if project_id not in seeds:
            seeds[project_id] = review_seed(s, project_id)
        rows.append({
            "item_id": item_id, "project_id": project_id, "min_confidence": v.min_confidence,
            "disagreement": v.disagreement, "uncertainty": v.uncertainty, "n_spans": v.n_spans,
            "labels": v.label_text, "confidence_key": v.confidence_key, "disagreement_key": v.disagreement_key,
            "uncertainty_key": v.uncertainty_key, "shuffle_key": shuffle_key(seeds[project_id], item_id), "computed_at": now,
        })  # fmt: skip
    for part in chunks(rows):
        part = list(part)
        s.execute(delete(rm.ItemStats).where(rm.ItemStats.item_id.in_([r["item_id"] for r in part])).execution_options(synchronize_session=False))
        s.execute(insert(rm.ItemStats), part)
    return len(rows)


def stats_checked_at(s: Session, project_id: int) -> datetime | None:
    settings = s.scalar(select(orm.Project.settings).where(orm.Project.id == project_id)) or {}
    value = settings.get(CHECKED_KEY)
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def mark_stats_checked(s: Session, project_id: int, when: datetime) -> None:
    update_project_settings(s, project_id, {CHECKED_KEY: when.isoformat()})


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
    checked = stats_checked_at(s, project_id)
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
    recent: dict[int, datetime] = {}
    for item_id, created in s.execute(select(orm.SpanSet.item_id, orm.SpanSet.created_at).where(orm.SpanSet.created_at > checked)):
        created = utc(created)
        if item_id not in recent or created > recent[item_id]:
            recent[item_id] = created
    for chunk in chunks(sorted(recent)):
        for item_id, computed in s.execute(
            select(rm.ItemStats.item_id, rm.ItemStats.computed_at).where(rm.ItemStats.item_id.in_(chunk), rm.ItemStats.project_id == project_id)
        ):
            if recent[item_id] > utc(computed):
                ids.add(item_id)
    return sorted(ids)


def reshuffle(s: Session, project_id: int, seed: int) -> None:
    """Use ``seed`` for the project's random order (stored in the project settings).

    Rewrites every item's shuffle key (seconds for 100,000 items): the order is then one
    index walk for every "next".
    """
    if review_seed(s, project_id) == seed:
        return
    update_project_settings(s, project_id, {"review_seed": int(seed)})
    ids = list(s.scalars(select(rm.ItemStats.item_id).where(rm.ItemStats.project_id == project_id)))
    stats = rm.ItemStats.__table__
    stmt = update(stats).where(stats.c.item_id == bindparam("iid")).values(shuffle_key=bindparam("key"))
    for chunk in chunks(ids, 5000):
        s.connection().execute(stmt, [{"iid": i, "key": shuffle_key(seed, i)} for i in chunk])
