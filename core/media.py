"""Content-addressed image store.

Images are stored once per content under ``<media_dir>/<sha[:2]>/<sha>.<ext>`` so the
same picture imported twice (or by two projects) takes the space once, and the database
only keeps the hash and the relative path. Every image is checked with Pillow before it
is written: an allowed format, a size and pixel budget (a decompression bomb is refused
before it is decoded) and a full decode, so a truncated or corrupt file is refused at
import time with its name, not later in the review page.

A file is read only when it is a regular file (a FIFO would block forever, ``/dev/zero``
would stream until memory runs out) and never beyond the size limit; ``contained_path``
is the one test of "this path lies inside that folder" that imports use.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.errors import LabelBridgeError

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "ImageError",
    "ImageInfo",
    "contained_path",
    "inspect_image",
    "read_image_file",
    "store_image",
    "thumbnail_data_uri",
]

# Pillow format name -> file extension used in the store.
ALLOWED_FORMATS: dict[str, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000  # below Pillow's own bomb limit (~89 Mpx), so we refuse first


class ImageError(LabelBridgeError):
    """An image that cannot be stored (unreadable, unsupported format, too large)."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    sha256: str
    path: str  # relative to the media folder, with forward slashes
    format: str  # Pillow format name, e.g. "PNG"
    width: int
    height: int
    size_bytes: int
    created: bool = False  # True when this call wrote the file (used to clean up on failure)


def contained_path(path: Path, folder: Path) -> Path | None:
    """``path`` with ``..`` and links resolved when it lies inside ``folder`` (resolved too),
    else None: a reference or a link cannot lead an import out of its image folder."""
    try:
        resolved = Path(path).resolve()
        root = Path(folder).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        return None
    return resolved if resolved.is_relative_to(root) else None


def read_image_file(path: Path, *, name: str | None = None, max_bytes: int | None = None) -> bytes:
    """The bytes of an image file, read so that no path can hang or exhaust the process.

    Only a regular file is opened (``stat`` first: a FIFO, a device or a folder is refused
    before opening; the opened file must be the one that was checked) and at most
    ``max_bytes + 1`` bytes are read (default MAX_IMAGE_BYTES, looked up at call time).
    Raises ImageError naming ``name`` (default: the path).
    """
    limit = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    label = name or str(path)
    try:
        checked = os.stat(path)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{label}: cannot read image file ({getattr(exc, 'strerror', None) or exc})") from exc
    if not stat.S_ISREG(checked.st_mode):
        raise ImageError(f"{label}: not a regular file (FIFOs, devices and folders are not read)")
    if checked.st_size > limit:
        raise ImageError(f"{label}: {checked.st_size} bytes is more than the limit of {limit} bytes")
    try:
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it still returns.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise ImageError(f"{label}: cannot read image file ({exc.strerror or exc})") from exc
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise ImageError(f"{label}: the file changed while it was opened")
        parts: list[bytes] = []
        left = limit + 1
        while left > 0:
            block = os.read(fd, min(left, 1 << 20))
            if not block:
                break
            parts.append(block)
            left -= len(block)
    except OSError as exc:
        raise ImageError(f"{label}: cannot read image file ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    raw = b"".join(parts)
    if len(raw) > limit:
        raise ImageError(f"{label}: more than the limit of {limit} bytes")
    return raw


def _read(data: bytes | Path, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), name or "<image bytes>"
    return read_image_file(Path(data), name=name, max_bytes=max_bytes), name or str(data)


def inspect_image(
    data: bytes | Path,
    *,
    name: str | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
) -> tuple[bytes, ImageInfo]:
    """Validate an image without writing it; return its bytes and what it would be stored as.

    The limits default to MAX_IMAGE_BYTES and MAX_IMAGE_PIXELS, looked up at call time.
    """
    max_bytes = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    max_pixels = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    raw, label = _read(data, name, max_bytes)
    if len(raw) == 0:
        raise ImageError(f"{label}: empty file")
    if len(raw) > max_bytes:
        raise ImageError(f"{label}: {len(raw)} bytes is more than the limit of {max_bytes} bytes")
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice its limit; we want an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(raw)) as img:
                fmt = img.format or ""
                width, height = img.size
                if fmt not in ALLOWED_FORMATS:
                    raise ImageError(
                        f"{label}: unsupported image format {fmt or 'unknown'}; allowed: {', '.join(ALLOWED_FORMATS)}"
                    )
                if width * height > max_pixels:
                    raise ImageError(
                        f"{label}: {width}x{height} = {width * height} pixels is more than the limit of "
                        f"{max_pixels} (decompression bomb guard)"
                    )
                img.verify()
            # verify() checks structure only; decoding catches truncated pixel data.
            with Image.open(io.BytesIO(raw)) as img:
                img.load()
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"{label}: too many pixels (decompression bomb guard): {exc}") from exc
        except UnidentifiedImageError as exc:
            raise ImageError(f"{label}: not an image Pillow can read") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"{label}: corrupt or truncated image ({exc})") from exc
    sha = hashlib.sha256(raw).hexdigest()
    rel = f"{sha[:2]}/{sha}.{ALLOWED_FORMATS[fmt]}"
    return raw, ImageInfo(sha, rel, fmt, width, height, len(raw))


def store_image(
    data: bytes | Path,
    media_dir: Path,
    *,
    name: str | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
) -> ImageInfo:
    """Validate and store an image under its content hash. Idempotent for the same bytes.

    The file is written to a temporary name and renamed, so a crash never leaves a half
    written image under a valid hash. Raises ImageError naming the file.
    """
    raw, info = inspect_image(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels)
    target = Path(media_dir) / info.path
    if target.is_file() and target.stat().st_size == info.size_bytes:
        return info
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ImageInfo(info.sha256, info.path, info.format, info.width, info.height, info.size_bytes, created=True)


@lru_cache(maxsize=256)
def _thumbnail(path: str, mtime: float, max_side: int) -> str:
    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_data_uri(path: str | Path | None, max_side: int = 720) -> str | None:
    """A JPEG data URI of the image (at most ``max_side`` px), cached by path and mtime;
    None when there is no image or it cannot be read (the page says so)."""
    if not path:
        return None
    p = Path(path)
    try:
        return _thumbnail(str(p), p.stat().st_mtime, max_side)
    except (OSError, ValueError):
        return None
