"""Editor events already applied, by (client id, sequence number): a retried or duplicated
event is answered with the stored outcome, never applied twice."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models as orm
from db import review_models as rm
from db.errors import check_json

__all__ = ["applied_outcome", "record_applied"]


def applied_outcome(s: Session, client_id: str, seq: int) -> dict[str, Any] | None:
    """The stored outcome of an event already applied (None: not seen yet)."""
    return s.scalar(select(rm.ClientEvent.outcome).where(rm.ClientEvent.client_id == client_id, rm.ClientEvent.seq == seq))


def record_applied(s: Session, client_id: str, seq: int, user: str, item_id: int | None, action: str, outcome: Mapping[str, Any]) -> None:
    """Remember an applied event with its outcome, in the transaction that applied it (a
    concurrent duplicate then fails the unique constraint and is rolled back)."""
    check_json(dict(outcome), f"outcome of event {client_id}/{seq}")
    s.add(rm.ClientEvent(client_id=client_id[:64], seq=int(seq), user_name=user, item_id=item_id, action=action[:32], outcome=dict(outcome), created_at=orm.utcnow()))
    s.flush()
