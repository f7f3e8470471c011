"""Frozen-encoder features of student windows, computed once per window and cached, so a
training and the predictions after it (or several trainings on the same sentences) share
one encoder pass."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch

from core.student.data import Window
from core.student.model import StudentModel, collate

__all__ = ["FEATURE_CACHE_WINDOWS", "window_features"]

# Frozen-mode features of recent windows, shared by the trainings of one process (a benchmark
# trains several students on the same sentences with different labels). Float16 on the CPU.
_FEATURE_CACHE: "OrderedDict[tuple, torch.Tensor]" = OrderedDict()
FEATURE_CACHE_WINDOWS = 3000

def window_features(model: StudentModel, windows: Sequence[Window], pad_id: int, device: str, batch_size: int = 32) -> list[torch.Tensor]:
    """Frozen encoder features ``[len(input_ids), dim]`` of every window (cached per process,
    keyed by the folder/id the encoder was loaded from, the layers used and the device)."""
    key = (str(getattr(model.encoder.config, "name_or_path", "") or id(model.encoder)), model.feature_layers, device)
    out: list[torch.Tensor | None] = [None] * len(windows)
    todo = []
    for i, w in enumerate(windows):
        cached = _FEATURE_CACHE.get((key, w.input_ids))
        if cached is not None:
            _FEATURE_CACHE.move_to_end((key, w.input_ids))
            out[i] = cached
        else:
            todo.append(i)
    todo.sort(key=lambda i: len(windows[i].input_ids))
    from tqdm import tqdm

    for start in tqdm(range(0, len(todo), batch_size), desc="encoder features", unit="batch", leave=False, disable=not todo):
        chunk = todo[start : start + batch_size]
        batch = collate([windows[i] for i in chunk], pad_id, device)
        feats = model.features(batch["input_ids"], batch["attention_mask"]).to("cpu", torch.float16)
        for row, i in enumerate(chunk):
            f = feats[row, : len(windows[i].input_ids)].clone()
            out[i] = f
            _FEATURE_CACHE[(key, windows[i].input_ids)] = f
    while len(_FEATURE_CACHE) > FEATURE_CACHE_WINDOWS:
        _FEATURE_CACHE.popitem(last=False)
    return out  # type: ignore[return-value]
