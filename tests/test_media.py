"""core.media: content-addressed image store with Pillow validation."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from core.media import MAX_IMAGE_PIXELS, ImageError, store_image


def _png(width: int = 8, height: int = 6, color: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb never has to be built)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_store_png_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    media = tmp_path / "media"
    data = _png()
    first = store_image(data, media)
    assert first.format == "PNG" and (first.width, first.height) == (8, 6)
    assert first.size_bytes == len(data) and first.created
    assert first.path == f"{first.sha256[:2]}/{first.sha256}.png"
    assert (media / first.path).read_bytes() == data
    again = store_image(data, media)
    assert again.path == first.path and not again.created
    assert sorted(p.name for p in media.rglob("*") if p.is_file()) == [f"{first.sha256}.png"]
    other = store_image(_png(color=(0, 0, 255)), media)
    assert other.sha256 != first.sha256


def test_store_from_path_jpeg_and_gif(tmp_path: Path) -> None:
    for fmt, ext in (("JPEG", "jpg"), ("GIF", "gif"), ("WEBP", "webp"), ("BMP", "bmp")):
        path = tmp_path / f"picture.{ext}"
        Image.new("RGB", (5, 4), (1, 2, 3)).save(path, format=fmt)
        info = store_image(path, tmp_path / "media")
        assert info.format == fmt and info.path.endswith(f".{ext}")


def test_bad_bytes_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image at all")
    with pytest.raises(ImageError, match=r"notes\.png.*not an image"):
        store_image(bad, tmp_path / "media")
    with pytest.raises(ImageError, match="empty"):
        store_image(b"", tmp_path / "media", name="empty.png")
    with pytest.raises(ImageError, match="missing.png.*cannot read"):
        store_image(tmp_path / "missing.png", tmp_path / "media")
    assert not (tmp_path / "media").exists()


def test_truncated_image_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, format="PNG")
    with pytest.raises(ImageError, match="cut.png.*(corrupt|truncated)"):
        store_image(buf.getvalue()[: len(buf.getvalue()) // 2], tmp_path / "media", name="cut.png")


def test_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = _png_header_only(20_000, 20_000)
    assert 20_000 * 20_000 > MAX_IMAGE_PIXELS
    with pytest.raises(ImageError, match=r"bomb.png: too many pixels .*decompression bomb"):
        store_image(bomb, tmp_path / "media", name="bomb.png")  # over Pillow's own limit
    with pytest.raises(ImageError, match=r"wide.png: 8000x8000 = 64000000 pixels .*decompression bomb"):
        store_image(_png_header_only(8000, 8000), tmp_path / "media", name="wide.png")  # over ours only
    with pytest.raises(ImageError, match="pixels"):
        store_image(_png(100, 100), tmp_path / "media", name="small.png", max_pixels=1000)
    with pytest.raises(ImageError, match="bytes is more than the limit"):
        store_image(_png(), tmp_path / "media", name="big.png", max_bytes=10)


def test_unsupported_format_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="TIFF")
    with pytest.raises(ImageError, match="scan.tif: unsupported image format TIFF"):
        store_image(buf.getvalue(), tmp_path / "media", name="scan.tif")
