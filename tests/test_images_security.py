"""Image paths cannot leave the images folder (issue #14, item 8).

An import may only read a regular file inside the folder that governs it (the unpacked
zip or the server folder), at most the size limit, and the web import's errors never tell
a missing server file from a forbidden one nor echo a server path. The command line (a
trusted local user, no folder) may still name absolute paths, but FIFOs and devices are
refused before they are opened.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

import core.media
from core.data import Item, Sentence
from core.formats import write
from core.media import ImageError, contained_path, read_image_file, store_image
from core.transfer import ArchiveError, match_images, unpack_images
from db import items as db_items
from db import models as orm
from db.engine import dispose_engine, init_db, session_scope
from db.errors import ItemImportError
from db.projects import create_project
from services.projects import ImportResult, import_upload


@pytest.fixture()
def env(lb_env: Path):  # noqa: ANN201 (a generator fixture)
    """A migrated private database and one project; yields (url, project id, media folder)."""
    url = os.environ["LABELBRIDGE_DB"]
    init_db(url)
    with session_scope(url) as s:
        pid = create_project(s, "secure", "en", "de", ["PER"]).id
    yield url, pid, lb_env / "media"
    dispose_engine(url)


def _png(path: Path, size: tuple[int, int] = (6, 4), noise: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.effect_noise(size, 60).convert("RGB") if noise else Image.new("RGB", size, (20, 120, 200))
    img.save(path, format="PNG")
    return path


def _items(*images: str | None) -> list[Item]:
    return [Item(f"i{k}", Sentence.from_words(["Anna", "sleeps", f"#{k}"], "en"), image=img) for k, img in enumerate(images)]


def _jsonl(tmp_path: Path, *images: str | None) -> bytes:
    """A hostile file: the image references exactly as given (an export would make them portable)."""
    out = write(_items(*images), tmp_path / "hostile.jsonl", "jsonl")
    return out.read_bytes()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _stored(url: str, media: Path) -> tuple[int, int, list[Path]]:
    """(items, image rows, files in the media store): all zero after a refused import."""
    with session_scope(url) as s:
        n_items = s.scalar(select(func.count()).select_from(orm.Item))
        n_images = s.scalar(select(func.count()).select_from(orm.Image))
    return n_items, n_images, [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def _upload(url: str, pid: int, data: bytes, **kwargs) -> ImportResult:  # noqa: ANN003
    with session_scope(url) as s:
        return import_upload(s, pid, "items.jsonl", data, **kwargs)


def _assert_refused(result: ImportResult, *hidden: Path) -> None:
    assert result.errors and result.added == 0
    text = "\n".join(result.errors)
    assert "not found or not allowed" in text or "not in the images" in text, text
    for path in hidden:
        assert str(path) not in text, text


# --------------------------------------------------------------------------- leaving the folder


def test_dotdot_reference_outside_the_folder_is_refused_and_nothing_stored(env, tmp_path: Path) -> None:
    url, pid, media = env
    outside = _png(tmp_path / "outside.png")
    folder = tmp_path / "x" / "images"
    _png(folder / "inside.png")
    result = _upload(url, pid, _jsonl(tmp_path, "inside.png", "../../outside.png"), images_dir=str(folder))
    _assert_refused(result, outside, tmp_path)
    assert "../../outside.png" in "\n".join(result.errors)  # the user's own reference, as written
    assert _stored(url, media) == (0, 0, [])
    # The same reference through import_items with a folder (the demo, a trusted caller): refused too.
    with session_scope(url) as s, pytest.raises(ItemImportError, match="outside the image folder"):
        db_items.import_items(s, pid, _items("../../outside.png"), media, image_root=folder)
    # The web flag: one answer for a forbidden file and a missing one.
    with session_scope(url) as s, pytest.raises(ItemImportError) as err:
        db_items.import_items(s, pid, _items("../../outside.png", "../../missing.png"), media, image_root=folder, trusted_paths=False)
    assert err.value.errors == [
        "position 0 (id 'i0'): image ../../outside.png not found or not allowed",
        "position 1 (id 'i1'): image ../../missing.png not found or not allowed",
    ]
    assert _stored(url, media) == (0, 0, [])


def test_absolute_path_in_a_web_import_is_refused_without_echoing_it(env, tmp_path: Path) -> None:
    url, pid, media = env
    secret = _png(tmp_path / "server" / "review.png")  # a real image the server could read
    folder = tmp_path / "images"
    _png(folder / "a.png")
    data = _jsonl(tmp_path, "a.png", str(secret))
    for kwargs in ({"images_dir": str(folder)}, {"images_zip": _zip({"a.png": (folder / "a.png").read_bytes()})}, {}):
        result = _upload(url, pid, data, **kwargs)
        _assert_refused(result, secret, secret.parent)
    # Even an absolute path inside the governing folder: the folder names the files, not the server.
    _assert_refused(_upload(url, pid, _jsonl(tmp_path, str(folder / "a.png")), images_dir=str(folder)), folder)
    # Missing and existing server files read the same.
    missing = _upload(url, pid, _jsonl(tmp_path, str(tmp_path / "server" / "nothing.png")))
    found = _upload(url, pid, _jsonl(tmp_path, str(secret)))
    assert [e.replace("nothing.png", "X") for e in missing.errors] == [e.replace("review.png", "X") for e in found.errors]
    # A server folder that is not there says so without the path.
    _assert_refused(_upload(url, pid, data, images_dir=str(tmp_path / "no-such-folder")), tmp_path)
    assert _stored(url, media) == (0, 0, [])


def test_symlink_inside_the_folder_pointing_outside_is_refused(env, tmp_path: Path) -> None:
    url, pid, media = env
    outside = _png(tmp_path / "outside.png")
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "link.png").symlink_to(outside)
    (folder / "sub").symlink_to(tmp_path, target_is_directory=True)
    _assert_refused(_upload(url, pid, _jsonl(tmp_path, "link.png"), images_dir=str(folder)), outside, tmp_path)
    _assert_refused(_upload(url, pid, _jsonl(tmp_path, "sub/outside.png"), images_dir=str(folder)), outside, tmp_path)
    with session_scope(url) as s, pytest.raises(ItemImportError, match="outside the image folder"):
        db_items.import_items(s, pid, _items("link.png"), media, image_root=folder)
    assert _stored(url, media) == (0, 0, [])
    assert contained_path(folder / "link.png", folder) is None
    assert contained_path(folder / "x" / ".." / "a.png", folder) == (folder / "a.png").resolve()


def test_zip_member_outside_the_folder_is_refused(env, tmp_path: Path) -> None:
    url, pid, media = env
    png = _png(tmp_path / "p.png").read_bytes()
    for name in ("../evil.png", "pics/../../evil.png", "/abs/evil.png", "C:/evil.png"):
        result = _upload(url, pid, _jsonl(tmp_path, "evil.png"), images_zip=_zip({"ok.png": png, name: png}))
        assert result.errors == [f"the images archive has an unsafe path {name!r}"]
    with pytest.raises(ArchiveError, match="unsafe path"):
        unpack_images(_zip({"../evil.png": png}), tmp_path / "unpacked")
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "unpacked").exists()
    with pytest.raises(ArchiveError, match="cannot be unpacked"):  # a file where a folder must go
        unpack_images(_zip({"a": b"x", "a/b.png": png}), tmp_path / "clash")
    assert not (tmp_path / "clash").exists()
    assert _stored(url, media) == (0, 0, [])


# --------------------------------------------------------------------------- what is read


@pytest.mark.timeout(10)
def test_devices_and_fifos_are_refused_before_opening(env, tmp_path: Path) -> None:
    url, pid, media = env
    fifo = tmp_path / "images" / "pipe.png"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo, tmp_path):
        with pytest.raises(ImageError, match="not a regular file"):
            read_image_file(path)
        with pytest.raises(ImageError, match="not a regular file"):
            store_image(path, media)
    # The command line (trusted, absolute paths allowed): a precise refusal, at once.
    with session_scope(url) as s, pytest.raises(ItemImportError, match="not a regular file"):
        db_items.import_items(s, pid, _items("/dev/zero", str(fifo)), media)
    # The web import: the same answer as for a missing file.
    _assert_refused(_upload(url, pid, _jsonl(tmp_path, "pipe.png"), images_dir=str(fifo.parent)), fifo)
    _assert_refused(_upload(url, pid, _jsonl(tmp_path, "/dev/zero")))
    with session_scope(url) as s, pytest.raises(ItemImportError) as err:
        db_items.import_items(s, pid, _items("pipe.png"), media, image_root=fifo.parent, trusted_paths=False)
    assert err.value.errors == ["position 0 (id 'i0'): image pipe.png not found or not allowed"]
    assert _stored(url, media) == (0, 0, [])


@pytest.mark.timeout(10)
def test_a_file_over_the_limit_is_refused_without_reading_it_whole(env, tmp_path: Path, monkeypatch) -> None:
    url, pid, media = env
    folder = tmp_path / "images"
    big = _png(folder / "big.png", (64, 64), noise=True)
    monkeypatch.setattr(core.media, "MAX_IMAGE_BYTES", 100)  # looked up at call time
    result = _upload(url, pid, _jsonl(tmp_path, "big.png"), images_dir=str(folder))
    assert result.errors == [f"position 0 (id 'i0'): image big.png: {big.stat().st_size} bytes is more than the limit of 100 bytes"]
    assert _stored(url, media) == (0, 0, [])
    # A file whose size the file system does not tell (st_size 0): at most limit + 1 bytes are read.
    status = Path("/proc/self/status")
    if status.is_file():
        asked: list[int] = []
        real_read = os.read

        def counting_read(fd: int, n: int) -> bytes:
            asked.append(n)
            return real_read(fd, n)

        monkeypatch.setattr(os, "read", counting_read)
        with pytest.raises(ImageError, match="more than the limit of 16 bytes"):
            read_image_file(status, max_bytes=16)
        monkeypatch.setattr(os, "read", real_read)
        assert sum(asked) <= 17
    # A huge sparse file with the default limit: refused from its size, nothing read.
    monkeypatch.undo()
    sparse = tmp_path / "sparse.png"
    try:
        with open(sparse, "wb") as fh:
            fh.truncate(64 * 1024**3)
    except OSError:
        pytest.skip("no sparse files here")
    with pytest.raises(ImageError, match=r"sparse.png: \d+ bytes is more than the limit"):
        store_image(sparse, media)


# --------------------------------------------------------------------------- what still works


def test_images_inside_the_folder_still_import(env, tmp_path: Path) -> None:
    url, pid, media = env
    folder = tmp_path / "images"
    _png(folder / "pics" / "a.png")
    _png(folder / "deep" / "b.png", (5, 5))
    (folder / "pics" / "alias.png").symlink_to(folder / "pics" / "a.png")  # a link that stays inside
    result = _upload(url, pid, _jsonl(tmp_path, "pics/a.png", "b.png", "pics/alias.png", None), images_dir=str(folder))
    assert (result.errors, result.added, result.images) == ([], 4, 3)
    zipped = _zip({"top/c.png": _png(tmp_path / "c.png", (7, 3)).read_bytes()})
    result = _upload(url, pid, _jsonl(tmp_path, "c.png").replace(b'"i0"', b'"z0"'), images_zip=zipped)
    assert (result.errors, result.added, result.images) == ([], 1, 1)
    matched, problems = match_images(_items("pics/a.png", "../images/pics/a.png"), folder)
    assert problems == [] and {it.image for it in matched} == {str((folder / "pics" / "a.png").resolve())}
    assert _stored(url, media)[:2] == (5, 3)
