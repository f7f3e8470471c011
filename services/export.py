"""Export: the items of a selection with the ledger's labels."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from sqlalchemy.orm import Session

from core.data import Item
from db.exports import EXPORT_SELECTIONS, count_export_items, export_item_ids
from db.projects import get_project
from services.labels import iter_labelled_items

__all__ = ["EXPORT_SELECTIONS", "iter_export", "export_selection", "count_export_items"]


def iter_export(s: Session, project_id: int, selection: str = "all", media_dir: Path | None = None) -> Iterator[Item]:
    """The items of ``selection`` (all, reviewed, adjudicated) in original order, each side
    with the labels the ledger gives it, read batch by batch."""
    get_project(s, project_id)
    return iter_labelled_items(s, export_item_ids(s, project_id, selection), media_dir)


def export_selection(s: Session, project_id: int, selection: str = "all", media_dir: Path | None = None) -> list[Item]:
    """iter_export as a list."""
    return list(iter_export(s, project_id, selection, media_dir))
