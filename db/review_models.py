"""Tables of the review workbench (migration 0002), on the same ``Base`` as db.models.

* ``review_states``: each person's own status of each item (new, reviewed, skipped,
  flagged), so several annotators work through the same items without taking items out
  of each other's queues. Their span decisions are rows of the shared append-only edit
  log (``edits.user_name``); core.annotations.ledger replays one person's stream.
* ``item_stats``: per-item numbers the queue is ordered and filtered by (lowest
  confidence, disagreement between span sets, student uncertainty, a seeded shuffle, the
  labels present), kept in indexed columns so choosing the next of 100,000 items is one
  index walk instead of reading every item's JSON spans.
* ``adjudications``: a reviewer's merge of annotator versions into the gold spans of one
  side of an item. Append-only like the edit log: the newest row per (item, side) wins.
* ``auth_sessions``: login sessions (only a SHA-256 of the cookie token is stored) so a
  reload does not log people out.

Imported at the end of db.models so ``Base.metadata`` always holds these tables. Also
adds one index to ``span_sets`` (created_at), see migration 0003.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from db.models import AppendOnlyError, Base, SpanSet, utcnow


class ReviewState(Base):
    """One person's status of one item (absent row = "new" for that person)."""

    __tablename__ = "review_states"
    __table_args__ = (
        UniqueConstraint("item_id", "user_name"),
        # Progress per annotator and the "annotator" queue filter.
        Index("ix_review_states_project_user_status", "project_id", "user_name", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    user_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    flag_comment: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ItemStats(Base):
    """Queue keys of one item. ``*_key`` columns are never NULL (missing values sort last)
    and are ascending in the order the queue wants, so every ordering is an index walk."""

    __tablename__ = "item_stats"
    __table_args__ = (
        Index("ix_item_stats_project_confidence", "project_id", "confidence_key", "item_id"),
        Index("ix_item_stats_project_disagreement", "project_id", "disagreement_key", "item_id"),
        Index("ix_item_stats_project_uncertainty", "project_id", "uncertainty_key", "item_id"),
        Index("ix_item_stats_project_shuffle", "project_id", "shuffle_key", "item_id"),
    )

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    min_confidence: Mapped[float | None] = mapped_column(Float)
    disagreement: Mapped[float | None] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    n_spans: Mapped[int] = mapped_column(Integer, default=0)
    labels: Mapped[str] = mapped_column(Text, default="|")  # "|LOC|PER|": LIKE '%|LOC|%' filters by label
    confidence_key: Mapped[float] = mapped_column(Float)  # min_confidence, 2.0 when unknown
    disagreement_key: Mapped[float] = mapped_column(Float)  # -disagreement, 0.0 when unknown
    uncertainty_key: Mapped[float] = mapped_column(Float)  # -uncertainty, 1.0 when unknown
    shuffle_key: Mapped[int] = mapped_column(Integer)  # seeded hash of the item id
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Adjudication(Base):
    """A reviewer's merged (gold) spans of one side of one item. Never updated or deleted."""

    __tablename__ = "adjudications"
    __table_args__ = (
        Index("ix_adjudications_item_side_id", "item_id", "side", "id"),
        Index("ix_adjudications_project_item", "project_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    side: Mapped[str] = mapped_column(String(8))
    spans: Mapped[list[Any]] = mapped_column(JSON)
    user_name: Mapped[str] = mapped_column(String(100))
    merged_from: Mapped[list[Any]] = mapped_column(JSON)  # the annotator streams that were compared
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuthSession(Base):
    """A logged-in browser: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# Span sets written since the queue numbers were last checked (migration 0003): lets the
# Review page find new pipeline output with an index range scan instead of reading every set.
Index("ix_span_sets_created_at", SpanSet.__table__.c.created_at)


@event.listens_for(Adjudication, "before_update")
def _adjudication_no_update(mapper, connection, target) -> None:  # noqa: ANN001
    raise AppendOnlyError(f"adjudication {target.id} cannot be changed: adjudications are append-only")


@event.listens_for(Adjudication, "before_delete")
def _adjudication_no_delete(mapper, connection, target) -> None:  # noqa: ANN001
    raise AppendOnlyError(f"adjudication {target.id} cannot be deleted: adjudications are append-only")


class ClientEvent(Base):
    """An editor event already applied, by the browser's client id and sequence number.

    Written in the same transaction as the edit it made, so a retried or duplicated event
    (a lost answer, a double send) is recognised and answered with the stored outcome
    instead of being applied twice (migration 0005).
    """

    __tablename__ = "client_events"
    __table_args__ = (UniqueConstraint("client_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    user_name: Mapped[str] = mapped_column(String(100))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
