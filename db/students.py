"""The student loop's storage: the held-out test split, model versions, and the student's
predictions that the review queue is ordered by.

Student predictions are one span set per item, ``student:<version>`` on the target side,
with ``settings = {"uncertainty", "entropy", "disagreement", "model_version"}``; a new
prediction run replaces the sets of earlier versions, so the queue compares the
projection with the current student only. What a student learns from is the ledger's
answer (core.annotations.ledger.training_labels), read by services.training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.annotations.ledger import STUDENT_PREFIX
from core.data import Span, check_spans
from db import models as orm
from db import student_models as sm
from db.codecs import chunks, columns, sentence_from_json, spans_json, utc
from db.errors import DuplicateError, NotFoundError, QueryError, check_json
from db.models import utcnow
from db.projects import get_project

__all__ = [
    "ModelVersionInfo",
    "PredictionRow",
    "activate_model_version",
    "active_model_version",
    "add_model_version",
    "get_model_version",
    "list_model_versions",
    "model_version_item_ids",
    "next_version_number",
    "save_student_predictions",
    "set_test_split",
    "student_prediction_counts",
    "student_scores",
    "test_split_digest",
    "test_split_ids",
]


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    id: int
    project_id: int
    version: int
    job_id: int | None
    settings: dict[str, Any]
    metrics: dict[str, Any]
    n_gold: int
    n_silver: int
    n_test: int
    test_f1: float | None
    test_split: str | None
    path: str
    active: bool
    created_at: datetime

    @property
    def source(self) -> str:
        """The span-set source its predictions are stored under."""
        return f"{STUDENT_PREFIX}{self.version}"


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """The student's output for one item."""

    item_id: int
    spans: Sequence[Span]
    uncertainty: float
    entropy: float
    disagreement: float | None  # core.student.disagreement vs the newest projection set (None: nothing projected)


def _version_info(r: Any) -> ModelVersionInfo:
    return ModelVersionInfo(
        r.id, r.project_id, r.version, r.job_id, dict(r.settings or {}), dict(r.metrics or {}), int(r.n_gold),
        int(r.n_silver), int(r.n_test), r.test_f1, r.test_split, r.path, bool(r.active), utc(r.created_at),
    )  # fmt: skip


_VERSION_COLUMNS = [c for c in columns(sm.ModelVersion) if c.key != "item_ids"]


# --------------------------------------------------------------------------- test split


def test_split_ids(s: Session, project_id: int) -> list[int]:
    """The project's held-out gold test items (empty when none was drawn yet)."""
    return list(
        s.scalars(select(sm.StudentTestItem.item_id).where(sm.StudentTestItem.project_id == project_id).order_by(sm.StudentTestItem.item_id))
    )


def test_split_digest(item_ids: Iterable[int]) -> str | None:
    """A short fingerprint of a test split: versions with the same one have comparable F1."""
    ids = sorted(set(item_ids))
    if not ids:
        return None
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]


def set_test_split(s: Session, project_id: int, item_ids: Sequence[int]) -> list[int]:
    """Store (replacing any earlier one) the project's test split; returns it sorted."""
    ids = sorted(set(int(i) for i in item_ids))
    known = set()
    for chunk in chunks(ids):
        known.update(s.scalars(select(orm.Item.id).where(orm.Item.project_id == project_id, orm.Item.id.in_(chunk))))
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFoundError(f"project {project_id} has no item(s) with id {', '.join(map(str, missing[:5]))}")
    s.execute(delete(sm.StudentTestItem).where(sm.StudentTestItem.project_id == project_id).execution_options(synchronize_session=False))
    now = utcnow()
    if ids:
        s.execute(insert(sm.StudentTestItem), [{"item_id": i, "project_id": project_id, "created_at": now} for i in ids])
    return ids


# --------------------------------------------------------------------------- model versions


def next_version_number(s: Session, project_id: int) -> int:
    return int(s.scalar(select(func.max(sm.ModelVersion.version)).where(sm.ModelVersion.project_id == project_id)) or 0) + 1


def add_model_version(
    s: Session,
    project_id: int,
    *,
    version: int,
    path: str,
    settings: Mapping[str, Any],
    item_ids: Mapping[str, Sequence[int]],
    metrics: Mapping[str, Any],
    job_id: int | None = None,
    test_f1: float | None = None,
    test_split: str | None = None,
    activate: bool = False,
) -> ModelVersionInfo:
    """Record a finished training run. Raises DuplicateError when ``version`` is taken (a
    concurrent run finished first: take the next number and try again)."""
    get_project(s, project_id)
    payload = {"settings": dict(settings), "item_ids": {k: list(v) for k, v in item_ids.items()}, "metrics": dict(metrics)}
    check_json(payload, f"model version {version}")
    ids = payload["item_ids"]
    row = sm.ModelVersion(
        project_id=project_id, version=version, job_id=job_id, settings=payload["settings"], item_ids=ids,
        metrics=payload["metrics"], n_gold=len(ids.get("train_gold", [])) + len(ids.get("dev", [])),
        n_silver=len(ids.get("train_silver", [])), n_test=len(ids.get("test", [])), test_f1=test_f1,
        test_split=test_split, path=path, active=False, created_at=utcnow(),
    )  # fmt: skip
    if s.scalar(select(sm.ModelVersion.id).where(sm.ModelVersion.project_id == project_id, sm.ModelVersion.version == version)):
        raise DuplicateError(f"project {project_id} already has a model version {version}")
    s.add(row)
    try:
        s.flush()
    except IntegrityError as exc:  # inserted concurrently; the caller's transaction must be rolled back
        raise DuplicateError(f"project {project_id} already has a model version {version}") from exc
    if activate:
        return activate_model_version(s, project_id, version)
    return get_model_version(s, project_id, version)


def list_model_versions(s: Session, project_id: int) -> list[ModelVersionInfo]:
    """All versions of the project's student, oldest first (item ids: model_version_item_ids)."""
    rows = s.execute(select(*_VERSION_COLUMNS).where(sm.ModelVersion.project_id == project_id).order_by(sm.ModelVersion.version))
    return [_version_info(r) for r in rows]


def get_model_version(s: Session, project_id: int, version: int) -> ModelVersionInfo:
    r = s.execute(
        select(*_VERSION_COLUMNS).where(sm.ModelVersion.project_id == project_id, sm.ModelVersion.version == version)
    ).first()
    if r is None:
        raise NotFoundError(f"project {project_id} has no model version {version}")
    return _version_info(r)


def active_model_version(s: Session, project_id: int) -> ModelVersionInfo | None:
    r = s.execute(select(*_VERSION_COLUMNS).where(sm.ModelVersion.project_id == project_id, sm.ModelVersion.active.is_(True))).first()
    return _version_info(r) if r is not None else None


def model_version_item_ids(s: Session, project_id: int, version: int) -> dict[str, list[int]]:
    """``{"train_gold", "train_silver", "dev", "test"}`` -> database item ids the version used."""
    ids = s.scalar(select(sm.ModelVersion.item_ids).where(sm.ModelVersion.project_id == project_id, sm.ModelVersion.version == version))
    if ids is None:
        raise NotFoundError(f"project {project_id} has no model version {version}")
    return {k: [int(i) for i in v] for k, v in ids.items()}


def activate_model_version(s: Session, project_id: int, version: int) -> ModelVersionInfo:
    """Make ``version`` the project's one active student (the others become inactive)."""
    get_model_version(s, project_id, version)
    try:
        s.execute(
            update(sm.ModelVersion)
            .where(sm.ModelVersion.project_id == project_id, sm.ModelVersion.active.is_(True), sm.ModelVersion.version != version)
            .values(active=False)
            .execution_options(synchronize_session=False)
        )
        s.execute(
            update(sm.ModelVersion)
            .where(sm.ModelVersion.project_id == project_id, sm.ModelVersion.version == version)
            .values(active=True)
            .execution_options(synchronize_session=False)
        )
    except IntegrityError as exc:  # another activation committed meanwhile (PostgreSQL); roll back and retry
        raise QueryError(f"project {project_id}: another version was activated at the same time; try again") from exc
    return get_model_version(s, project_id, version)


# --------------------------------------------------------------------------- predictions


def save_student_predictions(s: Session, project_id: int, source: str, rows: Sequence[PredictionRow], model_version: int) -> int:
    """Store the student's spans of these items as the ``source`` (``student:<version>``)
    target span set, with its uncertainty and disagreement in the set's settings; the
    student sets of other versions on these items are removed. Returns how many were stored.
    Raises QueryError (nothing written) for an item of another project or without a
    translation, SpanError for spans that do not fit the target sentence."""
    if not source.startswith(STUDENT_PREFIX):
        raise QueryError(f"student predictions are stored under {STUDENT_PREFIX}<version>, not {source!r}")
    ids = [r.item_id for r in rows]
    if len(set(ids)) != len(ids):
        raise QueryError("an item appears twice in one batch of predictions")
    sentences = {}
    for chunk in chunks(ids):
        for r in s.execute(
            select(orm.Item.id, orm.Item.external_id, orm.Item.target_text, orm.Item.target_tokens, orm.Item.target_lang).where(
                orm.Item.id.in_(chunk), orm.Item.project_id == project_id
            )
        ):
            if r.target_text is None:
                raise QueryError(f"item {r.external_id} has no translation to store student spans on")
            sentences[r.id] = (r.external_id, sentence_from_json(r.target_text, r.target_tokens or [], r.target_lang))
    missing = [i for i in ids if i not in sentences]
    if missing:
        raise NotFoundError(f"project {project_id} has no item(s) with id {', '.join(map(str, missing[:5]))}")
    now = utcnow()
    values = []
    for row in rows:
        ext_id, sentence = sentences[row.item_id]
        ordered = check_spans(sentence, [replace(sp, source=source) for sp in row.spans], f"item {ext_id} target {source}")
        settings = {
            "uncertainty": float(row.uncertainty),
            "entropy": float(row.entropy),
            "disagreement": None if row.disagreement is None else float(row.disagreement),
            "model_version": int(model_version),
        }
        values.append({"item_id": row.item_id, "side": "target", "source": source, "spans": spans_json(ordered, False),
                       "unprojected": None, "settings": settings, "created_at": now})  # fmt: skip
    for chunk in chunks(ids):
        s.execute(
            delete(orm.SpanSet)
            .where(orm.SpanSet.item_id.in_(chunk), orm.SpanSet.side == "target", orm.SpanSet.source.startswith(STUDENT_PREFIX, autoescape=True))
            .execution_options(synchronize_session=False)
        )
    if values:
        s.execute(insert(orm.SpanSet), values)
    return len(values)


def _student_rows(s: Session, project_id: int):  # noqa: ANN202
    return s.execute(
        select(orm.SpanSet.id, orm.SpanSet.item_id, orm.SpanSet.source, orm.SpanSet.settings, orm.SpanSet.created_at)
        .join(orm.Item, orm.Item.id == orm.SpanSet.item_id)
        .where(
            orm.Item.project_id == project_id,
            orm.SpanSet.side == "target",
            orm.SpanSet.source.startswith(STUDENT_PREFIX, autoescape=True),
        )
        .order_by(orm.SpanSet.created_at, orm.SpanSet.id)
    )


def student_scores(s: Session, project_id: int) -> dict[int, tuple[float | None, float | None]]:
    """item id -> (student uncertainty, student-vs-projection disagreement), both in [0, 1]
    and higher = more worth reviewing; None where unknown. Items the student has not
    predicted are absent."""
    out: dict[int, tuple[float | None, float | None]] = {}
    for r in _student_rows(s, project_id):  # oldest first: the newest set of an item wins
        settings = r.settings or {}
        out[r.item_id] = (settings.get("uncertainty"), settings.get("disagreement"))
    return out


def student_prediction_counts(s: Session, project_id: int) -> dict[str, int]:
    """``student:<version>`` -> how many items carry predictions of that version."""
    rows = s.execute(
        select(orm.SpanSet.source, func.count())
        .join(orm.Item, orm.Item.id == orm.SpanSet.item_id)
        .where(orm.Item.project_id == project_id, orm.SpanSet.side == "target", orm.SpanSet.source.startswith(STUDENT_PREFIX, autoescape=True))
        .group_by(orm.SpanSet.source)
    )
    return {source: int(n) for source, n in rows}
