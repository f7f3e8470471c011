"""Exports that carry their images (issue #14, item 7): references relative to an ``images``
folder beside the file (the web download: an images zip), and ``pipeline run --images``
imports them again, on another machine, with the same image bytes."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cli.main import main as cli_main
from core.data import Item, Sentence, make_span
from core.transfer import export_download
from db.engine import dispose_engine, init_db, session_scope
from db.items import import_items, item_ids, load_items
from db.projects import create_project, get_project
from services.export import export_selection
from services.projects import import_upload


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (5, 4), colour).save(path, format="PNG")
    return path


@pytest.fixture()
def project(lb_env: Path, tmp_path: Path):  # noqa: ANN201
    url = f"sqlite:///{tmp_path / 'a.db'}"
    init_db(url)
    sent = Sentence.from_words(["Anna", "lives", "in", "Berlin"], "en")
    items = [Item(f"i{k}", sent, [make_span(sent, 0, 1, "PER")], image=str(_png(tmp_path / "src" / f"p{k}.png", (k * 60, 10, 10))))
             for k in range(3)] + [Item("noimage", sent)]  # fmt: skip
    items[2] = items[2].with_(image=items[0].image)  # two items, one image
    with session_scope(url) as s:
        pid = create_project(s, "pics", "en", "de", ["PER"]).id
        import_items(s, pid, items)  # into LABELBRIDGE_DATA/media, where export finds them
    yield url, pid
    dispose_engine(url)


def _digests(url: str, name: str) -> list[str | None]:
    with session_scope(url) as s:
        records = load_items(s, item_ids(s, get_project(s, name).id))
        return [hashlib.sha256(r.image_path.read_bytes()).hexdigest() if r.image_path else None for r in records]


def test_cli_export_writes_relative_images_and_run_images_reads_them(project, tmp_path: Path, capsys) -> None:
    url, _pid = project
    out = tmp_path / "out" / "pics.jsonl"
    assert cli_main(["export", "--db", url, "--project", "pics", "--format", "jsonl", "--side", "source", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    refs = [r.get("image") for r in rows]
    assert all(ref is None or (ref.startswith("images/") and not Path(ref).is_absolute()) for ref in refs), refs
    assert refs[0] == refs[2] and refs[3] is None and len({refs[0], refs[1]}) == 2
    assert "with 2 image(s) in" in capsys.readouterr().err
    assert sorted(p.name for p in (out.parent / "images").iterdir()) == sorted({Path(r).name for r in refs if r})
    # Moved to another machine (another folder, a fresh database): the images come along.
    moved = tmp_path / "elsewhere"
    shutil.copytree(out.parent, moved)
    shutil.rmtree(out.parent)
    url2 = f"sqlite:///{tmp_path / 'b.db'}"
    try:
        base = ["pipeline", "run", "--db", url2, "--src", "en", "--tgt", "de", "--teacher", "gold", "--no-progress"]
        capsys.readouterr()
        # (the run itself then stops: these items have no translation and no translator was given)
        assert cli_main([*base, "--project", "copy", "--input", str(moved / "pics.jsonl"), "--images", str(moved / "images")]) == 2
        assert "imported 4 item(s)" in capsys.readouterr().err
        assert _digests(url2, "copy") == _digests(url, "pics")
        # without --images the input's own folder is used
        assert cli_main([*base, "--project", "copy2", "--input", str(moved / "pics.jsonl")]) == 2
        assert _digests(url2, "copy2") == _digests(url, "pics")
        capsys.readouterr()
        assert cli_main([*base, "--project", "copy3", "--input", str(moved / "pics.jsonl"), "--images", str(tmp_path / "src")]) == 2
        assert "images not found" in capsys.readouterr().err
    finally:
        dispose_engine(url2)


def test_web_download_has_an_images_zip_that_the_upload_takes(project, tmp_path: Path) -> None:
    url, pid = project
    with session_scope(url) as s:
        items = export_selection(s, pid)
    download = export_download(items, "jsonl", tmp_path / "dl", "pics")
    text = download.data.decode("utf-8")
    assert str(tmp_path) not in text  # no server path leaves in the file
    images = download.extras["pics-images.zip"]
    with zipfile.ZipFile(io.BytesIO(images)) as zf:
        assert sorted(zf.namelist()) == sorted({json.loads(line)["image"] for line in text.splitlines() if "image" in json.loads(line)})
    with session_scope(url) as s:
        other = create_project(s, "uploaded", "en", "de", ["PER"]).id
        result = import_upload(s, other, "pics.jsonl", download.data, images_zip=images)
        assert (result.errors, result.added) == ([], 4)
    assert _digests(url, "uploaded") == _digests(url, "pics")
