"""Importing a file into a project: read it (any format), match its images, store it all
or nothing, and say what happened."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from core.formats import FormatError, ReadReport
from core.transfer import ArchiveError, drop_translations, match_images, read_upload, unpack_images
from db.errors import ItemImportError, QueryError
from db.items import import_items

__all__ = ["ImportResult", "import_upload"]


@dataclass
class ImportResult:
    file: str
    errors: list[str] = field(default_factory=list)
    added: int = 0
    duplicates: list[str] = field(default_factory=list)
    images: int = 0
    new_labels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def import_upload(
    s: Session,
    project_id: int,
    name: str,
    data: bytes,
    fmt: str | None = None,
    *,
    keep_translations: bool = True,
    images_zip: bytes | None = None,
    images_dir: str | None = None,
) -> ImportResult:
    """Read an uploaded file and store its items; errors leave the database untouched."""
    report = ReadReport()
    with tempfile.TemporaryDirectory(prefix="labelbridge-import-") as tmp:
        try:
            items = read_upload(name, data, Path(tmp) / "file", fmt, report=report)
        except (FormatError, ValueError, TypeError) as exc:
            return ImportResult(name, [str(exc)])
        if not keep_translations:
            items = drop_translations(items)
        root = None
        if images_zip is not None:
            try:
                root = unpack_images(images_zip, Path(tmp) / "images")
            except ArchiveError as exc:
                return ImportResult(name, [str(exc)])
        elif images_dir:
            root = Path(images_dir).expanduser()
            if not root.is_dir():
                return ImportResult(name, [f"image folder {images_dir} does not exist"])
        if root is not None:
            items, problems = match_images(items, root)
            if problems:
                return ImportResult(name, [f"image not found: {p}" for p in problems])
        try:
            rep = import_items(s, project_id, items, image_root=root)
        except ItemImportError as exc:
            s.rollback()  # nothing of a refused import may be committed
            return ImportResult(name, list(exc.errors))
        except QueryError as exc:
            s.rollback()
            return ImportResult(name, [str(exc)])
    return ImportResult(name, [], rep.added, list(rep.skipped_duplicates), rep.images_stored, list(rep.new_labels), [str(w) for w in report.warnings])
