"""The append-only edit log: every human action is one new row, never changed.

A span action stores the person's whole new version of one side (``after``) and the one it
replaced (``before``); undo/redo store the version they restore; status actions store
``{"status", "flag_comment"}``. The ledger replays these rows (core.annotations.ledger).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.annotations.records import EDIT_ACTIONS, SIDES, EditEvent, StatusChange, Version
from db import models as orm
from db.codecs import version_json
from db.errors import check_choice, check_user
from db.items import decode_event

__all__ = ["append_edit", "history", "events_since", "events_with_comment"]


def _encode(value: Version | StatusChange | None) -> Any:
    if value is None:
        return None
    if isinstance(value, StatusChange):
        return {"status": value.status, "flag_comment": value.flag_comment}
    return version_json(value)


def append_edit(
    s: Session,
    item_id: int,
    user: str,
    side: str | None,
    action: str,
    before: Version | StatusChange | None,
    after: Version | StatusChange | None,
    base_version: int,
    comment: str | None = None,
) -> int:
    """Append one row to the edit log; returns its id (the person's new head)."""
    check_choice(action, EDIT_ACTIONS, "edit action")
    if side is not None:
        check_choice(side, SIDES, "side")
    row = orm.Edit(
        item_id=item_id, user_name=check_user(user), side=side, action=action, before=_encode(before),
        after=_encode(after), base_version=base_version, comment=comment, created_at=orm.utcnow(),
    )  # fmt: skip
    s.add(row)
    s.flush()
    return row.id


def history(s: Session, item_id: int) -> list[EditEvent]:
    """The item's whole edit log, oldest first, with ``before`` of every row."""
    return [decode_event(e) for e in s.scalars(select(orm.Edit).where(orm.Edit.item_id == item_id).order_by(orm.Edit.id))]


def events_since(s: Session, item_id: int, user: str, after_id: int) -> list[EditEvent]:
    """``user``'s rows of the item newer than ``after_id`` (what changed since a tab loaded it)."""
    rows = s.scalars(
        select(orm.Edit).where(orm.Edit.item_id == item_id, orm.Edit.user_name == user, orm.Edit.id > after_id).order_by(orm.Edit.id)
    )
    return [decode_event(e) for e in rows]


def events_with_comment(s: Session, project_id: int, user: str, comment: str) -> dict[int, list[int]]:
    """item id -> ids of ``user``'s rows carrying exactly this comment (one bulk action)."""
    out: dict[int, list[int]] = {}
    rows = s.execute(
        select(orm.Edit.item_id, orm.Edit.id)
        .join(orm.Item, orm.Item.id == orm.Edit.item_id)
        .where(orm.Item.project_id == project_id, orm.Edit.user_name == user, orm.Edit.comment == comment)
        .order_by(orm.Edit.id)
    )
    for item_id, edit_id in rows:
        out.setdefault(item_id, []).append(edit_id)
    return out
