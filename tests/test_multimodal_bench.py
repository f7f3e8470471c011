"""``bench multimodal`` on a tiny made-up Twitter-2015/2017 folder (no real corpus with free
pictures is reachable here): the layout is read, pictures matched, both students trained."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from core.errors import BenchError
from core.student.multimodal_bench import bench_multimodal
from tests.test_images import draw_images
from tests.test_student import fast_config, make_tiny_encoder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert-mm"))


def twitter_folder(root, n_train: int = 8, missing: int = 1):
    """The same words are a person beside the red picture and a place beside the noise."""
    root.mkdir()
    red, noise = draw_images(root / "pics")
    (root / "pics" / "red.png").rename(root / "pics" / "100.png")
    (root / "pics" / "noise.jpg").rename(root / "pics" / "200.jpg")

    def split(name: str, n: int, extra_missing: int = 0) -> None:
        lines = []
        for i in range(n + extra_missing):
            imgid = "300" if i >= n else ("100.png" if i % 2 == 0 else "200")
            tag = "B-PER" if i % 2 == 0 else "B-LOC"
            lines += [f"IMGID:{imgid}", f"anna\t{tag}", "met\tO", "us\tO", ""]
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    split("train.txt", n_train, missing)
    split("valid.txt", 2)
    split("test.txt", 4)
    return root


def test_text_only_and_image_fused_students_are_scored_on_the_test_file(lb_env, tmp_path, tiny):
    folder = twitter_folder(tmp_path / "twitter")
    result = bench_multimodal(folder, config=fast_config(tiny, epochs=3), seeds=1)
    assert result["sentences"] == {"train": 9, "dev": 2, "test": 4}
    assert result["with_image"] == {"train": 8, "dev": 2, "test": 4}  # IMGID:300 has no picture
    assert result["missing_images"] == {"train": 1} and "300.jpg (not in the images)" in result["missing_images_first"]["train"][0]
    for key in ("text_only_f1", "image_fused_f1"):
        assert 0.0 <= result[key] <= 1.0 and len(result["per_seed"][key.removesuffix("_f1")]) == 1
    assert result["image_minus_text"] == round(result["image_fused_f1"] - result["text_only_f1"], 4)
    json.dumps(result)


def test_the_cli_names_a_folder_without_pictures(lb_env, tmp_path, capsys):
    folder = twitter_folder(tmp_path / "twitter")
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    assert main(["bench", "multimodal", "--data", str(folder), "--images", str(empty)]) != 0
    assert "no training sentence has its picture" in capsys.readouterr().err
    with pytest.raises(BenchError, match="no test file"):
        (folder / "test.txt").unlink()
        bench_multimodal(folder, config=fast_config("unused"))
