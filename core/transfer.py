"""Files that arrive as bytes (browser uploads) or leave as bytes (downloads).

The app gets an uploaded file as a name and bytes and must hand back a download as bytes;
the format readers and writers work on paths. These functions bridge the two in a private
folder, so that errors name the file the person uploaded (not a temporary path), an images
archive cannot write outside its folder, and a folder format (``hf``) leaves as one zip.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from core.data import Item
from core.errors import LabelBridgeError
from core.formats import FORMATS, FormatError, ReadReport, get_format, guess_format, read, write

__all__ = [
    "ArchiveError",
    "Download",
    "MAX_ARCHIVE_BYTES",
    "read_upload",
    "drop_translations",
    "unpack_images",
    "match_images",
    "export_download",
    "format_names",
]

MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024  # unpacked size limit of an images archive (zip bomb guard)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ArchiveError(LabelBridgeError):
    """An images archive that cannot be unpacked safely (not a zip, unsafe paths, too big)."""


def _safe_filename(name: str, default: str = "upload") -> str:
    """The last path component of an uploaded name, reduced to safe characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).strip("._")
    return cleaned or default


def read_upload(
    filename: str,
    data: bytes,
    workdir: Path,
    fmt: str | None = None,
    *,
    report: ReadReport | None = None,
    **options: Any,
) -> list[Item]:
    """Items from an uploaded file; the format is ``fmt`` or guessed from the file name.

    A FormatError names ``filename`` and the line or item, never the temporary copy.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / _safe_filename(filename)
    path.write_bytes(data)
    try:
        fmt = fmt or guess_format(path)
        return read(path, fmt, report=report, **options)
    except FormatError as exc:
        where = exc.line if exc.line is not None else exc.item
        raise FormatError(filename, where, exc.message) from None
    finally:
        path.unlink(missing_ok=True)


def drop_translations(items: Sequence[Item]) -> list[Item]:
    """The items without their target sentence, target spans and alignment."""
    return [it.with_(target=None, target_spans=[], alignment=[]) for it in items]


def unpack_images(archive: bytes, dest: Path, max_bytes: int = MAX_ARCHIVE_BYTES) -> Path:
    """Unpack a zip of images into ``dest`` and return it.

    Refuses (ArchiveError, nothing left behind) absolute paths, ``..`` components, links
    and archives whose unpacked size exceeds ``max_bytes``. Images are checked later, when
    they are stored (core.media).
    """
    dest = Path(dest)
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"the images archive is not a zip file ({exc})") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise ArchiveError(f"the images archive unpacks to {total} bytes, more than the limit of {max_bytes}")
        for m in members:
            parts = PurePosixPath(m.filename.replace("\\", "/")).parts
            if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise ArchiveError(f"the images archive has an unsafe path {m.filename!r}")
            if stat.S_ISLNK(m.external_attr >> 16):
                raise ArchiveError(f"the images archive has a link {m.filename!r}; links are not unpacked")
        dest.mkdir(parents=True, exist_ok=True)
        try:
            for m in members:
                target = dest.joinpath(*PurePosixPath(m.filename.replace("\\", "/")).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    return dest


def match_images(items: Sequence[Item], folder: Path) -> tuple[list[Item], list[str]]:
    """Point each item's relative image reference at a file in ``folder``.

    A reference is found at ``folder/reference`` or, failing that, by its file name
    anywhere below ``folder`` (archives often add a top folder). Returns the items with
    absolute image paths where found, and the references found nowhere or more than once
    (as ``"item id: reference (why)"``). Absolute paths and sha256 references are left as
    they are.
    """
    folder = Path(folder)
    by_name: dict[str, list[Path]] = {}
    for root, _dirs, files in os.walk(folder):
        for f in files:
            by_name.setdefault(f, []).append(Path(root) / f)
    out: list[Item] = []
    problems: list[str] = []
    for it in items:
        ref = it.image
        if not ref or Path(ref).is_absolute() or "://" in ref or re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", ref):
            out.append(it)
            continue
        direct = folder / ref
        if direct.is_file():
            out.append(it.with_(image=str(direct)))
            continue
        found = by_name.get(PurePosixPath(ref.replace("\\", "/")).name, [])
        if len(found) == 1:
            out.append(it.with_(image=str(found[0])))
        else:
            problems.append(f"item {it.id}: {ref} ({'not in the images' if not found else 'several files have this name'})")
            out.append(it)
    return out, problems


@dataclass(frozen=True, slots=True)
class Download:
    filename: str
    data: bytes
    mime: str


_MIME = {".jsonl": "application/x-ndjson", ".json": "application/json", ".conll": "text/plain", ".txt": "text/plain"}


def export_download(items: Sequence[Item], fmt: str, workdir: Path, stem: str = "export", **options: Any) -> Download:
    """Write ``items`` in format ``fmt`` and return the file as bytes (a folder format as a zip)."""
    fmt_obj = get_format(fmt)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stem = _safe_filename(stem, "export")
    suffix = fmt_obj.extensions[0] if fmt_obj.extensions and not fmt_obj.folder else ""
    path = write(items, workdir / f"{stem}{suffix}", fmt, **options)
    if path.is_dir():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                zf.write(file, f"{stem}/{file.relative_to(path).as_posix()}")
        return Download(f"{stem}.zip", buf.getvalue(), "application/zip")
    return Download(path.name, path.read_bytes(), _MIME.get(path.suffix, "application/octet-stream"))


def format_names() -> list[str]:
    """The registered format names, sorted."""
    return sorted(FORMATS)
