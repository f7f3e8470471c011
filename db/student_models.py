"""Tables of the student retraining loop (migration 0004_student), on the same ``Base`` as db.models.

* ``model_versions``: one row per finished training run of a project's student: its
  version number (1, 2, ... per project), the settings it was trained with, the item ids
  it used (train gold, train silver, dev, test), its metrics (test precision/recall/F1
  overall and per label, loss curve, epoch history), where the model folder is, and
  whether it is the project's active version. A partial unique index allows at most one
  active version per project, so two concurrent "activate" clicks cannot leave two.
* ``student_test_items``: the project's held-out gold test split. Drawn once from the gold
  items and stored, so every version is scored on the same sentences and no training run
  ever sees them; only an explicit reset draws a new one.

Imported by db.models (``*_models.py``), so ``Base.metadata`` always holds these tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, utcnow


class ModelVersion(Base):
    """A trained student of one project (the model folder lives under settings().models_dir)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the project
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))  # the training job that made it
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # TrainConfig and job options
    item_ids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"train_gold": [...], "train_silver", "dev", "test"}
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"test": {...}, "history", "loss_curve", ...}
    n_gold: Mapped[int] = mapped_column(Integer, default=0)  # gold items trained on (train + dev): the learning-curve x
    n_silver: Mapped[int] = mapped_column(Integer, default=0)
    n_test: Mapped[int] = mapped_column(Integer, default=0)
    test_f1: Mapped[float | None] = mapped_column(Float)  # None: the project had no test split yet
    test_split: Mapped[str | None] = mapped_column(String(64))  # digest of the test ids: same digest = comparable F1
    path: Mapped[str] = mapped_column(String(500))  # relative to settings().models_dir (or absolute)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# At most one active version per project: a partial unique index. ``active = true`` is the
# one spelling SQLite (>= 3.23) and PostgreSQL both accept.
ACTIVE_ONLY = "active = true"
Index(
    "uq_model_versions_active_project",
    ModelVersion.project_id,
    unique=True,
    sqlite_where=text(ACTIVE_ONLY),
    postgresql_where=text(ACTIVE_ONLY),
)


class StudentTestItem(Base):
    """One item of a project's held-out gold test split."""

    __tablename__ = "student_test_items"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
