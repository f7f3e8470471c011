"""The student network: any HF encoder + dropout + a linear tag head, optionally image-aware.

Image fusion: an image vector (core.images) is projected to the hidden size and fed as one
extra PREFIX token in front of the sequence; sentences without a picture get a learned
"no image" vector in that slot. A prefix was chosen over a gate on every token because
attention lets each word decide how much to read from the picture (a caption's "Paris"
can look at the skyline, "the" ignores it), the text path of the pretrained encoder is
left untouched (a gate rescales every hidden state, which hurts when the picture says
nothing), and it costs one position. The logits of the prefix slot are dropped, so the
outputs line up with ``input_ids`` exactly as without images.

A saved student is a folder: ``encoder/`` (the fine-tuned backbone and its tokenizer,
written with HF ``save_pretrained`` so any HF tool can open it), ``head.safetensors``
(classifier and image projection) and ``student.json`` (labels, TrainConfig, history).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from core.student.config import TrainConfig
from core.student.data import IGNORE, Window

__all__ = ["StudentModel", "TrainedStudent", "collate", "load_student", "resolve_device", "save_student"]

FORMAT_VERSION = 1
META_FILE = "student.json"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class StudentModel(nn.Module):
    """Encoder + dropout + linear head over every subword; optional image prefix token."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1, image_dim: int | None = None):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)
        self.image_dim = image_dim
        if image_dim:
            self.image_projection = nn.Linear(image_dim, hidden)
            self.null_image = nn.Parameter(torch.randn(hidden) * 0.02)

    @property
    def num_labels(self) -> int:
        return self.classifier.out_features

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_features: torch.Tensor | None = None,
        has_image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``[batch, len(input_ids), num_labels]``."""
        if not self.image_dim:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.classifier(self.dropout(hidden))
        batch = input_ids.shape[0]
        embeds = self.encoder.get_input_embeddings()(input_ids)
        prefix = self.null_image.to(embeds.dtype).expand(batch, -1)
        if image_features is not None:
            projected = self.image_projection(image_features.to(embeds.dtype))
            present = has_image if has_image is not None else torch.ones(batch, dtype=torch.bool, device=embeds.device)
            prefix = torch.where(present.unsqueeze(-1), projected, prefix)
        embeds = torch.cat([prefix.unsqueeze(1), embeds], dim=1)
        mask = torch.cat([attention_mask.new_ones(batch, 1), attention_mask], dim=1)
        hidden = self.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state[:, 1:]
        return self.classifier(self.dropout(hidden))

    def head_state(self) -> dict[str, torch.Tensor]:
        """Everything but the encoder (which is saved with save_pretrained)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}


@dataclass
class TrainedStudent:
    model: StudentModel
    tokenizer: Any
    labels: list[str]
    config: TrainConfig
    device: str = "cpu"
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per epoch
    best_epoch: int | None = None
    image_dim: int | None = None


def collate(
    windows: Sequence[Window],
    pad_id: int,
    device: str,
    image_vectors: dict[str, Any] | None = None,
    image_dim: int | None = None,
) -> dict[str, torch.Tensor]:
    """Pad a batch of windows (right padding) into tensors on ``device``."""
    length = max(len(w.input_ids) for w in windows)
    n = len(windows)
    input_ids = torch.full((n, length), pad_id, dtype=torch.long)
    attention = torch.zeros((n, length), dtype=torch.long)
    labels = torch.full((n, length), IGNORE, dtype=torch.long)
    weights = torch.zeros((n, length), dtype=torch.float32)
    for i, w in enumerate(windows):
        k = len(w.input_ids)
        input_ids[i, :k] = torch.tensor(w.input_ids)
        attention[i, :k] = 1
        labels[i, :k] = torch.tensor(w.labels)
        weights[i, :k] = w.weight
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "weights": weights}
    if image_dim:
        features = torch.zeros((n, image_dim), dtype=torch.float32)
        present = torch.zeros(n, dtype=torch.bool)
        for i, w in enumerate(windows):
            if w.image is not None and image_vectors is not None and w.image in image_vectors:
                features[i] = torch.as_tensor(image_vectors[w.image])
                present[i] = True
        batch["image_features"] = features
        batch["has_image"] = present
    return {k: v.to(device) for k, v in batch.items()}


# ---------------------------------------------------------------------- save / load


def save_student(student: TrainedStudent, directory: str | os.PathLike) -> Path:
    """Write the student to ``directory`` (replaced whole; never left half-written)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        student.model.encoder.save_pretrained(work / ENCODER_DIR, safe_serialization=True)
        student.tokenizer.save_pretrained(work / ENCODER_DIR)
        save_file({k: v.detach().cpu().contiguous() for k, v in student.model.head_state().items()}, work / HEAD_FILE)
        meta = {
            "format": FORMAT_VERSION,
            "labels": student.labels,
            "config": student.config.to_dict(),
            "image_dim": student.image_dim,
            "best_epoch": student.best_epoch,
            "history": student.history,
        }
        (work / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(work, directory)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return directory


def load_student(directory: str | os.PathLike, device: str = "auto") -> TrainedStudent:
    """Read a folder written by ``save_student``; the model is in eval mode."""
    from safetensors.torch import load_file

    from core.encoder import load_encoder

    directory = Path(directory)
    meta_path = directory / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta_path}: not a saved student ({exc})") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{meta_path}: student format {meta.get('format')!r}, this version reads {FORMAT_VERSION}")
    config = TrainConfig.from_dict(meta["config"])
    device = resolve_device(device)
    tokenizer, encoder = load_encoder(str(directory / ENCODER_DIR), device)
    model = StudentModel(encoder, len(meta["labels"]), config.dropout, meta.get("image_dim"))
    missing, unexpected = model.load_state_dict(load_file(directory / HEAD_FILE), strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise ValueError(f"{directory / HEAD_FILE}: head does not fit (missing {missing}, unexpected {unexpected})")
    model.to(device).eval()
    return TrainedStudent(
        model=model,
        tokenizer=tokenizer,
        labels=list(meta["labels"]),
        config=config,
        device=device,
        history=list(meta.get("history") or []),
        best_epoch=meta.get("best_epoch"),
        image_dim=meta.get("image_dim"),
    )
