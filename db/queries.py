"""All database reads and writes of LabelBridge, as typed functions taking a Session first.

Functions return core.data objects or small frozen dataclasses defined here, never ORM
objects, so pages and pipeline code cannot trigger lazy loads or write by accident. They
never commit: the caller's ``db.engine.session_scope`` makes one call (or several) one
transaction, so an import or an edit is all-or-nothing.

Current spans of one side of an item (what the review page shows and export writes):

1. the state left by the human edit log of that side, if any edit exists and it has not
   been undone back to "no human edit" (undo/redo are replayed from the append-only log);
2. else the ``gold`` span set of that side;
3. else the newest imported ``human:<user>`` span set;
4. else the newest ``projection:*`` set, else the newest other machine set (teacher, ...),
   else the newest ``student:*`` set, newest by creation time (a re-run of a stage
   replaces its set and makes it the newest). Student predictions are a second opinion
   shown beside the projection (queue order, disagreement), not the default suggestion.

An empty list is a real answer ("no entities"); only the absence of any set falls through.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.config import settings as app_settings
from core.data import Item, Link, Sentence, Span, SpanError, Token, check_spans
from core.media import ImageError, store_image
from db import models as orm
from db.models import ITEM_STATUSES, JOB_FINAL_STATUSES, JOB_STATUSES, SIDES, SPAN_ACTIONS, USER_ROLES, utcnow

_CHUNK = 500  # ids per IN (...) query: well below every database's parameter limit


# --------------------------------------------------------------------------- errors


class QueryError(ValueError):
    """A request the database layer refuses (bad value, unknown name, wrong state)."""


class NotFoundError(QueryError, LookupError):
    """No project/item/user/job with that name or id."""


class DuplicateError(QueryError):
    """A unique name (project, user) that already exists."""


class ConflictError(QueryError):
    """The item changed since the caller loaded it (stale ``base_version``).

    Carries what is there now so the UI can show it and let the person redo the change
    on top of it; nothing was written.
    """

    def __init__(self, item_id: int, current_version: int, current_spans: list[Span] | None, side: str | None):
        super().__init__(
            f"item {item_id} was changed by someone else (now version {current_version}); reload it and apply the change again"
        )
        self.item_id = item_id
        self.current_version = current_version
        self.current_spans = current_spans
        self.side = side


class NothingToUndoError(QueryError):
    """Undo (or redo) with an empty history for that side."""


class ItemImportError(QueryError):
    """An import refused as a whole; ``errors`` names every bad item (by position and id)."""

    def __init__(self, errors: list[str]):
        shown = "; ".join(errors[:5]) + (f"; ... and {len(errors) - 5} more" if len(errors) > 5 else "")
        super().__init__(f"import refused, nothing was stored: {shown}")
        self.errors = errors


class JobCancelledError(QueryError):
    """The job was cancelled; the worker should stop."""


# --------------------------------------------------------------------------- result types


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: int
    name: str
    src_lang: str
    tgt_lang: str
    labels: tuple[str, ...]
    settings: dict[str, Any]
    created_at: datetime


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


@dataclass(frozen=True, slots=True)
class ImportReport:
    added: int
    skipped_duplicates: tuple[str, ...]  # external ids already in the project or repeated in the input
    images_stored: int  # images referenced by the added items (new or already in the store)
    new_labels: tuple[str, ...]  # labels found in the spans and appended to the project's labels


@dataclass(frozen=True, slots=True)
class StageState:
    status: str  # done / failed
    error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One item as the review page and the pipeline see it."""

    id: int
    project_id: int
    external_id: str
    position: int
    status: str
    version: int
    flag_comment: str | None
    item: Item  # current source/target spans, image = absolute path string or None
    span_sets: dict[tuple[str, str], list[Span]]  # (side, source) -> spans
    unprojected: dict[str, list[Span]]  # target span set source -> source-side spans it could not project
    alignments: dict[str, list[Link]]  # aligner -> links
    image_path: Path | None
    current_source: dict[str, str | None]  # side -> "human:<user>", "gold", "projection:x", ... or None
    can_undo: dict[str, bool]  # side -> bool
    can_redo: dict[str, bool]
    stages: dict[str, StageState]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ItemRow:
    """A light row for item lists (no tokens, no spans)."""

    id: int
    external_id: str
    position: int
    status: str
    version: int
    source_text: str
    target_text: str | None
    has_image: bool
    flag_comment: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ItemPage:
    rows: tuple[ItemRow, ...]
    total: int  # rows matching the filters, for paging


@dataclass(frozen=True, slots=True)
class EditRecord:
    id: int
    item_id: int
    user: str
    side: str | None  # None for status actions
    action: str  # edit accept reject undo redo skip flag status
    before: Any  # span actions: list[Span] or None (= no human edit); status actions: {"status", "flag_comment"}
    after: Any
    base_version: int
    comment: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    role: str
    has_password: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: int
    project_id: int | None
    kind: str
    status: str
    progress: float
    done: int
    total: int | None
    message: str | None
    error: str | None
    params: dict[str, Any]
    result: Any
    pid: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


# --------------------------------------------------------------------------- codecs


def _utc(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every timestamp is written in UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _span_json(span: Span, with_source: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "start": span.start,
        "end": span.end,
        "label": span.label,
        "char_start": span.char_start,
        "char_end": span.char_end,
        "confidence": span.confidence,
    }
    if with_source:
        d["source"] = span.source
    return d


def _span_from_json(d: Mapping[str, Any], default_source: str) -> Span:
    return Span(
        int(d["start"]),
        int(d["end"]),
        str(d["label"]),
        int(d["char_start"]),
        int(d["char_end"]),
        str(d.get("source") or default_source),
        None if d.get("confidence") is None else float(d["confidence"]),
    )


def _spans_json(spans: Iterable[Span], with_source: bool) -> list[dict[str, Any]]:
    return [_span_json(s, with_source) for s in spans]


def _spans_from_json(data: Iterable[Mapping[str, Any]] | None, default_source: str) -> list[Span]:
    return [_span_from_json(d, default_source) for d in (data or [])]


def _tokens_json(sentence: Sentence) -> list[list[Any]]:
    return [[t.text, t.start, t.end] for t in sentence.tokens]


def _sentence(text: str, tokens: Iterable[Sequence[Any]], lang: str | None) -> Sentence:
    return Sentence(text, [Token(str(t[0]), int(t[1]), int(t[2])) for t in tokens], lang)


def _links_json(links: Iterable[Link]) -> list[list[Any]]:
    return [[ln.src, ln.tgt, ln.score] for ln in links]


def _links_from_json(data: Iterable[Sequence[Any]]) -> list[Link]:
    return [Link(int(a), int(b), float(c)) for a, b, c in data]


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"{what} is not JSON-serializable: {exc}") from exc


def _chunks(seq: Sequence[int], n: int = _CHUNK) -> Iterator[Sequence[int]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _check_choice(value: str | None, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise QueryError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
    return value  # type: ignore[return-value]


def _check_user(user: str) -> str:
    if not isinstance(user, str) or not user.strip():
        raise QueryError("a user name is required for every edit")
    return user.strip()


# --------------------------------------------------------------------------- projects


def _project_info(p: orm.Project) -> ProjectInfo:
    return ProjectInfo(p.id, p.name, p.src_lang, p.tgt_lang, tuple(p.labels or ()), dict(p.settings or {}), _utc(p.created_at))


def _project_row(s: Session, project_id: int) -> orm.Project:
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
    _check_json(settings_dict, f"settings of project {name!r}")
    if s.scalar(select(orm.Project.id).where(orm.Project.name == name)) is not None:
        raise DuplicateError(f"a project named {name!r} already exists")
    p = orm.Project(name=name, src_lang=src_lang, tgt_lang=tgt_lang, labels=label_list, settings=settings_dict)
    s.add(p)
    try:
        s.flush()
    except IntegrityError as exc:  # created concurrently between the check and the insert
        raise DuplicateError(f"a project named {name!r} already exists") from exc
    return _project_info(p)


def get_project(s: Session, name_or_id: int | str) -> ProjectInfo:
    """A project by id (int) or name (str). Raises NotFoundError."""
    if isinstance(name_or_id, int):
        return _project_info(_project_row(s, name_or_id))
    p = s.scalars(select(orm.Project).where(orm.Project.name == name_or_id).execution_options(populate_existing=True)).first()
    if p is None:
        raise NotFoundError(f"no project named {name_or_id!r}")
    return _project_info(p)


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
        ProjectSummary(
            p.id, p.name, p.src_lang, p.tgt_lang, tuple(p.labels or ()), int(n), int(rev), int(img), int(tgt), _utc(p.created_at)
        )
        for p, n, rev, img, tgt in s.execute(stmt).all()
    ]


def update_project_settings(
    s: Session, project_id: int, changes: Mapping[str, Any], *, replace: bool = False
) -> ProjectInfo:
    """Merge ``changes`` into the project's settings (top-level keys), or replace them all."""
    p = _project_row(s, project_id)
    new = dict(changes) if replace else {**(p.settings or {}), **changes}
    _check_json(new, f"settings of project {p.name!r}")
    p.settings = new
    s.flush()
    return _project_info(p)


def set_project_labels(s: Session, project_id: int, labels: Sequence[str]) -> ProjectInfo:
    """Replace the label list (existing spans are not rewritten)."""
    p = _project_row(s, project_id)
    p.labels = _check_labels(labels)
    s.flush()
    return _project_info(p)


# --------------------------------------------------------------------------- import


_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def _resolve_image(ref: str, image_root: Path | None) -> Path | str:
    """A file path for an item's image reference, or the sha256 of an image already stored."""
    m = _SHA256.match(ref.strip().lower())
    if m:
        return m.group(1)
    if "://" in ref:
        raise ImageError(f"{ref}: image URLs are not fetched; download the image and import the file")
    path = Path(ref).expanduser()
    if not path.is_absolute():
        if image_root is None:
            raise ImageError(f"{ref}: relative image path but no image folder was given")
        path = Path(image_root) / path
    return path


def import_items(
    s: Session,
    project_id: int,
    items: Iterable[Item],
    media_dir: Path | None = None,
    image_root: Path | None = None,
    span_source: str | None = "gold",
    target_span_source: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Add items to a project, all or nothing.

    Every item is validated first (``Item.validate``, id, meta, image); when any is bad,
    ItemImportError lists them all (by position and id) and nothing is stored (images
    written by this call are removed again). Items whose id is already in the project, or
    repeated in the input, are skipped and reported.

    Spans are stored as span sets grouped by their own ``Span.source``. ``span_source``
    (default "gold") says the source side of these items is labelled by that source: its
    set is recorded even when an item has no entities, so "no entities" is not mistaken
    for "not labelled yet". ``target_span_source`` does the same for the target side.
    Pass None for unlabelled data. The alignment is stored under
    ``item.meta.get("aligner", "import")``. Labels not yet in the project are appended.
    ``on_progress(done, total)`` is called while items are written (e.g. a tqdm or job update).
    """
    project = _project_row(s, project_id)
    media_dir = Path(media_dir) if media_dir is not None else app_settings().media_dir
    batch = list(items)
    errors: list[str] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    fresh: list[tuple[int, Item]] = []

    existing: set[str] = set()
    ids = [it.id for it in batch if isinstance(getattr(it, "id", None), str)]
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        existing.update(
            s.scalars(select(orm.Item.external_id).where(orm.Item.project_id == project.id, orm.Item.external_id.in_(chunk)))
        )

    for pos, it in enumerate(batch):
        where = f"position {pos} (id {getattr(it, 'id', None)!r})"
        if not isinstance(it, Item):
            errors.append(f"{where}: not an Item but {type(it).__name__}")
            continue
        if not isinstance(it.id, str) or not it.id.strip() or len(it.id) > 200:
            errors.append(f"{where}: item id must be a non-empty string of at most 200 characters")
            continue
        try:
            it.validate()
            _check_json(it.meta, f"item {it.id} meta")
        except (SpanError, QueryError) as exc:
            errors.append(f"position {pos}: {exc}")
            continue
        if it.id in existing or it.id in seen:
            duplicates.append(it.id)
            continue
        seen.add(it.id)
        fresh.append((pos, it))

    if errors:
        raise ItemImportError(errors)

    # Images: validate and store (content-addressed); remember new files to undo on failure.
    created_files: list[Path] = []
    image_rows: dict[int, orm.Image] = {}  # position -> image row (new or already stored)
    new_images: list[orm.Image] = []  # added to the session only once every item passed
    try:
        by_sha: dict[str, orm.Image] = {}
        for pos, it in fresh:
            if not it.image:
                continue
            try:
                ref = _resolve_image(it.image, image_root)
                if isinstance(ref, str):
                    row = by_sha.get(ref) or s.scalars(select(orm.Image).where(orm.Image.sha256 == ref)).first()
                    if row is None:
                        raise ImageError(f"{it.image}: no stored image with that sha256")
                else:
                    info = store_image(ref, media_dir)
                    if info.created:
                        created_files.append(media_dir / info.path)
                    row = by_sha.get(info.sha256) or s.scalars(select(orm.Image).where(orm.Image.sha256 == info.sha256)).first()
                    if row is None:
                        row = orm.Image(
                            sha256=info.sha256,
                            path=info.path,
                            format=info.format,
                            width=info.width,
                            height=info.height,
                            size_bytes=info.size_bytes,
                        )
                        new_images.append(row)
            except ImageError as exc:
                errors.append(f"position {pos} (id {it.id!r}): image {exc}")
                continue
            by_sha[row.sha256] = row
            image_rows[pos] = row
        if errors:
            raise ItemImportError(errors)
        s.add_all(new_images)
        s.flush()

        labels = list(project.labels or [])
        new_labels: list[str] = []
        for _, it in fresh:
            for sp in (*it.source_spans, *it.target_spans):
                if sp.label not in labels:
                    labels.append(sp.label)
                    new_labels.append(sp.label)
        if new_labels:
            project.labels = labels

        last = s.scalar(select(func.max(orm.Item.position)).where(orm.Item.project_id == project.id))
        next_pos = 0 if last is None else last + 1
        now = utcnow()
        # Bulk INSERT ... RETURNING (no ORM object per row): 100,000 items import in one call.
        item_rows = [
            {
                "project_id": project.id,
                "external_id": it.id,
                "position": next_pos + k,
                "source_text": it.source.text,
                "source_tokens": _tokens_json(it.source),
                "source_lang": it.source.lang or project.src_lang,
                "target_text": it.target.text if it.target is not None else None,
                "target_tokens": _tokens_json(it.target) if it.target is not None else None,
                "target_lang": (it.target.lang or project.tgt_lang) if it.target is not None else None,
                "image_id": image_rows[pos].id if pos in image_rows else None,
                "meta": dict(it.meta),
                "status": "new",
                "flag_comment": None,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for k, (pos, it) in enumerate(fresh)
        ]
        new_ids: list[int] = []
        for i in range(0, len(item_rows), _CHUNK):
            new_ids.extend(
                s.scalars(
                    insert(orm.Item).returning(orm.Item.id, sort_by_parameter_order=True),
                    item_rows[i : i + _CHUNK],
                )
            )
            if on_progress is not None:
                on_progress(len(new_ids), len(item_rows))
        set_rows: list[dict[str, Any]] = []
        align_rows: list[dict[str, Any]] = []
        for item_id, (_, it) in zip(new_ids, fresh):
            for side, spans, declared in (
                ("source", it.source_spans, span_source),
                ("target", it.target_spans, target_span_source if it.target is not None else None),
            ):
                groups: dict[str, list[Span]] = defaultdict(list)
                if declared:
                    groups[declared] = []
                for sp in spans:
                    groups[sp.source].append(sp)
                for source, group in groups.items():
                    set_rows.append(
                        {
                            "item_id": item_id,
                            "side": side,
                            "source": source,
                            "spans": _spans_json(sorted(group, key=lambda x: x.start), False),
                            "unprojected": None,
                            "settings": None,
                            "created_at": now,
                        }
                    )
            if it.alignment:
                align_rows.append(
                    {
                        "item_id": item_id,
                        "aligner": str(it.meta.get("aligner", "import")),
                        "links": _links_json(it.alignment),
                        "created_at": now,
                    }
                )
        for table, values in ((orm.SpanSet, set_rows), (orm.Alignment, align_rows)):
            for i in range(0, len(values), _CHUNK * 4):
                s.execute(insert(table), values[i : i + _CHUNK * 4])
    except BaseException as exc:
        for path in created_files:
            path.unlink(missing_ok=True)
        if isinstance(exc, IntegrityError):
            raise ItemImportError([f"the project changed during the import ({exc.orig}); run it again"]) from exc
        raise
    return ImportReport(len(new_ids), tuple(duplicates), len(image_rows), tuple(new_labels))


# --------------------------------------------------------------------------- loading items


@dataclass(slots=True)
class _SideState:
    """The human state of one side, replayed from the edit log."""

    spans: list[dict[str, Any]] | None = None  # None = no human edit in effect
    user: str | None = None
    undo: list[tuple[list[dict[str, Any]] | None, str | None]] = field(default_factory=list)
    redo: list[tuple[list[dict[str, Any]] | None, str | None]] = field(default_factory=list)


def _replay(edits: Iterable[Any]) -> _SideState:
    """Undo/redo stacks from the log: an edit pushes the old state and clears redo, undo
    and redo move one state between the stacks (so history stays append-only)."""
    st = _SideState()
    for e in edits:
        if e.action in SPAN_ACTIONS:
            st.undo.append((st.spans, st.user))
            st.spans, st.user = e.after, e.user_name
            st.redo.clear()
        elif e.action == "undo" and st.undo:
            st.redo.append((st.spans, st.user))
            st.spans, st.user = st.undo.pop()
        elif e.action == "redo" and st.redo:
            st.undo.append((st.spans, st.user))
            st.spans, st.user = st.redo.pop()
    return st


def _machine_choice(sets: Sequence[Any]) -> Any:
    """Rules 2-4 of the module docstring."""
    for s_ in sets:
        if s_.source == "gold":
            return s_
    key = lambda r: (_utc(r.created_at), r.id)  # noqa: E731
    for prefix_rank in (
        lambda src: src.startswith("human:"),
        lambda src: src.startswith("projection:"),
        lambda src: not src.startswith("student:"),
        lambda src: True,
    ):
        ranked = [r for r in sets if prefix_rank(r.source)]
        if ranked:
            return max(ranked, key=key)
    return None


def _current(
    state: _SideState, sets: Sequence[Any], decoded: Mapping[tuple[str, str], list[Span]] | None = None
) -> tuple[list[Span], str | None]:
    """Current spans of one side and where they come from (rules of the module docstring)."""
    if state.spans is not None:
        return _spans_from_json(state.spans, f"human:{state.user}"), f"human:{state.user}"
    chosen = _machine_choice(sets)
    if chosen is None:
        return [], None
    if decoded is not None:
        return list(decoded[(chosen.side, chosen.source)]), chosen.source
    return _spans_from_json(chosen.spans, chosen.source), chosen.source


def _columns(model: type[orm.Base]) -> list[Any]:
    """All mapped columns of a model, for selecting plain rows with attribute access."""
    return [getattr(model, c.key) for c in model.__table__.columns]


def _load_records(s: Session, item_ids: Sequence[int], media_dir: Path) -> list[ItemRecord]:
    """Items with everything attached, in the order of ``item_ids``: five queries per chunk."""
    records: dict[int, ItemRecord] = {}
    for chunk in _chunks(list(item_ids)):
        # Plain rows (not ORM objects): cheaper, and never stale from the identity map.
        items = s.execute(
            select(*_columns(orm.Item), orm.Image.path.label("image_rel"))
            .outerjoin(orm.Image, orm.Image.id == orm.Item.image_id)
            .where(orm.Item.id.in_(chunk))
        ).all()
        sets: dict[int, list[Any]] = defaultdict(list)
        for r in s.execute(select(*_columns(orm.SpanSet)).where(orm.SpanSet.item_id.in_(chunk))):
            sets[r.item_id].append(r)
        aligns: dict[int, list[Any]] = defaultdict(list)
        for r in s.execute(select(*_columns(orm.Alignment)).where(orm.Alignment.item_id.in_(chunk))):
            aligns[r.item_id].append(r)
        edits: dict[tuple[int, str], list[Any]] = defaultdict(list)
        for r in s.execute(
            select(orm.Edit.id, orm.Edit.item_id, orm.Edit.side, orm.Edit.action, orm.Edit.after, orm.Edit.user_name)
            .where(orm.Edit.item_id.in_(chunk), orm.Edit.side.is_not(None))
            .order_by(orm.Edit.item_id, orm.Edit.id)
        ):
            edits[(r.item_id, r.side)].append(r)
        stages: dict[int, dict[str, StageState]] = defaultdict(dict)
        for r in s.execute(select(*_columns(orm.ItemStage)).where(orm.ItemStage.item_id.in_(chunk))):
            stages[r.item_id][r.stage] = StageState(r.status, r.error, _utc(r.updated_at))

        for row in items:
            image_rel = row.image_rel
            source = _sentence(row.source_text, row.source_tokens, row.source_lang)
            target = (
                _sentence(row.target_text, row.target_tokens or [], row.target_lang) if row.target_text is not None else None
            )
            item_sets = sets.get(row.id, [])
            decoded = {(r.side, r.source): _spans_from_json(r.spans, r.source) for r in item_sets}
            current: dict[str, list[Span]] = {}
            current_source: dict[str, str | None] = {}
            can_undo: dict[str, bool] = {}
            can_redo: dict[str, bool] = {}
            for side in SIDES:
                state = _replay(edits.get((row.id, side), []))
                side_sets = [r for r in item_sets if r.side == side]
                current[side], current_source[side] = _current(state, side_sets, decoded)
                can_undo[side] = bool(state.undo)
                can_redo[side] = bool(state.redo)
            align_rows = sorted(aligns.get(row.id, []), key=lambda r: (_utc(r.created_at), r.id))
            image_path = (media_dir / image_rel) if image_rel else None
            item = Item(
                id=row.external_id,
                source=source,
                source_spans=current["source"],
                target=target,
                target_spans=current["target"] if target is not None else [],
                image=str(image_path) if image_path else None,
                meta=dict(row.meta or {}),
                alignment=_links_from_json(align_rows[-1].links) if align_rows else [],
            )
            records[row.id] = ItemRecord(
                id=row.id,
                project_id=row.project_id,
                external_id=row.external_id,
                position=row.position,
                status=row.status,
                version=row.version,
                flag_comment=row.flag_comment,
                item=item,
                span_sets=decoded,
                unprojected={r.source: _spans_from_json(r.unprojected, "gold") for r in item_sets if r.unprojected is not None},
                alignments={r.aligner: _links_from_json(r.links) for r in align_rows},
                image_path=image_path,
                current_source=current_source,
                can_undo=can_undo,
                can_redo=can_redo,
                stages=dict(stages.get(row.id, {})),
                updated_at=_utc(row.updated_at),
            )
    return [records[i] for i in item_ids if i in records]


def load_items(s: Session, item_ids: Sequence[int], media_dir: Path | None = None) -> list[ItemRecord]:
    """Several items at once (no N+1), in the given order; unknown ids are left out."""
    return _load_records(s, list(item_ids), Path(media_dir) if media_dir is not None else app_settings().media_dir)


def load_item(s: Session, item_id: int, media_dir: Path | None = None) -> ItemRecord:
    """One item with its current spans, all span sets, alignments, image and stages."""
    found = load_items(s, [item_id], media_dir)
    if not found:
        raise NotFoundError(f"no item with id {item_id}")
    return found[0]


# --------------------------------------------------------------------------- human edits


def _item_for_update(s: Session, item_id: int) -> orm.Item:
    row = s.get(orm.Item, item_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"no item with id {item_id}")
    return row


def _side_state(s: Session, item_id: int, side: str) -> tuple[_SideState, list[Any]]:
    edits = s.execute(
        select(orm.Edit.action, orm.Edit.after, orm.Edit.user_name)
        .where(orm.Edit.item_id == item_id, orm.Edit.side == side)
        .order_by(orm.Edit.id)
    )
    sets = list(s.execute(select(*_columns(orm.SpanSet)).where(orm.SpanSet.item_id == item_id, orm.SpanSet.side == side)))
    return _replay(edits), sets


def _conflict(s: Session, row: orm.Item, side: str | None) -> ConflictError:
    spans = None
    if side is not None:
        state, sets = _side_state(s, row.id, side)
        spans = _current(state, sets)[0]
    return ConflictError(row.id, row.version, spans, side)


def _side_sentence(row: orm.Item, side: str) -> Sentence:
    if side == "source":
        return _sentence(row.source_text, row.source_tokens, row.source_lang)
    if row.target_text is None:
        raise QueryError(f"item {row.external_id} has no target sentence yet")
    return _sentence(row.target_text, row.target_tokens or [], row.target_lang)


def _write(s: Session, row: orm.Item, side: str | None, edit: orm.Edit) -> int:
    """Bump the item version (compare-and-set on the loaded version) and append the edit."""
    row.updated_at = utcnow()
    s.add(edit)
    try:
        s.flush()
    except StaleDataError:
        s.rollback()  # the failed flush left the transaction unusable; nothing was written
        raise _conflict(s, _item_for_update(s, row.id), side) from None
    return row.version


def save_edit(
    s: Session,
    item_id: int,
    side: str,
    spans: Sequence[Span],
    user: str,
    base_version: int,
    action: str = "edit",
    comment: str | None = None,
) -> int:
    """Set the spans of one side as a human decision; return the item's new version.

    The spans are stored as given (their ``source`` keeps the provenance: a span the person
    drew is ``human:<user>``, an accepted projected span may keep ``projection:x``). Raises
    ConflictError when ``base_version`` is not the item's version (nothing is overwritten),
    SpanError for spans that do not fit the sentence, QueryError for a label outside the
    project's labels. ``edit`` and ``accept`` mark the item reviewed.
    """
    _check_choice(side, SIDES, "side")
    _check_choice(action, SPAN_ACTIONS, "span action")
    user = _check_user(user)
    row = _item_for_update(s, item_id)
    if row.version != base_version:
        raise _conflict(s, row, side)
    ordered = check_spans(_side_sentence(row, side), spans, f"item {row.external_id} {side}")
    labels = set(s.scalar(select(orm.Project.labels).where(orm.Project.id == row.project_id)) or [])
    unknown = sorted({sp.label for sp in ordered} - labels)
    if labels and unknown:
        raise QueryError(f"item {row.external_id} {side}: label(s) {', '.join(unknown)} not in the project's labels")
    state, sets = _side_state(s, item_id, side)
    before = _spans_json(_current(state, sets)[0], True)
    if action in ("edit", "accept"):
        row.status = "reviewed"
    edit = orm.Edit(
        item_id=item_id,
        user_name=user,
        side=side,
        action=action,
        before=before,
        after=_spans_json(ordered, True),
        base_version=base_version,
        comment=comment,
    )
    return _write(s, row, side, edit)


def _move(s: Session, item_id: int, side: str, user: str, base_version: int | None, action: str) -> int:
    _check_choice(side, SIDES, "side")
    user = _check_user(user)
    row = _item_for_update(s, item_id)
    if base_version is not None and row.version != base_version:
        raise _conflict(s, row, side)
    state, sets = _side_state(s, item_id, side)
    stack = state.undo if action == "undo" else state.redo
    if not stack:
        raise NothingToUndoError(f"item {row.external_id} {side}: nothing to {action}")
    before = _spans_json(_current(state, sets)[0], True)
    restored = stack[-1][0]
    edit = orm.Edit(
        item_id=item_id,
        user_name=user,
        side=side,
        action=action,
        before=before,
        after=restored,
        base_version=row.version,
    )
    return _write(s, row, side, edit)


def undo(s: Session, item_id: int, side: str, user: str, base_version: int | None = None) -> int:
    """Go back one human edit of that side (appends an ``undo`` row); return the new version.

    Undoing the first edit returns the side to its machine/gold spans. Works across sessions
    and reloads because the stacks are replayed from the log. The item status is unchanged.
    Raises NothingToUndoError, or ConflictError when ``base_version`` is given and stale.
    """
    return _move(s, item_id, side, user, base_version, "undo")


def redo(s: Session, item_id: int, side: str, user: str, base_version: int | None = None) -> int:
    """Re-apply the last undone edit of that side (appends a ``redo`` row); see ``undo``."""
    return _move(s, item_id, side, user, base_version, "redo")


_STATUS_ACTIONS = {"skipped": "skip", "flagged": "flag"}


def set_status(
    s: Session,
    item_id: int,
    status: str,
    user: str,
    comment: str | None = None,
    base_version: int | None = None,
) -> int:
    """Set the review status (logged as skip/flag/status); return the new version.

    ``comment`` becomes the flag comment when flagging; other statuses clear it.
    """
    _check_choice(status, ITEM_STATUSES, "status")
    user = _check_user(user)
    row = _item_for_update(s, item_id)
    if base_version is not None and row.version != base_version:
        raise _conflict(s, row, None)
    new_comment = comment if status == "flagged" else None
    edit = orm.Edit(
        item_id=item_id,
        user_name=user,
        side=None,
        action=_STATUS_ACTIONS.get(status, "status"),
        before={"status": row.status, "flag_comment": row.flag_comment},
        after={"status": status, "flag_comment": new_comment},
        base_version=row.version,
        comment=comment,
    )
    row.status = status
    row.flag_comment = new_comment
    return _write(s, row, None, edit)


def _edit_record(e: orm.Edit) -> EditRecord:
    def decode(value: Any) -> Any:
        if e.side is None or value is None:
            return value
        return _spans_from_json(value, f"human:{e.user_name}")

    return EditRecord(
        e.id, e.item_id, e.user_name, e.side, e.action, decode(e.before), decode(e.after), e.base_version, e.comment, _utc(e.created_at)
    )


def history(s: Session, item_id: int) -> list[EditRecord]:
    """The item's edit log, oldest first."""
    return [_edit_record(e) for e in s.scalars(select(orm.Edit).where(orm.Edit.item_id == item_id).order_by(orm.Edit.id))]


# --------------------------------------------------------------------------- navigation and lists


def _status_filter(stmt, status: str | Sequence[str] | None):  # noqa: ANN001, ANN202
    if status is None:
        return stmt
    statuses = [status] if isinstance(status, str) else list(status)
    for st in statuses:
        _check_choice(st, ITEM_STATUSES, "status")
    return stmt.where(orm.Item.status == statuses[0]) if len(statuses) == 1 else stmt.where(orm.Item.status.in_(statuses))


def item_ids(s: Session, project_id: int, status: str | Sequence[str] | None = None) -> list[int]:
    """Ids of the project's items in original order, optionally of some statuses."""
    stmt = select(orm.Item.id).where(orm.Item.project_id == project_id).order_by(orm.Item.position)
    return list(s.scalars(_status_filter(stmt, status)))


def next_item_id(
    s: Session, project_id: int, after_position: int | None = None, status: str | Sequence[str] | None = None
) -> int | None:
    """The first item after ``after_position`` (from the start when None), or None at the end."""
    stmt = select(orm.Item.id).where(orm.Item.project_id == project_id)
    if after_position is not None:
        stmt = stmt.where(orm.Item.position > after_position)
    return s.scalar(_status_filter(stmt, status).order_by(orm.Item.position).limit(1))


def prev_item_id(
    s: Session, project_id: int, before_position: int, status: str | Sequence[str] | None = None
) -> int | None:
    """The last item before ``before_position``, or None at the start."""
    stmt = select(orm.Item.id).where(orm.Item.project_id == project_id, orm.Item.position < before_position)
    return s.scalar(_status_filter(stmt, status).order_by(orm.Item.position.desc()).limit(1))


def list_items(
    s: Session,
    project_id: int,
    status: str | Sequence[str] | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ItemPage:
    """One page of light rows in original order; ``search`` matches id, source or target text
    (case-insensitive substring, % and _ taken literally)."""
    stmt = _status_filter(select(orm.Item.id).where(orm.Item.project_id == project_id), status)
    if search:
        stmt = stmt.where(
            or_(
                orm.Item.external_id.icontains(search, autoescape=True),
                orm.Item.source_text.icontains(search, autoescape=True),
                orm.Item.target_text.icontains(search, autoescape=True),
            )
        )
    total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    cols = stmt.with_only_columns(
        orm.Item.id,
        orm.Item.external_id,
        orm.Item.position,
        orm.Item.status,
        orm.Item.version,
        orm.Item.source_text,
        orm.Item.target_text,
        orm.Item.image_id,
        orm.Item.flag_comment,
        orm.Item.updated_at,
    )
    rows = s.execute(cols.order_by(orm.Item.position).limit(max(0, limit)).offset(max(0, offset))).all()
    return ItemPage(
        tuple(ItemRow(r.id, r.external_id, r.position, r.status, r.version, r.source_text, r.target_text, r.image_id is not None, r.flag_comment, _utc(r.updated_at)) for r in rows),
        int(total),
    )


def project_counts(s: Session, project_id: int) -> dict[str, int]:
    """{"total", one key per status, "with_image", "with_target"} for the project."""
    counts = {"total": 0, **{st: 0 for st in ITEM_STATUSES}, "with_image": 0, "with_target": 0}
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


def iter_export_items(
    s: Session,
    project_id: int,
    reviewed_only: bool = False,
    media_dir: Path | None = None,
    batch_size: int = _CHUNK,
) -> Iterator[Item]:
    """Like export_items, but yields items batch by batch: a 100,000-item export is written
    as it is read (and can show progress) instead of being held in memory at once."""
    _project_row(s, project_id)
    media = Path(media_dir) if media_dir is not None else app_settings().media_dir
    ids = item_ids(s, project_id, "reviewed" if reviewed_only else None)
    for i in range(0, len(ids), batch_size):
        for record in _load_records(s, ids[i : i + batch_size], media):
            yield record.item


def export_items(
    s: Session, project_id: int, reviewed_only: bool = False, media_dir: Path | None = None
) -> list[Item]:
    """The project's items in original order with their current spans (module docstring)."""
    return list(iter_export_items(s, project_id, reviewed_only, media_dir))


def count_export_items(s: Session, project_id: int, reviewed_only: bool = False) -> int:
    """How many items an export writes (for a progress bar total)."""
    stmt = select(func.count()).select_from(orm.Item).where(orm.Item.project_id == project_id)
    if reviewed_only:
        stmt = stmt.where(orm.Item.status == "reviewed")
    return int(s.scalar(stmt) or 0)


# --------------------------------------------------------------------------- pipeline results


def _upsert_span_set(
    s: Session,
    existing: dict[tuple[int, str, str], orm.SpanSet],
    item_id: int,
    side: str,
    source: str,
    spans: Sequence[Span],
    unprojected: Sequence[Span] | None,
    settings: Mapping[str, Any] | None,
) -> None:
    now = utcnow()
    spans_json = _spans_json(spans, False)
    unproj = _spans_json(unprojected, True) if unprojected is not None else None
    row = existing.get((item_id, side, source))
    if row is None:
        row = orm.SpanSet(item_id=item_id, side=side, source=source, created_at=now)
        s.add(row)
        existing[(item_id, side, source)] = row
    row.spans, row.unprojected, row.settings, row.created_at = spans_json, unproj, dict(settings) if settings else None, now


def save_span_set(
    s: Session,
    item_id: int,
    side: str,
    source: str,
    spans: Sequence[Span],
    *,
    unprojected: Sequence[Span] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> None:
    """Record (or replace) the spans of one side from one machine source for one item.

    Human decisions go through save_edit, never here; ``source`` must not be ``human:*``.
    """
    _check_choice(side, SIDES, "side")
    if not source or source.startswith("human:"):
        raise QueryError(f"span set source {source!r}: human spans are saved with save_edit")
    row = _item_for_update(s, item_id)
    ordered = check_spans(_side_sentence(row, side), spans, f"item {row.external_id} {side} {source}")
    existing = {
        (r.item_id, r.side, r.source): r
        for r in s.scalars(
            select(orm.SpanSet).where(orm.SpanSet.item_id == item_id, orm.SpanSet.side == side, orm.SpanSet.source == source)
        )
    }
    _upsert_span_set(s, existing, item_id, side, source, ordered, unprojected, settings)
    s.flush()


def save_alignment(s: Session, item_id: int, aligner: str, links: Sequence[Link]) -> None:
    """Record (or replace) one aligner's word alignment for an item."""
    row = _item_for_update(s, item_id)
    _check_links(row, links)
    existing = s.scalars(select(orm.Alignment).where(orm.Alignment.item_id == item_id, orm.Alignment.aligner == aligner)).first()
    if existing is None:
        s.add(orm.Alignment(item_id=item_id, aligner=aligner, links=_links_json(links), created_at=utcnow()))
    else:
        existing.links, existing.created_at = _links_json(links), utcnow()
    s.flush()


def _check_links(row: orm.Item, links: Sequence[Link]) -> None:
    if row.target_text is None:
        raise QueryError(f"item {row.external_id}: alignment without a target sentence")
    n_src, n_tgt = len(row.source_tokens), len(row.target_tokens or [])
    for ln in links:
        if not (0 <= ln.src < n_src and 0 <= ln.tgt < n_tgt):
            raise SpanError(f"item {row.external_id}: alignment link {ln.src}-{ln.tgt} outside the sentences")


def _set_target(s: Session, row: orm.Item, target: Sentence) -> bool:
    """Store a (new) target sentence; True when it changed.

    A changed sentence invalidates machine target spans and alignments (deleted, the
    pipeline recomputes them); it is refused when people or gold data already labelled
    the old target, since their work would silently stop matching the text.
    """
    target.validate(f"item {row.external_id} target")
    tokens = _tokens_json(target)
    if row.target_text == target.text and row.target_tokens == tokens:
        return False
    if row.target_text is not None:
        has_human = s.scalar(
            select(func.count()).select_from(orm.Edit).where(orm.Edit.item_id == row.id, orm.Edit.side == "target")
        )
        protected = s.scalar(
            select(func.count())
            .select_from(orm.SpanSet)
            .where(
                orm.SpanSet.item_id == row.id,
                orm.SpanSet.side == "target",
                or_(orm.SpanSet.source == "gold", orm.SpanSet.source.startswith("human:")),
            )
        )
        if has_human or protected:
            raise QueryError(
                f"item {row.external_id}: the target sentence has human or gold labels; it cannot be replaced"
            )
        for r in s.scalars(select(orm.SpanSet).where(orm.SpanSet.item_id == row.id, orm.SpanSet.side == "target")):
            s.delete(r)
        for r in s.scalars(select(orm.Alignment).where(orm.Alignment.item_id == row.id)):
            s.delete(r)
        s.flush()
    row.target_text, row.target_tokens, row.target_lang = target.text, tokens, target.lang or row.target_lang
    row.updated_at = utcnow()
    return True


def save_target(s: Session, item_id: int, target: Sentence) -> bool:
    """Store the target (translated) sentence of an item; see _set_target for the rules."""
    row = _item_for_update(s, item_id)
    if target.lang is None:
        target = Sentence(target.text, target.tokens, s.scalar(select(orm.Project.tgt_lang).where(orm.Project.id == row.project_id)))
    changed = _set_target(s, row, target)
    s.flush()
    return changed


def mark_stage(s: Session, item_ids: Iterable[int], stage: str, error: str | None = None) -> None:
    """Record that a pipeline stage is done for items (or failed, with the error text)."""
    ids = list(item_ids)
    if not stage:
        raise QueryError("a stage name is required")
    status = "done" if error is None else "failed"
    now = utcnow()
    for chunk in _chunks(ids):
        existing = {
            r.item_id: r
            for r in s.scalars(select(orm.ItemStage).where(orm.ItemStage.item_id.in_(chunk), orm.ItemStage.stage == stage))
        }
        for item_id in chunk:
            r = existing.get(item_id)
            if r is None:
                s.add(orm.ItemStage(item_id=item_id, stage=stage, status=status, error=error, updated_at=now))
            else:
                r.status, r.error, r.updated_at = status, error, now
    s.flush()


def items_needing_stage(
    s: Session, project_id: int, stage: str, *, retry_failed: bool = True, limit: int | None = None
) -> list[int]:
    """Ids (in original order) of items where ``stage`` is not done yet (failed ones too
    when ``retry_failed``), so a stopped job resumes where it left off."""
    blocking = ["done"] if retry_failed else ["done", "failed"]
    done = select(orm.ItemStage.item_id).where(orm.ItemStage.stage == stage, orm.ItemStage.status.in_(blocking))
    stmt = (
        select(orm.Item.id)
        .where(orm.Item.project_id == project_id, orm.Item.id.not_in(done))
        .order_by(orm.Item.position)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(s.scalars(stmt))


def save_stage_results(
    s: Session,
    project_id: int,
    stage: str,
    items: Sequence[Item],
    *,
    outputs: Mapping[str, str] | None = None,
    aligner: str | None = None,
    unprojected: Mapping[str, Sequence[Span]] | None = None,
    settings: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
) -> int:
    """Store what one pipeline stage produced for a batch of items (matched by ``Item.id``).

    * a target sentence on the item is stored (see save_target for when that is refused);
    * ``outputs`` maps side -> span source this stage writes, e.g. ``{"source": "teacher"}``
      or ``{"target": "projection:heuristic"}``: the item's spans of that side with that
      source become the set (an empty set is recorded too);
    * ``aligner``: the item's ``alignment`` is stored under that name;
    * ``unprojected``: item id -> source spans that could not be projected (stored with
      the target set of this stage);
    * ``errors``: item id -> error text, recorded as a failed stage for those items.

    Every stored item is marked done for ``stage``. Returns the number of items stored.
    """
    outputs = dict(outputs or {})
    for side in outputs:
        _check_choice(side, SIDES, "side")
    for src in outputs.values():
        if not src or src.startswith("human:"):
            raise QueryError(f"stage output source {src!r}: human spans are saved with save_edit")
    ext_ids = [it.id for it in items] + list((errors or {}).keys())
    rows: dict[str, orm.Item] = {}
    for i in range(0, len(ext_ids), _CHUNK):
        for r in s.scalars(
            select(orm.Item)
            .where(orm.Item.project_id == project_id, orm.Item.external_id.in_(ext_ids[i : i + _CHUNK]))
            .execution_options(populate_existing=True)
        ):
            rows[r.external_id] = r
    missing = [e for e in ext_ids if e not in rows]
    if missing:
        raise NotFoundError(f"project {project_id} has no item(s) {', '.join(map(repr, missing[:5]))}")
    ids = [rows[it.id].id for it in items]
    existing_sets: dict[tuple[int, str, str], orm.SpanSet] = {}
    existing_aligns: dict[tuple[int, str], orm.Alignment] = {}
    for chunk in _chunks(ids):
        for r in s.scalars(select(orm.SpanSet).where(orm.SpanSet.item_id.in_(chunk))):
            existing_sets[(r.item_id, r.side, r.source)] = r
        if aligner:
            for r in s.scalars(select(orm.Alignment).where(orm.Alignment.item_id.in_(chunk), orm.Alignment.aligner == aligner)):
                existing_aligns[(r.item_id, r.aligner)] = r
    tgt_lang = None
    for it in items:
        row = rows[it.id]
        if it.target is not None:
            if it.target.lang is None and tgt_lang is None:
                tgt_lang = s.scalar(select(orm.Project.tgt_lang).where(orm.Project.id == project_id))
            target = it.target if it.target.lang is not None else Sentence(it.target.text, it.target.tokens, tgt_lang)
            if _set_target(s, row, target):
                existing_sets = {k: v for k, v in existing_sets.items() if not (k[0] == row.id and k[1] == "target")}
                existing_aligns = {k: v for k, v in existing_aligns.items() if k[0] != row.id}
        for side, source in outputs.items():
            spans = [sp for sp in (it.source_spans if side == "source" else it.target_spans) if sp.source == source]
            ordered = check_spans(_side_sentence(row, side), spans, f"item {row.external_id} {side} {source}")
            unproj = (unprojected or {}).get(it.id) if side == "target" else None
            _upsert_span_set(s, existing_sets, row.id, side, source, ordered, unproj, settings)
        if aligner and it.alignment:
            _check_links(row, it.alignment)
            a = existing_aligns.get((row.id, aligner))
            if a is None:
                s.add(orm.Alignment(item_id=row.id, aligner=aligner, links=_links_json(it.alignment), created_at=utcnow()))
            else:
                a.links, a.created_at = _links_json(it.alignment), utcnow()
    s.flush()
    mark_stage(s, ids, stage)
    for ext_id, message in (errors or {}).items():
        mark_stage(s, [rows[ext_id].id], stage, error=message or "failed")
    return len(ids)


# --------------------------------------------------------------------------- users


def _user_info(u: orm.User) -> UserInfo:
    return UserInfo(u.id, u.name, u.role, u.password_hash is not None, _utc(u.created_at))


def _user_row(s: Session, name: str) -> orm.User:
    u = s.scalars(select(orm.User).where(orm.User.name == name).execution_options(populate_existing=True)).first()
    if u is None:
        raise NotFoundError(f"no user named {name!r}")
    return u


def create_user(s: Session, name: str, role: str = "annotator", password_hash: str | None = None) -> UserInfo:
    """A new user (password hashing: core.auth.hash_password). Raises DuplicateError."""
    name = _check_user(name)
    _check_choice(role, USER_ROLES, "role")
    if s.scalar(select(orm.User.id).where(orm.User.name == name)) is not None:
        raise DuplicateError(f"a user named {name!r} already exists")
    u = orm.User(name=name, role=role, password_hash=password_hash)
    s.add(u)
    try:
        s.flush()
    except IntegrityError as exc:
        raise DuplicateError(f"a user named {name!r} already exists") from exc
    return _user_info(u)


def get_user(s: Session, name: str) -> UserInfo | None:
    u = s.scalars(select(orm.User).where(orm.User.name == name).execution_options(populate_existing=True)).first()
    return _user_info(u) if u is not None else None


def list_users(s: Session) -> list[UserInfo]:
    return [_user_info(u) for u in s.scalars(select(orm.User).order_by(orm.User.name).execution_options(populate_existing=True))]


def set_user_role(s: Session, name: str, role: str) -> UserInfo:
    _check_choice(role, USER_ROLES, "role")
    u = _user_row(s, name)
    u.role = role
    s.flush()
    return _user_info(u)


def set_password_hash(s: Session, name: str, password_hash: str | None) -> None:
    """Store a hash made by core.auth.hash_password (None removes the password)."""
    u = _user_row(s, name)
    u.password_hash = password_hash
    s.flush()


def get_password_hash(s: Session, name: str) -> str | None:
    """The stored hash, for core.auth.verify_password (None: no such user or no password)."""
    return s.scalar(select(orm.User.password_hash).where(orm.User.name == name))


def check_login(s: Session, name: str, password: str) -> UserInfo | None:
    """The user when the password matches (re-hashing an outdated hash), else None."""
    from core.auth import hash_password, needs_rehash, verify_password

    u = s.scalars(select(orm.User).where(orm.User.name == name).execution_options(populate_existing=True)).first()
    if u is None or u.password_hash is None or not verify_password(u.password_hash, password):
        return None
    if needs_rehash(u.password_hash):
        u.password_hash = hash_password(password)
        s.flush()
    return _user_info(u)


# --------------------------------------------------------------------------- jobs


def _job_info(j: orm.Job) -> JobInfo:
    return JobInfo(
        j.id,
        j.project_id,
        j.kind,
        j.status,
        float(j.progress),
        int(j.done),
        j.total,
        j.message,
        j.error,
        dict(j.params or {}),
        j.result,
        j.pid,
        _utc(j.created_at),
        _utc(j.started_at),
        _utc(j.finished_at),
        _utc(j.heartbeat_at),
    )


def _job_row(s: Session, job_id: int) -> orm.Job:
    j = s.get(orm.Job, job_id, populate_existing=True)
    if j is None:
        raise NotFoundError(f"no job with id {job_id}")
    return j


def create_job(
    s: Session,
    kind: str,
    project_id: int | None = None,
    params: Mapping[str, Any] | None = None,
    total: int | None = None,
    message: str | None = None,
) -> JobInfo:
    """A queued job; the worker moves it along with update_job and finish_job."""
    if not kind:
        raise QueryError("a job needs a kind")
    params_dict = dict(params or {})
    _check_json(params_dict, f"params of job {kind!r}")
    if project_id is not None:
        _project_row(s, project_id)
    j = orm.Job(kind=kind, project_id=project_id, params=params_dict, total=total, message=message, status="queued", progress=0.0, done=0)
    s.add(j)
    s.flush()
    return _job_info(j)


def get_job(s: Session, job_id: int) -> JobInfo:
    return _job_info(_job_row(s, job_id))


def list_jobs(
    s: Session, project_id: int | None = None, status: str | Sequence[str] | None = None, limit: int = 50
) -> list[JobInfo]:
    """Newest first; all projects when ``project_id`` is None."""
    stmt = select(orm.Job).order_by(orm.Job.created_at.desc(), orm.Job.id.desc()).limit(limit)
    if project_id is not None:
        stmt = stmt.where(orm.Job.project_id == project_id)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        for st in statuses:
            _check_choice(st, JOB_STATUSES, "job status")
        stmt = stmt.where(orm.Job.status.in_(statuses))
    return [_job_info(j) for j in s.scalars(stmt.execution_options(populate_existing=True))]


def update_job(
    s: Session,
    job_id: int,
    *,
    progress: float | None = None,
    done: int | None = None,
    total: int | None = None,
    message: str | None = None,
    pid: int | None = None,
) -> JobInfo:
    """Report progress (and a heartbeat). The first update moves a queued job to running.

    Progress is ``done / total`` when not given. Raises JobCancelledError when the job was
    cancelled meanwhile (the worker stops), QueryError when it already finished.
    """
    now = utcnow()
    values: dict[str, Any] = {"status": "running", "heartbeat_at": now, "started_at": func.coalesce(orm.Job.started_at, now)}
    if done is not None:
        values["done"] = int(done)
    if total is not None:
        values["total"] = int(total)
    if progress is None and done is not None:
        denominator = total if total is not None else s.scalar(select(orm.Job.total).where(orm.Job.id == job_id))
        if denominator:
            progress = done / denominator
    if progress is not None:
        if not (0.0 <= progress <= 1.0 + 1e-9):
            raise QueryError(f"job {job_id}: progress {progress} outside [0, 1]")
        values["progress"] = min(float(progress), 1.0)
    if message is not None:
        values["message"] = message
    if pid is not None:
        values["pid"] = int(pid)
    result = s.execute(
        update(orm.Job)
        .where(orm.Job.id == job_id, orm.Job.status.in_(("queued", "running")))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    j = _job_row(s, job_id)
    if result.rowcount == 0:
        if j.status == "cancelled":
            raise JobCancelledError(f"job {job_id} ({j.kind}) was cancelled")
        raise QueryError(f"job {job_id} ({j.kind}) already finished with status {j.status}")
    return _job_info(j)


def finish_job(
    s: Session,
    job_id: int,
    status: str,
    result: Any = None,
    error: str | None = None,
    message: str | None = None,
) -> JobInfo:
    """End a job as done, failed or cancelled. A job cancelled meanwhile stays cancelled."""
    _check_choice(status, JOB_FINAL_STATUSES, "final job status")
    _check_json(result, f"result of job {job_id}")
    now = utcnow()
    values: dict[str, Any] = {"status": status, "finished_at": now, "heartbeat_at": now, "result": result, "error": error}
    if status == "done":
        values["progress"] = 1.0
    if message is not None:
        values["message"] = message
    res = s.execute(
        update(orm.Job)
        .where(orm.Job.id == job_id, orm.Job.status.in_(("queued", "running")))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    j = _job_row(s, job_id)
    if res.rowcount == 0 and j.status != "cancelled":
        raise QueryError(f"job {job_id} ({j.kind}) already finished with status {j.status}")
    return _job_info(j)


def cancel_job(s: Session, job_id: int, message: str | None = None) -> JobInfo:
    """Mark a queued or running job cancelled; its worker sees it at its next update_job."""
    j = _job_row(s, job_id)
    if j.status in ("queued", "running"):
        now = utcnow()
        s.execute(
            update(orm.Job)
            .where(orm.Job.id == job_id, orm.Job.status.in_(("queued", "running")))
            .values(status="cancelled", finished_at=now, message=message or "cancelled")
            .execution_options(synchronize_session=False)
        )
        j = _job_row(s, job_id)
    return _job_info(j)


def fail_stale_jobs(s: Session, max_silence_s: float) -> list[int]:
    """Mark running jobs without a heartbeat for ``max_silence_s`` seconds as failed (their
    worker died); return their ids."""
    limit = utcnow() - timedelta(seconds=max_silence_s)
    last_sign = func.coalesce(orm.Job.heartbeat_at, orm.Job.started_at, orm.Job.created_at)
    ids = list(s.scalars(select(orm.Job.id).where(orm.Job.status == "running", last_sign < limit)))
    if ids:
        s.execute(
            update(orm.Job)
            .where(orm.Job.id.in_(ids), orm.Job.status == "running")
            .values(status="failed", finished_at=utcnow(), error=f"no heartbeat for {max_silence_s:.0f} s: the worker stopped")
            .execution_options(synchronize_session=False)
        )
    return ids


# --------------------------------------------------------------------------- pipeline stage bookkeeping (core.pipeline)


@dataclass(frozen=True, slots=True)
class StageFailure:
    item_id: int
    external_id: str
    stage: str
    error: str | None
    updated_at: datetime


def stage_counts(s: Session, project_id: int) -> dict[str, dict[str, int]]:
    """``{stage: {"done": n, "failed": n}}`` over the project's items (one grouped query)."""
    out: dict[str, dict[str, int]] = {}
    rows = s.execute(
        select(orm.ItemStage.stage, orm.ItemStage.status, func.count())
        .join(orm.Item, orm.Item.id == orm.ItemStage.item_id)
        .where(orm.Item.project_id == project_id)
        .group_by(orm.ItemStage.stage, orm.ItemStage.status)
    ).all()
    for stage, status, n in rows:
        out.setdefault(stage, {"done": 0, "failed": 0})[status] = int(n)
    return out


def stage_failures(s: Session, project_id: int, stage: str | None = None, limit: int | None = 100) -> list[StageFailure]:
    """Failed stage marks of the project's items with their errors, in item order."""
    stmt = (
        select(orm.Item.id, orm.Item.external_id, orm.ItemStage.stage, orm.ItemStage.error, orm.ItemStage.updated_at)
        .join(orm.ItemStage, orm.ItemStage.item_id == orm.Item.id)
        .where(orm.Item.project_id == project_id, orm.ItemStage.status == "failed")
        .order_by(orm.Item.position, orm.ItemStage.stage)
    )
    if stage is not None:
        stmt = stmt.where(orm.ItemStage.stage == stage)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [StageFailure(r[0], r[1], r[2], r[3], _utc(r[4])) for r in s.execute(stmt).all()]


def items_with_stage(s: Session, project_id: int, stage: str, status: str = "done") -> set[int]:
    """Ids of the project's items whose ``stage`` mark has ``status`` (done or failed)."""
    return set(
        s.scalars(
            select(orm.ItemStage.item_id)
            .join(orm.Item, orm.Item.id == orm.ItemStage.item_id)
            .where(orm.Item.project_id == project_id, orm.ItemStage.stage == stage, orm.ItemStage.status == status)
        )
    )


def clear_stages(s: Session, item_ids: Iterable[int], prefixes: Sequence[str]) -> int:
    """Forget the stage marks of items whose stage name starts with one of ``prefixes``, so
    those stages run again (their input changed, e.g. a new target sentence). Returns the
    number of marks removed."""
    from sqlalchemy import delete

    ids = list(item_ids)
    if not ids or not prefixes:
        return 0
    removed = 0
    matches = or_(*(orm.ItemStage.stage.startswith(p, autoescape=True) for p in prefixes))
    for chunk in _chunks(ids):
        res = s.execute(
            delete(orm.ItemStage)
            .where(orm.ItemStage.item_id.in_(chunk), matches)
            .execution_options(synchronize_session=False)
        )
        removed += int(res.rowcount or 0)
    return removed


def update_item_meta(s: Session, project_id: int, changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge keys into the ``meta`` of items (by external id); a value None removes the key.

    Pipeline bookkeeping (which translator wrote the target, the back-translation), so the
    item version is not bumped: a reviewer's pending edit does not conflict with it.
    """
    if not changes:
        return
    _check_json({k: dict(v) for k, v in changes.items()}, "item meta changes")
    ext_ids = list(changes)
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    for i in range(0, len(ext_ids), _CHUNK):
        for item_id, ext_id, meta in s.execute(
            select(orm.Item.id, orm.Item.external_id, orm.Item.meta).where(
                orm.Item.project_id == project_id, orm.Item.external_id.in_(ext_ids[i : i + _CHUNK])
            )
        ):
            rows[ext_id] = (item_id, dict(meta or {}))
    missing = [e for e in ext_ids if e not in rows]
    if missing:
        raise NotFoundError(f"project {project_id} has no item(s) {', '.join(map(repr, missing[:5]))}")
    for ext_id, change in changes.items():
        item_id, meta = rows[ext_id]
        for key, value in change.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        s.execute(
            update(orm.Item).where(orm.Item.id == item_id).values(meta=meta).execution_options(synchronize_session=False)
        )
