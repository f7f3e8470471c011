"""Projects: create, read, settings, labels, counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.annotations.records import STATUSES
from db import models as orm
from db.codecs import utc
from db.errors import DuplicateError, NotFoundError, QueryError, check_json

__all__ = [
    "ProjectInfo",
    "ProjectSummary",
    "create_project",
    "get_project",
    "list_projects",
    "update_project_settings",
    "set_project_labels",
    "add_project_labels",
    "project_counts",
]


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: int
    name: str
    src_lang: str
    tgt_lang: str
    labels: tuple[str, ...]
    settings: dict[str, Any]
    created_at: datetime

    @property
    def direction(self) -> str:
        """translate-train (source sentences are labelled and translated) or translate-test
        (the items are target-language originals; the pivot is their translation)."""
        return str(self.settings.get("direction") or "translate-train")


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    id: int
    name: str
    src_lang: str
    tgt_lang: str
    labels: tuple[str, ...]
    n_items: int
    n_reviewed: int
    n_with_image: int
    n_target: int
    created_at: datetime
    direction: str = "translate-train"  # see ProjectInfo.direction


def _info(p: orm.Project) -> ProjectInfo:
    return ProjectInfo(p.id, p.name, p.src_lang, p.tgt_lang, tuple(p.labels or ()), dict(p.settings or {}), utc(p.created_at))


def _row(s: Session, project_id: int) -> orm.Project:
    p = s.get(orm.Project, project_id, populate_existing=True)
    if p is None:
        raise NotFoundError(f"no project with id {project_id}")
    return p


def _check_labels(labels: Sequence[str]) -> list[str]:
    out: list[str] = []
    for lab in labels:
        if not isinstance(lab, str) or not lab.strip() or lab != lab.strip():
            raise QueryError(f"invalid label {lab!r}: labels are non-empty strings without surrounding spaces")
        if lab in out:
            raise QueryError(f"label {lab!r} is listed twice")
        out.append(lab)
    return out


def create_project(
    s: Session,
    name: str,
    src_lang: str,
    tgt_lang: str,
    labels: Sequence[str],
    settings: Mapping[str, Any] | None = None,
) -> ProjectInfo:
    """A new project. Raises DuplicateError when the name is taken."""
    name = (name or "").strip()
    if not name:
        raise QueryError("a project needs a name")
    if not src_lang or not tgt_lang:
        raise QueryError(f"project {name!r} needs a source and a target language")
    label_list = _check_labels(labels)
    settings_dict = dict(settings or {})
    check_json(settings_dict, f"settings of project {name!r}")
    if s.scalar(select(orm.Project.id).where(orm.Project.name == name)) is not None:
        raise DuplicateError(f"a project named {name!r} already exists")
    p = orm.Project(name=name, src_lang=src_lang, tgt_lang=tgt_lang, labels=label_list, settings=settings_dict)
    s.add(p)
    try:
        s.flush()
    except IntegrityError as exc:  # created concurrently between the check and the insert
        raise DuplicateError(f"a project named {name!r} already exists") from exc
    return _info(p)


def get_project(s: Session, name_or_id: int | str) -> ProjectInfo:
    """A project by id (int) or name (str). Raises NotFoundError."""
    if isinstance(name_or_id, int):
        return _info(_row(s, name_or_id))
    p = s.scalars(select(orm.Project).where(orm.Project.name == name_or_id).execution_options(populate_existing=True)).first()
    if p is None:
        raise NotFoundError(f"no project named {name_or_id!r}")
    return _info(p)


def list_projects(s: Session) -> list[ProjectSummary]:
    """All projects with their item counts, in one query."""
    stmt = (
        select(
            orm.Project,
            func.count(orm.Item.id),
            func.coalesce(func.sum(case((orm.Item.status == "reviewed", 1), else_=0)), 0),
            func.count(orm.Item.image_id),
            func.count(orm.Item.target_text),
        )
        .outerjoin(orm.Item, orm.Item.project_id == orm.Project.id)
        .group_by(orm.Project.id)
        .order_by(orm.Project.name)
        .execution_options(populate_existing=True)
    )
    return [
        ProjectSummary(p.id, p.name, p.src_lang, p.tgt_lang, tuple(p.labels or ()), int(n), int(rev), int(img), int(tgt), utc(p.created_at),
                       str((p.settings or {}).get("direction") or "translate-train"))
        for p, n, rev, img, tgt in s.execute(stmt).all()
    ]


def update_project_settings(s: Session, project_id: int, changes: Mapping[str, Any], *, replace: bool = False) -> ProjectInfo:
    """Merge ``changes`` into the project's settings (top-level keys), or replace them all."""
    p = _row(s, project_id)
    new = dict(changes) if replace else {**(p.settings or {}), **changes}
    check_json(new, f"settings of project {p.name!r}")
    p.settings = new
    s.flush()
    return _info(p)


def set_project_labels(s: Session, project_id: int, labels: Sequence[str]) -> ProjectInfo:
    """Replace the label list (existing spans are not rewritten)."""
    p = _row(s, project_id)
    p.labels = _check_labels(labels)
    s.flush()
    return _info(p)


def add_project_labels(s: Session, project_id: int, labels: Sequence[str]) -> tuple[str, ...]:
    """Append the labels the project does not list yet (in the given order); returns them."""
    p = _row(s, project_id)
    have = list(p.labels or [])
    new = [lab for lab in dict.fromkeys(labels) if lab not in have]
    if new:
        p.labels = _check_labels([*have, *new])
        s.flush()
    return tuple(new)


def project_counts(s: Session, project_id: int) -> dict[str, int]:
    """{"total", one key per status, "with_image", "with_target"} for the project."""
    counts = {"total": 0, **{st: 0 for st in STATUSES}, "with_image": 0, "with_target": 0}
    for st, n in s.execute(
        select(orm.Item.status, func.count()).where(orm.Item.project_id == project_id).group_by(orm.Item.status)
    ).all():
        counts[st] = int(n)
        counts["total"] += int(n)
    img, tgt = s.execute(
        select(func.count(orm.Item.image_id), func.count(orm.Item.target_text)).where(orm.Item.project_id == project_id)
    ).one()
    counts["with_image"], counts["with_target"] = int(img), int(tgt)
    return counts
