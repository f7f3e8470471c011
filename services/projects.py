"""Importing a file into a project: read it (any format), match its images, store it all
or nothing, and say what happened.

The file comes from a browser, so it is not trusted with the server's files: its images
are read only from the uploaded zip or the given server folder (never an absolute path,
never outside the folder once ``..`` and links are resolved), and every refusal about a
path reads "not found or not allowed", so an import cannot probe the file system."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy.orm import Session

from core.data import Item
from core.formats import FormatError, ReadReport, get_format, guess_format
from core.pipeline.stages import PipelineError, as_originals
from core.transfer import ArchiveError, iter_upload, match_images, unpack_images
from db.codecs import batched
from db.errors import ItemImportError, QueryError
from db.items import IMPORT_CHUNK, ImportReport, import_items
from db.projects import get_project

__all__ = ["ImportResult", "import_upload", "import_project_items"]


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
    fix_encoding: bool = False,
) -> ImportResult:
    """Read an uploaded file and store its items; errors leave the database untouched.

    The file is read as it is stored (``core.transfer.iter_upload``, chunks of
    ``db.items.IMPORT_CHUNK``), so a large CoNLL or JSONL file imports in bounded memory.
    Images come from ``images_zip`` (unpacked in a private folder) or ``images_dir`` (a
    folder on the server); without either only sha256 references to stored images work.
    ``fix_encoding`` repairs text encoded twice in CoNLL files (readers of formats with
    character offsets only warn: a repair would move the spans).
    """
    report = ReadReport()
    with tempfile.TemporaryDirectory(prefix="labelbridge-import-") as tmp:
        root = None
        if images_zip is not None:
            try:
                root = unpack_images(images_zip, Path(tmp) / "images")
            except ArchiveError as exc:
                return ImportResult(name, [str(exc)])
        elif images_dir:
            root = Path(images_dir).expanduser()
            if not root.is_dir():
                return ImportResult(name, ["the image folder: not found or not allowed"])
        try:
            fmt = fmt or guess_format(name)
            options = {"fix_encoding": True} if fix_encoding and "fix_encoding" in get_format(fmt).read_options else {}
            items = iter_upload(name, data, Path(tmp) / "file", fmt, report=report, **options)
            if not keep_translations:
                items = (it.with_(target=None, target_spans=[], alignment=[]) for it in items)
            if root is not None:
                items = _matched(items, root)
            rep = import_project_items(s, project_id, items, image_root=root, trusted_paths=False)
        except ItemImportError as exc:
            s.rollback()  # nothing of a refused import may be committed
            return ImportResult(name, list(exc.errors))
        except (FormatError, ValueError, TypeError) as exc:
            s.rollback()
            return ImportResult(name, [str(exc)])
        except (QueryError, PipelineError) as exc:
            s.rollback()
            return ImportResult(name, [str(exc)])
    return ImportResult(name, [], rep.added, list(rep.skipped_duplicates), rep.images_stored, list(rep.new_labels), [str(w) for w in report.warnings])


def import_project_items(s: Session, project_id: int, items: Iterable[Item], *, labelled: bool = True, **options) -> ImportReport:
    """``db.items.import_items`` laid out for the project's direction: in a translate-test
    project each imported sentence is an original, stored as the target side exactly as
    read (its labels, when ``labelled``, are its gold), the source left for the pivot."""
    info = get_project(s, project_id)
    if info.direction != "translate-test":
        return import_items(s, project_id, items, span_source="gold" if labelled else None, **options)
    originals = (as_originals([it], info.src_lang, info.tgt_lang)[0] for it in items)
    return import_items(s, project_id, originals, span_source=None, target_span_source="gold" if labelled else None, **options)


def _matched(items: Iterable[Item], root: Path) -> Iterator[Item]:
    """``match_images`` chunk by chunk (the import streams); the first chunk with images
    not found stops the import (import_items removes the images it stored)."""
    for chunk in batched(items, IMPORT_CHUNK):
        found, problems = match_images(chunk, root)
        if problems:
            raise ItemImportError([f"image not found or not allowed: {p}" for p in problems])
        yield from found
