"""Items: import (all or nothing, with images), loading with everything stored about them,
lists of ids, lookups, meta, and the version check every human write goes through."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.annotations.records import (
    STATUSES,
    AdjudicationRecord,
    EditEvent,
    ItemAnnotations,
    ItemRecord,
    ReviewStateRecord,
    SpanSetRecord,
    StageState,
    StatusChange,
)
from core.config import settings as app_settings
from core.data import Item, Span, SpanError
from core.media import ImageError, contained_path, store_image
from db import models as orm
from db import review_models as rm
from db.codecs import (
    CHUNK,
    batched,
    chunks,
    columns,
    links_from_json,
    links_json,
    sentence_from_json,
    spans_from_json,
    spans_json,
    tokens_json,
    utc,
    version_from_json,
)
from db.errors import ItemImportError, NotFoundError, QueryError, check_choice, check_json
from db.projects import add_project_labels, get_project

__all__ = [
    "ImportReport",
    "StaleItemError",
    "import_items",
    "load_items",
    "load_item",
    "item_ids",
    "item_db_ids",
    "find_item",
    "item_project",
    "occurrence_items",
    "update_item_meta",
    "bump_item",
    "decode_event",
]


class StaleItemError(QueryError):
    """The item's version moved between reading it and writing it (a concurrent writer)."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    added: int
    skipped_duplicates: tuple[str, ...]  # external ids already in the project or repeated in the input
    images_stored: int  # images referenced by the added items (new or already in the store)
    new_labels: tuple[str, ...]  # labels found in the spans and appended to the project's labels


# --------------------------------------------------------------------------- import


_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def _image_label(ref: str, image_root: Path | None) -> str:
    """A reference as an untrusted caller's error may show it: a relative reference as
    written, a file inside the image folder relative to it, else only the file name (never
    a server path)."""
    path = Path(ref)
    if not path.is_absolute():
        return ref
    if image_root is not None:
        inside = contained_path(path, image_root)
        if inside is not None:
            return inside.relative_to(Path(image_root).resolve()).as_posix()
    return path.name


def _resolve_image(ref: str, image_root: Path | None, trusted: bool) -> Path | str:
    """A file path for an item's image reference, or the sha256 of an image already stored.

    With ``image_root`` the file must lie inside it once ``..`` and links are resolved,
    whatever the caller. Without one, only a trusted caller (the command line, whose user
    names their own files) may name an absolute path. An untrusted caller (the web import)
    gets a regular file or "X not found or not allowed" for every refusal about the path,
    missing and forbidden alike, so its errors say nothing about the server's files.
    """
    m = _SHA256.match(ref.strip().lower())
    if m:
        return m.group(1)
    if "://" in ref:
        raise ImageError(f"{ref}: image URLs are not fetched; download the image and import the file")
    path = Path(ref).expanduser() if trusted else Path(ref)
    if not path.is_absolute():
        if image_root is None:
            raise ImageError(f"{ref}: relative image path but no image folder was given")
        path = Path(image_root) / path
    if image_root is None:
        if not trusted:
            raise ImageError(f"{_image_label(ref, image_root)} not found or not allowed")
        return path  # core.media reads only a regular file and says precisely why not
    inside = contained_path(path, image_root)
    if inside is None or not (trusted or inside.is_file()):  # is_file: stat and S_ISREG
        if trusted:
            raise ImageError(f"{ref}: outside the image folder {image_root}")
        raise ImageError(f"{_image_label(ref, image_root)} not found or not allowed")
    return inside


def _validate(batch: Sequence[Any], existing: set[str], seen: set[str], offset: int) -> tuple[list[tuple[int, Item]], list[str], list[str]]:
    """Valid new items of one chunk as (position in the whole input, item); ``seen`` holds
    the ids of the chunks before, so a repeated id is found across chunks."""
    errors: list[str] = []
    duplicates: list[str] = []
    fresh: list[tuple[int, Item]] = []
    for pos, it in enumerate(batch, start=offset):
        where = f"position {pos} (id {getattr(it, 'id', None)!r})"
        if not isinstance(it, Item):
            errors.append(f"{where}: not an Item but {type(it).__name__}")
            continue
        if not isinstance(it.id, str) or not it.id.strip() or len(it.id) > 200:
            errors.append(f"{where}: item id must be a non-empty string of at most 200 characters")
            continue
        try:
            it.validate()
            check_json(it.meta, f"item {it.id} meta")
        except (SpanError, QueryError) as exc:
            errors.append(f"position {pos}: {exc}")
            continue
        if it.id in existing or it.id in seen:
            duplicates.append(it.id)
            continue
        seen.add(it.id)
        fresh.append((pos, it))
    return fresh, duplicates, errors


def _image_rows(
    s: Session, fresh: list[tuple[int, Item]], media_dir: Path, image_root: Path | None, created_files: list[Path], trusted: bool
) -> tuple[dict[int, orm.Image], list[orm.Image], list[str]]:
    """Validate and store the images (content-addressed); new files go to ``created_files``.
    Errors for an untrusted caller name files as _image_label does, never by server path."""
    errors: list[str] = []
    image_rows: dict[int, orm.Image] = {}  # position -> image row (new or already stored)
    new_images: list[orm.Image] = []
    by_sha: dict[str, orm.Image] = {}
    for pos, it in fresh:
        if not it.image:
            continue
        try:
            ref = _resolve_image(it.image, image_root, trusted)
            if isinstance(ref, str):
                row = by_sha.get(ref) or s.scalars(select(orm.Image).where(orm.Image.sha256 == ref)).first()
                if row is None:
                    raise ImageError(f"{it.image}: no stored image with that sha256")
            else:
                info = store_image(ref, media_dir, name=None if trusted else _image_label(str(ref), image_root))
                if info.created:
                    created_files.append(media_dir / info.path)
                row = by_sha.get(info.sha256) or s.scalars(select(orm.Image).where(orm.Image.sha256 == info.sha256)).first()
                if row is None:
                    row = orm.Image(sha256=info.sha256, path=info.path, format=info.format, width=info.width,
                                    height=info.height, size_bytes=info.size_bytes)  # fmt: skip
                    new_images.append(row)
        except ImageError as exc:
            errors.append(f"position {pos} (id {it.id!r}): image {exc}")
            continue
        by_sha[row.sha256] = row
        image_rows[pos] = row
    return image_rows, new_images, errors


IMPORT_CHUNK = 5000  # items validated and written at a time: bounds the memory of an import


def import_items(
    s: Session,
    project_id: int,
    items: Iterable[Item],
    media_dir: Path | None = None,
    image_root: Path | None = None,
    span_source: str | None = "gold",
    target_span_source: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    trusted_paths: bool = True,
) -> ImportReport:
    """Add items to a project, all or nothing, in bounded memory.

    ``items`` may be a generator (``core.formats.iter_read``): it is consumed in chunks of
    ``IMPORT_CHUNK`` items, each validated and written in the session's transaction, so a
    file of any size imports holding one chunk. Every item is validated (``Item.validate``,
    id, meta, image); when any is bad, ItemImportError lists them all (by position and id)
    once the whole input was read, nothing more is written after the first bad chunk, and
    the caller rolls the transaction back (``session_scope`` does, as does every caller
    here), so nothing is stored; images written by this call are removed again. Items whose id is already in the project, or
    repeated in the input, are skipped and reported.

    Spans are stored as span sets grouped by their own ``Span.source``. ``span_source``
    (default "gold") says the source side of these items is labelled by that source: its
    set is recorded even when an item has no entities, so "no entities" is not mistaken
    for "not labelled yet". ``target_span_source`` does the same for the target side.
    Pass None for unlabelled data. The alignment is stored under
    ``item.meta.get("aligner", "import")``. Labels not yet in the project are appended.
    ``on_progress(done, total)`` is called after each chunk (total: the items read so far).

    Image references: a sha256 names an image already stored; a relative path is read
    from ``image_root``; with ``image_root`` every image file must lie inside it once
    ``..`` and links are resolved (an absolute path is accepted only when it does, as
    core.transfer.match_images writes them). ``trusted_paths`` (default, the command line
    and the demo: a local user names their own files) also reads an absolute path when no
    image folder is given, with precise errors. The web import passes False: nothing
    outside ``image_root`` is read and every refusal about a path reads "image X not
    found or not allowed", never an absolute path. Only regular files are read, at most
    core.media.MAX_IMAGE_BYTES + 1 bytes each.
    """
    project = get_project(s, project_id)
    media_dir = Path(media_dir) if media_dir is not None else app_settings().media_dir
    seen: set[str] = set()
    duplicates: list[str] = []
    errors: list[str] = []
    new_labels: list[str] = []
    created_files: list[Path] = []
    added = images = 0
    last = s.scalar(select(func.max(orm.Item.position)).where(orm.Item.project_id == project.id))
    next_pos = 0 if last is None else last + 1
    offset = 0
    try:
        for batch in batched(items, IMPORT_CHUNK):
            existing: set[str] = set()
            ids = [it.id for it in batch if isinstance(getattr(it, "id", None), str)]
            for chunk in chunks(ids):
                existing.update(s.scalars(select(orm.Item.external_id).where(orm.Item.project_id == project.id, orm.Item.external_id.in_(chunk))))
            fresh, dups, bad = _validate(batch, existing, seen, offset)
            offset += len(batch)
            duplicates.extend(dups)
            errors.extend(bad)
            if errors:
                continue  # keep validating the rest, write nothing more
            image_rows, new_images, bad = _image_rows(s, fresh, media_dir, image_root, created_files, trusted_paths)
            if bad:
                errors.extend(bad)
                continue
            s.add_all(new_images)
            s.flush()
            labels = [sp.label for _, it in fresh for sp in (*it.source_spans, *it.target_spans)]
            if labels:
                new_labels.extend(add_project_labels(s, project.id, labels))
            next_pos = _insert_items(s, project, fresh, image_rows, next_pos, span_source, target_span_source)
            added += len(fresh)
            images += len(image_rows)
            if on_progress is not None:
                on_progress(added, offset)
        if errors:
            raise ItemImportError(errors)
    except BaseException as exc:
        for path in created_files:
            path.unlink(missing_ok=True)
        if isinstance(exc, IntegrityError):
            raise ItemImportError([f"the project changed during the import ({exc.orig}); run it again"]) from exc
        raise
    return ImportReport(added, tuple(duplicates), images, tuple(new_labels))


def _insert_items(
    s: Session, project: Any, fresh: list[tuple[int, Item]], image_rows: dict[int, orm.Image], next_pos: int,
    span_source: str | None, target_span_source: str | None,
) -> int:  # fmt: skip
    """Bulk INSERT ... RETURNING of one chunk (no ORM object per row); the next position."""
    now = orm.utcnow()
    item_rows = [
        {
            "project_id": project.id, "external_id": it.id, "position": next_pos + k,
            "source_text": it.source.text, "source_tokens": tokens_json(it.source),
            "source_lang": it.source.lang or project.src_lang,
            "target_text": it.target.text if it.target is not None else None,
            "target_tokens": tokens_json(it.target) if it.target is not None else None,
            "target_lang": (it.target.lang or project.tgt_lang) if it.target is not None else None,
            "image_id": image_rows[pos].id if pos in image_rows else None, "meta": dict(it.meta),
            "status": "new", "flag_comment": None, "version": 1, "created_at": now, "updated_at": now,
        }
        for k, (pos, it) in enumerate(fresh)
    ]  # fmt: skip
    new_ids: list[int] = []
    for part in chunks(item_rows):
        new_ids.extend(s.scalars(insert(orm.Item).returning(orm.Item.id, sort_by_parameter_order=True), list(part)))
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
                set_rows.append({"item_id": item_id, "side": side, "source": source,
                                 "spans": spans_json(sorted(group, key=lambda x: x.start), False),
                                 "unprojected": None, "settings": None, "created_at": now})  # fmt: skip
        if it.alignment:
            align_rows.append({"item_id": item_id, "aligner": str(it.meta.get("aligner", "import")),
                               "links": links_json(it.alignment), "created_at": now})  # fmt: skip
    for table, values in ((orm.SpanSet, set_rows), (orm.Alignment, align_rows)):
        for part in chunks(values, CHUNK * 4):
            s.execute(insert(table), list(part))
    return next_pos + len(fresh)


# --------------------------------------------------------------------------- loading


def decode_event(r: Any) -> EditEvent:
    """An edit-log row (ORM object or plain row; ``before`` may be absent) as an EditEvent."""
    default = f"human:{r.user_name}"

    def decode(value: Any) -> Any:
        if value is None:
            return None
        if r.side is None:
            return StatusChange(str(value.get("status")), value.get("flag_comment"))
        return version_from_json(value, default)

    return EditEvent(
        id=r.id, user=r.user_name, side=r.side, action=r.action, before=decode(getattr(r, "before", None)),
        after=decode(r.after), created_at=utc(r.created_at), base_version=int(getattr(r, "base_version", 0) or 0),
        comment=getattr(r, "comment", None),
    )  # fmt: skip


def _span_set(r: Any) -> SpanSetRecord:
    return SpanSetRecord(
        r.id, r.side, r.source, tuple(spans_from_json(r.spans, r.source)), utc(r.created_at),
        tuple(spans_from_json(r.unprojected, "gold")) if r.unprojected is not None else None,
        dict(r.settings) if r.settings is not None else None,
    )  # fmt: skip


def load_items(s: Session, item_ids: Sequence[int], media_dir: Path | None = None) -> list[ItemRecord]:
    """Items with everything stored about them, in the given order (unknown ids left out):
    seven queries per chunk of 500, never one per item. Edit events carry no ``before``
    (db.edits.history reads it)."""
    media = Path(media_dir) if media_dir is not None else app_settings().media_dir
    records: dict[int, ItemRecord] = {}
    for chunk in chunks(list(item_ids)):
        rows = s.execute(
            select(*columns(orm.Item), orm.Image.path.label("image_rel"))
            .outerjoin(orm.Image, orm.Image.id == orm.Item.image_id)
            .where(orm.Item.id.in_(chunk))
        ).all()
        sets: dict[int, list[SpanSetRecord]] = defaultdict(list)
        for r in s.execute(select(*columns(orm.SpanSet)).where(orm.SpanSet.item_id.in_(chunk))):
            sets[r.item_id].append(_span_set(r))
        aligns: dict[int, list[Any]] = defaultdict(list)
        for r in s.execute(select(*columns(orm.Alignment)).where(orm.Alignment.item_id.in_(chunk))):
            aligns[r.item_id].append(r)
        events: dict[int, list[EditEvent]] = defaultdict(list)
        for r in s.execute(
            select(orm.Edit.id, orm.Edit.item_id, orm.Edit.user_name, orm.Edit.side, orm.Edit.action, orm.Edit.after, orm.Edit.created_at)
            .where(orm.Edit.item_id.in_(chunk))
            .order_by(orm.Edit.item_id, orm.Edit.id)
        ):
            events[r.item_id].append(decode_event(r))
        states: dict[int, list[ReviewStateRecord]] = defaultdict(list)
        for r in s.execute(select(*columns(rm.ReviewState)).where(rm.ReviewState.item_id.in_(chunk))):
            states[r.item_id].append(ReviewStateRecord(r.user_name, r.status, r.flag_comment, utc(r.updated_at)))
        adjudications: dict[int, list[AdjudicationRecord]] = defaultdict(list)
        for r in s.execute(select(*columns(rm.Adjudication)).where(rm.Adjudication.item_id.in_(chunk)).order_by(rm.Adjudication.id)):
            adjudications[r.item_id].append(
                AdjudicationRecord(r.id, r.side, tuple(spans_from_json(r.spans, "adjudicated")), r.user_name,
                                   tuple(r.merged_from or ()), utc(r.created_at), r.comment)  # fmt: skip
            )
        stages: dict[int, dict[str, StageState]] = defaultdict(dict)
        for r in s.execute(select(*columns(orm.ItemStage)).where(orm.ItemStage.item_id.in_(chunk))):
            stages[r.item_id][r.stage] = StageState(r.status, r.error, utc(r.updated_at))
        for row in rows:
            target = sentence_from_json(row.target_text, row.target_tokens or [], row.target_lang) if row.target_text is not None else None
            ordered = sorted(aligns.get(row.id, []), key=lambda r: (utc(r.created_at), r.id))
            records[row.id] = ItemRecord(
                id=row.id, project_id=row.project_id, external_id=row.external_id, position=row.position,
                status=row.status, version=row.version, flag_comment=row.flag_comment,
                source=sentence_from_json(row.source_text, row.source_tokens, row.source_lang), target=target,
                image_path=(media / row.image_rel) if row.image_rel else None, meta=dict(row.meta or {}),
                alignments={r.aligner: links_from_json(r.links) for r in ordered}, stages=dict(stages.get(row.id, {})),
                updated_at=utc(row.updated_at),
                annotations=ItemAnnotations(tuple(sets.get(row.id, ())), tuple(events.get(row.id, ())),
                                            tuple(states.get(row.id, ())), tuple(adjudications.get(row.id, ()))),
            )  # fmt: skip
    return [records[i] for i in item_ids if i in records]


def load_item(s: Session, item_id: int, media_dir: Path | None = None) -> ItemRecord:
    """One item (see load_items). Raises NotFoundError."""
    found = load_items(s, [item_id], media_dir)
    if not found:
        raise NotFoundError(f"no item with id {item_id}")
    return found[0]


# --------------------------------------------------------------------------- ids and lookups


def item_ids(s: Session, project_id: int, status: str | Sequence[str] | None = None) -> list[int]:
    """Ids of the project's items in original order, optionally of some shared statuses."""
    stmt = select(orm.Item.id).where(orm.Item.project_id == project_id).order_by(orm.Item.position)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        for st in statuses:
            check_choice(st, STATUSES, "status")
        stmt = stmt.where(orm.Item.status.in_(statuses))
    return list(s.scalars(stmt))


def item_db_ids(s: Session, project_id: int, external_ids: Sequence[str]) -> dict[str, int]:
    """External id -> database id for the project's items among ``external_ids``."""
    out: dict[str, int] = {}
    for chunk in chunks(list(external_ids)):
        rows = s.execute(select(orm.Item.external_id, orm.Item.id).where(orm.Item.project_id == project_id, orm.Item.external_id.in_(chunk)))
        out.update((ext, item_id) for ext, item_id in rows)
    return out


def find_item(s: Session, project_id: int, ref: str) -> int | None:
    """An item by its external id, or by its number in the original order ("#12" or "12")."""
    ref = ref.strip()
    found = s.scalar(select(orm.Item.id).where(orm.Item.project_id == project_id, orm.Item.external_id == ref))
    if found is not None:
        return found
    number = ref[1:] if ref.startswith("#") else ref
    if number.isdigit() and int(number) >= 1:
        return s.scalar(select(orm.Item.id).where(orm.Item.project_id == project_id, orm.Item.position == int(number) - 1))
    return None


def item_project(s: Session, item_id: int) -> int | None:
    """The project of an item (None: no such item)."""
    return s.scalar(select(orm.Item.project_id).where(orm.Item.id == item_id))


def occurrence_items(s: Session, project_id: int, side: str, text: str, exclude_item_id: int | None = None, limit: int = 500) -> list[int]:
    """Items of the project whose ``side`` text contains ``text`` (a candidate list: the
    whole-token check is core.annotations.edits' job)."""
    check_choice(side, ("source", "target"), "side")
    if not text.strip():
        return []
    column = orm.Item.source_text if side == "source" else orm.Item.target_text
    stmt = select(orm.Item.id).where(orm.Item.project_id == project_id, column.contains(text, autoescape=True))
    if exclude_item_id is not None:
        stmt = stmt.where(orm.Item.id != exclude_item_id)
    return list(s.scalars(stmt.order_by(orm.Item.position).limit(limit)))


def update_item_meta(s: Session, project_id: int, changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge keys into the ``meta`` of items (by external id); a value None removes the key.

    Pipeline bookkeeping (which translator wrote the target, the back-translation), so the
    item version is not bumped: a reviewer's pending edit does not conflict with it.
    """
    if not changes:
        return
    check_json({k: dict(v) for k, v in changes.items()}, "item meta changes")
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    for chunk in chunks(list(changes)):
        for item_id, ext_id, meta in s.execute(
            select(orm.Item.id, orm.Item.external_id, orm.Item.meta).where(orm.Item.project_id == project_id, orm.Item.external_id.in_(chunk))
        ):
            rows[ext_id] = (item_id, dict(meta or {}))
    missing = [e for e in changes if e not in rows]
    if missing:
        raise NotFoundError(f"project {project_id} has no item(s) {', '.join(map(repr, missing[:5]))}")
    for ext_id, change in changes.items():
        item_id, meta = rows[ext_id]
        for key, value in change.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        s.execute(update(orm.Item).where(orm.Item.id == item_id).values(meta=meta).execution_options(synchronize_session=False))


def bump_item(s: Session, item_id: int, expected_version: int, status: StatusChange | None = None) -> int:
    """Bump the item's version (compare-and-set on ``expected_version``) and optionally set
    its shared status; returns the new version. Raises StaleItemError when another writer
    moved it first: nothing of the caller's transaction may then be committed."""
    row = s.get(orm.Item, item_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"no item with id {item_id}")
    if row.version != expected_version:
        raise StaleItemError(f"item {item_id} changed during the write")
    if status is not None:
        row.status, row.flag_comment = status.status, status.flag_comment
    row.updated_at = orm.utcnow()
    try:
        s.flush()
    except StaleDataError as exc:
        raise StaleItemError(f"item {item_id} changed during the write") from exc
    return row.version
