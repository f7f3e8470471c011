"""core.files.built_folder: a folder is replaced whole or not at all."""

from __future__ import annotations

import pytest

from core.files import built_folder


def test_a_built_folder_replaces_the_old_one_whole_and_an_error_leaves_it(tmp_path):
    dest = tmp_path / "model"
    with built_folder(dest) as work:
        (work / "a.txt").write_text("one")
    assert (dest / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError):
        with built_folder(dest) as work:
            (work / "b.txt").write_text("half")
            raise RuntimeError("killed while writing")
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt"]  # the old folder, untouched
    with built_folder(dest) as work:
        (work / "c.txt").write_text("two")
    assert sorted(p.name for p in dest.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no work or retired folder left
