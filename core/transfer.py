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
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Sequence

from core.data import Item
from core.errors import LabelBridgeError
from core.formats import FORMATS, FormatError, ReadReport, get_format, guess_format, iter_read, write
from core.formats.base import companion_paths
from core.media import contained_path

__all__ = [
    "ArchiveError",
    "Download",
    "MAX_ARCHIVE_BYTES",
    "read_upload",
    "iter_upload",
    "drop_translations",
    "unpack_images",
    "match_images",
    "export_download",
    "export_files",
    "portable_images",
    "IMAGES_FOLDER",
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
    return list(iter_upload(filename, data, workdir, fmt, report=report, **options))


def iter_upload(
    filename: str,
    data: bytes,
    workdir: Path,
    fmt: str | None = None,
    *,
    report: ReadReport | None = None,
    **options: Any,
) -> Iterator[Item]:
    """``read_upload`` one item at a time (``core.formats.iter_read``: bounded memory for
    CoNLL and JSONL); the temporary copy is removed when the iteration ends."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / _safe_filename(filename)
    path.write_bytes(data)
    try:
        fmt = fmt or guess_format(path)
        yield from iter_read(path, fmt, report=report, **options)
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

    Refuses (ArchiveError, nothing left behind) absolute paths, ``..`` components, members
    whose path would not lie inside ``dest`` once resolved (zip slip), links and archives
    whose unpacked size exceeds ``max_bytes``. Images are checked later, when they are
    stored (core.media).
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
        targets: list[tuple[zipfile.ZipInfo, Path]] = []
        for m in members:
            parts = PurePosixPath(m.filename.replace("\\", "/")).parts
            target = dest.joinpath(*parts)
            unsafe = not parts or m.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]
            if unsafe or contained_path(target, dest) is None:
                raise ArchiveError(f"the images archive has an unsafe path {m.filename!r}")
            if stat.S_ISLNK(m.external_attr >> 16):
                raise ArchiveError(f"the images archive has a link {m.filename!r}; links are not unpacked")
            targets.append((m, target))
        dest.mkdir(parents=True, exist_ok=True)
        try:
            for m, target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        except (OSError, zipfile.BadZipFile) as exc:
            shutil.rmtree(dest, ignore_errors=True)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ArchiveError(f"the images archive cannot be unpacked ({why})") from None
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    return dest


def _shown(ref: str) -> str:
    """A reference as an error may show it: never an absolute path (only its file name)."""
    return PurePosixPath(ref.replace("\\", "/")).name if Path(ref).is_absolute() else ref


def match_images(items: Sequence[Item], folder: Path) -> tuple[list[Item], list[str]]:
    """Point each item's relative image reference at a regular file inside ``folder``.

    A reference is found at ``folder/reference`` or, failing that, by its file name
    anywhere below ``folder`` (archives often add a top folder). Only a regular file that
    lies inside ``folder`` once ``..`` and links are resolved counts, and an absolute
    reference is refused: the folder governs the import, an uploaded file must not name a
    server path. Returns the items with the resolved paths of the files found, and the
    problems as ``"item id: reference (why)"``; a missing file and a refused one read the
    same (``not in the images``) and an absolute reference shows only its file name, so
    the answer says nothing about the server's files. sha256 references and URLs are left
    as they are (db.items decides about them).
    """
    folder = Path(folder)
    by_name: dict[str, list[Path]] = {}
    for root, _dirs, files in os.walk(folder):  # links to folders are not followed
        for f in files:
            by_name.setdefault(f, []).append(Path(root) / f)

    def usable(path: Path) -> Path | None:
        found = contained_path(path, folder)
        return found if found is not None and found.is_file() else None

    out: list[Item] = []
    problems: list[str] = []
    for it in items:
        ref = it.image
        if not ref or "://" in ref or re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", ref):
            out.append(it)
            continue
        if Path(ref).is_absolute():
            problems.append(f"item {it.id}: {_shown(ref)} (not in the images)")
            out.append(it)
            continue
        direct = usable(folder / ref)
        if direct is not None:
            out.append(it.with_(image=str(direct)))
            continue
        found = {p for p in (usable(c) for c in by_name.get(PurePosixPath(ref.replace("\\", "/")).name, [])) if p is not None}
        if len(found) == 1:
            out.append(it.with_(image=str(found.pop())))
        else:
            problems.append(f"item {it.id}: {ref} ({'not in the images' if not found else 'several files have this name'})")
            out.append(it)
    return out, problems


@dataclass(frozen=True, slots=True)
class Download:
    filename: str
    data: bytes
    mime: str
    extras: dict[str, bytes] = field(default_factory=dict)  # files that go with it: a labeling config, images


_MIME = {".jsonl": "application/x-ndjson", ".json": "application/json", ".conll": "text/plain", ".txt": "text/plain"}


IMAGES_FOLDER = "images"


def portable_images(items: Sequence[Item], folder: str = IMAGES_FOLDER) -> tuple[list[Item], dict[str, Path]]:
    """Items whose local image files are named ``folder/<file name>``, and the files to put
    there ({relative name: file}): an export that names server paths works nowhere else.

    Stored images are named by their content hash, so two items never claim one name with
    different files; should two different files share a name, the second gets a numbered
    name. URLs and sha256 references are kept as they are."""
    out: list[Item] = []
    files: dict[str, Path] = {}
    by_file: dict[Path, str] = {}
    for it in items:
        ref = it.image
        if not ref or "://" in ref or re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", ref) or not Path(ref).is_absolute():
            out.append(it)
            continue
        path = Path(ref)
        if not path.is_file():
            out.append(it)
            continue
        name = by_file.get(path)
        if name is None:
            name = f"{folder}/{path.name}"
            n = 1
            while name in files:
                n += 1
                name = f"{folder}/{path.stem}-{n}{path.suffix}"
            files[name] = path
            by_file[path] = name
        out.append(it.with_(image=name))
    return out, files


def export_files(items: Sequence[Item], out: Path, fmt: str, **options: Any) -> list[Path]:
    """Write an export and what goes with it: the companion files of its format (a
    labeling config) and, for formats that keep image references, the items' images in an
    ``images`` folder beside it, referenced relative to the export's folder (import it
    again with ``--images`` naming that folder). Returns the paths written."""
    out = Path(out)
    files: dict[str, Path] = {}
    if get_format(fmt).images:
        items, files = portable_images(items)
    path = write(items, out, fmt, **options)
    written = [path, *(p for p in companion_paths(path, fmt).values() if p.exists())]
    for name, source in files.items():
        dest = path.parent / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not (dest.is_file() and dest.stat().st_size == source.stat().st_size):
            shutil.copyfile(source, dest)
        written.append(dest)
    return written


def export_download(items: Sequence[Item], fmt: str, workdir: Path, stem: str = "export", **options: Any) -> Download:
    """Write ``items`` in format ``fmt`` and return the file as bytes (a folder format as a
    zip), with its companion files and its images (``<stem>-images.zip``, the references in
    the file relative to it) as extras."""
    fmt_obj = get_format(fmt)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stem = _safe_filename(stem, "export")
    suffix = fmt_obj.extensions[0] if fmt_obj.extensions and not fmt_obj.folder else ""
    images: dict[str, Path] = {}
    if fmt_obj.images:
        items, images = portable_images(items)
    path = write(items, workdir / f"{stem}{suffix}", fmt, **options)
    extras = {p.name: p.read_bytes() for p in companion_paths(path, fmt).values() if p.exists()}
    if images:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
            for name, source in images.items():
                zf.write(source, name)
        extras[f"{stem}-images.zip"] = buf.getvalue()
    if path.is_dir():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                zf.write(file, f"{stem}/{file.relative_to(path).as_posix()}")
        return Download(f"{stem}.zip", buf.getvalue(), "application/zip", extras)
    return Download(path.name, path.read_bytes(), _MIME.get(path.suffix, "application/octet-stream"), extras)


def format_names() -> list[str]:
    """The registered format names, sorted."""
    return sorted(FORMATS)
