"""``bench multimodal``: does the picture help the student? Text-only vs image-fused F1.

Reads a folder in the Twitter-2015/2017 multimodal NER layout (Zhang et al. 2018, Lu et al.
2018): ``train.txt``, ``dev.txt`` or ``valid.txt``, ``test.txt`` (CoNLL columns with an
``IMGID:<id>`` line before each sentence) and the pictures ``<id>.jpg`` anywhere below the
folder or an ``images`` folder given apart. The same student is trained twice per seed: on
the text alone, and with the picture fused as a prefix token (``TrainConfig.image_encoder``),
and both are scored strictly on the test file. A sentence whose picture is missing still
counts (the fused model uses its learned no-image vector) and the JSON says how many.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.data import Item
from core.errors import BenchError
from core.student.config import TrainConfig

__all__ = ["DEFAULT_IMAGE_ENCODER", "bench_multimodal", "read_multimodal_split"]

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
SPLITS = ("train", "dev", "test")


def read_multimodal_split(folder: Path, split: str, images: Path) -> tuple[list[Item], list[str]]:
    """One split's items with their pictures resolved inside ``images``, and the problems
    (``item id: reference (why)``) of those whose picture is missing (their image is dropped)."""
    from core.formats import find_split
    from core.student.transfer_bench import read_gold
    from core.transfer import match_images

    path = find_split(folder, split)
    if path is None:
        if split == "dev":
            return [], []
        raise BenchError(f"{folder}: no {split} file ({split}.txt, .conll, .conll02 or .jsonl; dev may be valid.txt)")
    items = read_gold(str(path), None)
    matched, problems = match_images(items, images)
    # a found picture comes back as the resolved (absolute) path; a missing one as it was
    return [it if it.image is None or Path(it.image).is_absolute() else it.with_(image=None) for it in matched], problems


def _score(student: Any, test: Sequence[Item]) -> float:
    from core.metrics import item_scores
    from core.student.inference import predict

    return round(item_scores(test, predict(student, [it.source for it in test], [it.image for it in test]), side="source")["f1"], 4)


def bench_multimodal(
    data_dir: str | Path,
    images_dir: str | Path | None = None,
    config: TrainConfig | None = None,
    *,
    image_encoder: str = DEFAULT_IMAGE_ENCODER,
    seeds: int = 1,
) -> dict[str, Any]:
    """Text-only vs image-fused student on one Twitter-layout folder (module docstring)."""
    from core.student.train import train_student

    folder = Path(data_dir)
    if not folder.is_dir():
        raise BenchError(f"--data {data_dir}: not a folder")
    images = Path(images_dir) if images_dir else folder
    if not images.is_dir():
        raise BenchError(f"--images {images_dir}: not a folder")
    if seeds < 1:
        raise BenchError(f"--seeds must be at least 1, not {seeds}")
    config = replace(config or TrainConfig(), side="source")
    started = time.perf_counter()
    splits = {name: read_multimodal_split(folder, name, images) for name in SPLITS}
    train, dev, test = (splits[name][0] for name in SPLITS)
    with_image = {name: sum(it.image is not None for it in items) for name, (items, _) in splits.items()}
    if not with_image["train"]:
        raise BenchError(f"{folder}: no training sentence has its picture in {images} (IMGID:<id> lines and <id>.jpg files)")
    scores: dict[str, list[float]] = {"text_only": [], "image_fused": []}
    for k in range(seeds):
        for name, image_setting in (("text_only", None), ("image_fused", image_encoder)):
            run = replace(config, seed=config.seed + k, image_encoder=image_setting)
            text_items = train if image_setting else [it.with_(image=None) for it in train]
            text_dev = dev if image_setting else [it.with_(image=None) for it in dev]
            student = train_student(text_items, text_dev, run)
            test_items = test if image_setting else [it.with_(image=None) for it in test]
            scores[name].append(_score(student, test_items))
    return {
        "bench": "multimodal",
        "data": str(folder),
        "images": str(images),
        "image_encoder": image_encoder,
        "sentences": {name: len(items) for name, (items, _) in splits.items()},
        "with_image": with_image,
        "missing_images": {name: len(problems) for name, (_, problems) in splits.items() if problems},
        "missing_images_first": {name: problems[:5] for name, (_, problems) in splits.items() if problems},
        "text_only_f1": round(float(np.mean(scores["text_only"])), 4),
        "image_fused_f1": round(float(np.mean(scores["image_fused"])), 4),
        "image_minus_text": round(float(np.mean(scores["image_fused"]) - np.mean(scores["text_only"])), 4),
        "per_seed": scores,
        "std": {name: round(float(np.std(v)), 4) for name, v in scores.items()},
        "seeds": [config.seed + k for k in range(seeds)],
        "config": {k: v for k, v in config.to_dict().items() if k not in ("side", "seed", "image_encoder")},
        "seconds": round(time.perf_counter() - started, 1),
    }
