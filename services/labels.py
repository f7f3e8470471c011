"""The ledger over the database: which source a project suggests, and items with the
labels export, training and statistics use (core.annotations.ledger decides them)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from sqlalchemy.orm import Session

from core.annotations.ledger import export_item
from core.data import Item
from db.items import load_item, load_items
from db.projects import get_project

__all__ = ["SUGGESTION_SETTING", "preferred_source", "labelled_items", "labelled_item", "iter_labelled_items"]

SUGGESTION_SETTING = "suggestion_source"  # project setting: the span set to suggest, e.g. "projection:ilp"


def preferred_source(s: Session, project_id: int) -> str | None:
    """The span set the project names as its suggestion (None: the ledger's default order)."""
    value = get_project(s, project_id).settings.get(SUGGESTION_SETTING)
    return str(value) if value else None


def labelled_items(s: Session, item_ids: Sequence[int], media_dir: Path | None = None) -> list[Item]:
    """Items with the ledger's labels on each side, in the given order."""
    records = load_items(s, item_ids, media_dir)
    preferred: dict[int, str | None] = {}
    out = []
    for r in records:
        if r.project_id not in preferred:
            preferred[r.project_id] = preferred_source(s, r.project_id)
        out.append(export_item(r, preferred[r.project_id]))
    return out


def labelled_item(s: Session, item_id: int, media_dir: Path | None = None) -> Item:
    """One item with the ledger's labels. Raises NotFoundError."""
    record = load_item(s, item_id, media_dir)
    return export_item(record, preferred_source(s, record.project_id))


def iter_labelled_items(s: Session, item_ids: Sequence[int], media_dir: Path | None = None, batch_size: int = 500) -> Iterator[Item]:
    """labelled_items batch by batch (a 100,000-item export is written as it is read)."""
    ids = list(item_ids)
    for start in range(0, len(ids), batch_size):
        yield from labelled_items(s, ids[start : start + batch_size], media_dir)
