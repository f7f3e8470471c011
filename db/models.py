"""SQLAlchemy 2.0 typed ORM models: the schema of record.

Portable types only (JSON, DateTime(timezone=True), Text, Integer, Float), so the same
models run on SQLite and PostgreSQL. All timestamps are written in UTC by Python (no
server defaults that differ between databases). Allowed values of status/role/side
columns are checked by the db modules that write them, not with CHECK constraints, so a later issue can add
a value without rebuilding a 100,000-row table on SQLite.

The schema is created and changed only by Alembic migrations (db/migrations); a test
checks that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names: needed by Alembic batch mode on SQLite and by PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON where a Python None must be SQL NULL (not the JSON text 'null').
NullableJSON = JSON(none_as_null=True)

USER_ROLES = ("annotator", "reviewer", "admin")
STAGE_STATUSES = ("done", "failed")
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
JOB_FINAL_STATUSES = ("done", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="annotator")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    src_lang: Mapped[str] = mapped_column(String(16))
    tgt_lang: Mapped[str] = mapped_column(String(16))
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Image(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(300))  # relative to the media folder
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        UniqueConstraint("project_id", "position"),
        # The review loop: "next item of this project with status X after position P".
        Index("ix_items_project_status_position", "project_id", "status", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)  # original order in the project
    source_text: Mapped[str] = mapped_column(Text)
    source_tokens: Mapped[list[Any]] = mapped_column(JSON)  # [[text, start, end], ...]
    source_lang: Mapped[str | None] = mapped_column(String(16))
    target_text: Mapped[str | None] = mapped_column(Text)
    target_tokens: Mapped[list[Any] | None] = mapped_column(NullableJSON)
    target_lang: Mapped[str | None] = mapped_column(String(16))
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"), index=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="new")
    flag_comment: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic concurrency
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    # Every ORM UPDATE of an item runs "... WHERE id = ? AND version = <loaded>" and bumps the
    # version; a concurrent change makes it fail (StaleDataError) instead of overwriting.
    __mapper_args__ = {"version_id_col": version}

    # Collections are never lazy-loaded (lazy="raise" makes an accidental N+1 an error);
    # they exist so an import can insert an item with its span sets in one flush.
    span_sets: Mapped[list["SpanSet"]] = relationship(lazy="raise")
    alignments: Mapped[list["Alignment"]] = relationship(lazy="raise")


class ItemStage(Base):
    """Which pipeline stage is done (or failed, with the error) for each item."""

    __tablename__ = "item_stages"
    __table_args__ = (UniqueConstraint("item_id", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    stage: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # done / failed
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SpanSet(Base):
    """The spans of one side of one item from one source (gold, teacher, projection:x, ...)."""

    __tablename__ = "span_sets"
    __table_args__ = (UniqueConstraint("item_id", "side", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    side: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(100))
    spans: Mapped[list[Any]] = mapped_column(JSON)  # [{start, end, label, char_start, char_end, confidence}]
    unprojected: Mapped[list[Any] | None] = mapped_column(NullableJSON)  # source-side spans that found no target
    settings: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alignment(Base):
    __tablename__ = "alignments"
    __table_args__ = (UniqueConstraint("item_id", "aligner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    aligner: Mapped[str] = mapped_column(String(100))
    links: Mapped[list[Any]] = mapped_column(JSON)  # [[src, tgt, score], ...]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Edit(Base):
    """Append-only log of human actions. Rows are never updated or deleted (guarded by ORM
    events here and by database triggers created in the migration)."""

    __tablename__ = "edits"
    __table_args__ = (Index("ix_edits_item_id_id", "item_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    user_name: Mapped[str] = mapped_column(String(100))
    side: Mapped[str | None] = mapped_column(String(8))  # None for status actions
    action: Mapped[str] = mapped_column(String(16))
    before: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    after: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    base_version: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_project_id_created_at", "project_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AppendOnlyError(RuntimeError):
    """Someone tried to change or delete a row of the edit log."""


@event.listens_for(Edit, "before_update")
def _edit_no_update(mapper, connection, target) -> None:  # noqa: ANN001
    raise AppendOnlyError(f"edit {target.id} cannot be changed: the edit log is append-only")


@event.listens_for(Edit, "before_delete")
def _edit_no_delete(mapper, connection, target) -> None:  # noqa: ANN001
    raise AppendOnlyError(f"edit {target.id} cannot be deleted: the edit log is append-only")


def _import_feature_models() -> None:
    """Tables of later features live in ``db/<feature>_models.py`` on this same ``Base``.

    Importing them here means ``Base.metadata`` always holds every table, whichever module
    a process imports first, so migrations, ``db check`` and foreign keys see one schema.
    """
    import importlib
    import pkgutil
    from pathlib import Path

    for module in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
        if module.name.endswith("_models"):
            importlib.import_module(f"{__package__}.{module.name}")


_import_feature_models()
