"""The student network: any HF encoder + a tag head, optionally image-aware.

Two modes (TrainConfig.finetune_encoder): the encoder frozen, the mean of a range of its
hidden layers (TrainConfig.feature_layers) feeding a small head (linear reduction + one
transformer layer + linear; default, cheap on a CPU), or the encoder fine-tuned under a
linear head (the usual HF token classifier). A BiLSTM head was tried first; on a shared 2-core CPU its step-by-step
recurrence ran 4x slower than the attention layer, which sees the whole sentence in a
few matrix products.

Image fusion: an image vector (core.images) is projected and fed as one extra PREFIX
position in front of the sequence of the first trainable sequence layer (the encoder when
it is fine-tuned, the head's transformer layer when it is frozen); sentences without a picture get a learned
"no image" vector in that slot. A prefix was chosen over a gate on every token because the
sequence layer then decides per word how much to read from the picture (a caption's
"Paris" can use the skyline, "the" ignores it), the text features are left untouched (a
gate rescales every hidden state, which hurts when the picture says nothing), and it costs
one position. The outputs of the prefix slot are dropped, so logits line up with
``input_ids`` exactly as without images.

A saved student is a folder: ``head.safetensors`` (head and image projection),
``student.json`` (labels, TrainConfig, history, which encoder) and what of the encoder was
trained. Nothing that stayed as loaded is copied into every model version (e5-small is
~450 MB, its embedding matrix ~370 MB of that): the student names its base encoder
(``config.encoder``; None = the project default, settings().encoder) and stores a
fingerprint of its weights, so loading rebuilds it from there and refuses an encoder that
is missing or is not the one the student was trained on. Encoder storage
(``student.json`` ``encoder_storage``):

* ``reference``: a frozen encoder (feature mode); nothing of it is saved;
* ``trained``: a fine-tuned encoder with frozen embeddings: ``encoder.safetensors`` holds
  every encoder tensor but the frozen embedding matrix (e5-small cut to 9 blocks: ~60 MB);
* ``full``: a fine-tuned encoder with trained embeddings: ``encoder/``, written with HF
  ``save_pretrained`` with its tokenizer, so any HF tool can open it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from core.encoder import frozen_encoder_keys, trainable_copy
from core.student.config import StudentError, TrainConfig
from core.student.data import IGNORE, Window

__all__ = [
    "StudentModel",
    "TrainedStudent",
    "build_model",
    "collate",
    "continued_model",
    "finetune_copy",
    "student_autocast",
    "encoder_fingerprint",
    "load_student",
    "resolve_device",
    "save_student",
]

FORMAT_VERSION = 3  # 3: encoder_storage (trained weights only); 2: a frozen encoder referenced; 1: always copied
READABLE_FORMATS = (1, 2, 3)
META_FILE = "student.json"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"
ENCODER_WEIGHTS_FILE = "encoder.safetensors"


def resolve_layers(layers: tuple[int, int], n_states: int) -> tuple[int, int]:
    """Hidden-state indices ``(first, last)`` made absolute (negative counts from the top)
    and clamped to the encoder's ``n_states`` (so a range meant for a 12-layer encoder
    still works on a shallower one)."""
    first, last = ((i + n_states if i < 0 else i) for i in layers)
    first, last = min(max(first, 0), n_states - 1), min(max(last, 0), n_states - 1)
    if first > last:
        raise StudentError(f"feature layers {layers} select nothing of an encoder with {n_states} hidden states")
    return first, last


def finetune_copy(encoder: nn.Module, config: TrainConfig) -> nn.Module:
    """A trainable copy of a (cached, shared) encoder, cut to ``config.encoder_layers``, its
    embedding matrix shared and frozen with ``freeze_embeddings`` (core.encoder.trainable_copy)."""
    return trainable_copy(encoder, config.encoder_layers, config.freeze_embeddings)


def continued_model(start: "TrainedStudent", labels: Sequence[str], image_dim: int | None) -> "StudentModel":
    """A trainable copy of ``start``'s model for training to go on from (a warm start).

    The output rows of labels ``start`` knows keep their weights; a label it does not know
    gets a fresh row. The frozen embedding matrix stays shared, as in ``finetune_copy``."""
    import copy

    old = start.model
    if (image_dim or None) != (old.image_dim or None):
        raise StudentError(
            f"cannot continue a student {'with' if old.image_dim else 'without'} image features "
            f"{'with' if image_dim else 'without'} them: train from scratch"
        )
    memo: dict[int, Any] = {}
    if not old.finetune_encoder:
        memo[id(old.encoder)] = old.encoder  # frozen mode: the loader's shared encoder, never trained
    else:
        frozen = old.encoder.get_input_embeddings().weight
        if not frozen.requires_grad:
            memo[id(frozen)] = frozen
    model = copy.deepcopy(old, memo)
    for name, p in model.named_parameters():
        if not name.startswith("encoder.") or (old.finetune_encoder and id(p) not in memo):
            p.requires_grad_(True)
    if list(labels) != list(start.labels):
        weight, bias = old.classifier.weight.detach(), old.classifier.bias.detach()
        classifier = nn.Linear(weight.shape[1], len(labels)).to(weight.device, weight.dtype)
        nn.init.normal_(classifier.weight, std=0.02)
        nn.init.zeros_(classifier.bias)
        rows = {tag: i for i, tag in enumerate(start.labels)}
        with torch.no_grad():
            for j, tag in enumerate(labels):
                if tag in rows:
                    classifier.weight[j] = weight[rows[tag]]
                    classifier.bias[j] = bias[rows[tag]]
        model.classifier = classifier
    model.base_fingerprint = old.base_fingerprint
    return model


def student_autocast(model: "StudentModel", config: TrainConfig, device: str) -> Any:
    """A context factory: bf16 autocast for a fine-tuned student where ``config.precision``
    resolves to bf16 (core.encoder.compute_dtype: CPUs with native bf16), else a no-op.
    The frozen-feature mode stays float32 (its features are cached and shared)."""
    import contextlib
    import functools

    from core.encoder import compute_dtype

    if not model.finetune_encoder or compute_dtype(config.precision, device) != torch.bfloat16:
        return contextlib.nullcontext
    return functools.partial(torch.autocast, torch.device(device).type, dtype=torch.bfloat16)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class StudentModel(nn.Module):
    """Encoder + tag head over every subword; optional image prefix token.

    Fine-tune mode: encoder -> dropout -> linear, the image prefix enters the encoder.
    Frozen mode: the mean of hidden layers ``feature_layers`` (first, last; computed
    without gradients, cacheable) -> dropout -> linear reduction -> one transformer layer ->
    dropout -> linear; the image prefix enters that layer, the first trainable sequence
    layer, where every word can attend to it.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_labels: int,
        dropout: float = 0.1,
        image_dim: int | None = None,
        finetune_encoder: bool = True,
        feature_layers: tuple[int, int] = (5, 9),
        head_hidden: int = 256,
    ):
        super().__init__()
        self.encoder = encoder
        self.finetune_encoder = finetune_encoder
        self.base_fingerprint: str | None = None  # fine-tune mode: the encoder it started from (save_student)
        hidden = encoder.config.hidden_size
        n_states = getattr(encoder.config, "num_hidden_layers", 12) + 1  # + the embedding output
        self.feature_layers = resolve_layers(feature_layers, n_states)
        self.dropout = nn.Dropout(dropout)
        if finetune_encoder:
            prefix_dim, head_out = hidden, hidden
        else:  # the encoder is not trained (its features come without gradients)
            self.reduce = nn.Linear(hidden, head_hidden)
            self.mixer = nn.TransformerEncoderLayer(
                head_hidden, nhead=4, dim_feedforward=2 * head_hidden, dropout=dropout, activation="gelu",
                batch_first=True, norm_first=True,
            )  # fmt: skip
            prefix_dim, head_out = head_hidden, head_hidden
        self.classifier = nn.Linear(head_out, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)
        self.image_dim = image_dim
        if image_dim:
            self.image_projection = nn.Linear(image_dim, prefix_dim)
            self.null_image = nn.Parameter(torch.randn(prefix_dim) * 0.02)

    @property
    def num_labels(self) -> int:
        return self.classifier.out_features

    def train(self, mode: bool = True) -> "StudentModel":
        super().train(mode)
        if not self.finetune_encoder:
            self.encoder.eval()  # a frozen encoder gives the same features in training and use
        return self

    def _prefix(self, batch: int, like: torch.Tensor, image_features: torch.Tensor | None, has_image: torch.Tensor | None) -> torch.Tensor:
        prefix = self.null_image.to(like.dtype).expand(batch, -1)
        if image_features is not None:
            projected = self.image_projection(image_features.to(like.dtype))
            present = has_image if has_image is not None else torch.ones(batch, dtype=torch.bool, device=like.device)
            prefix = torch.where(present.unsqueeze(-1), projected, prefix)
        return prefix.unsqueeze(1)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Frozen mode: mean of the hidden layers ``feature_layers`` ``[batch, len, hidden]``."""
        first, last = self.feature_layers
        with torch.no_grad():
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            return torch.stack(out.hidden_states[first : last + 1], dim=0).mean(dim=0)

    def head(
        self,
        features: torch.Tensor,
        attention_mask: torch.Tensor,
        image_features: torch.Tensor | None = None,
        has_image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Frozen mode: logits from precomputed features."""
        x = self.reduce(self.dropout(features.to(self.reduce.weight.dtype)))
        padding = attention_mask == 0
        if self.image_dim:
            x = torch.cat([self._prefix(x.shape[0], x, image_features, has_image), x], dim=1)
            padding = torch.cat([padding.new_zeros(x.shape[0], 1), padding], dim=1)
        out = self.mixer(x, src_key_padding_mask=padding)
        if self.image_dim:
            out = out[:, 1:]
        return self.classifier(self.dropout(out))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_features: torch.Tensor | None = None,
        has_image: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``[batch, len(input_ids), num_labels]`` (frozen mode may pass ``features``)."""
        if not self.finetune_encoder:
            if features is None:
                features = self.features(input_ids, attention_mask)
            return self.head(features, attention_mask, image_features, has_image)
        if not self.image_dim:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.classifier(self.dropout(hidden))
        embeds = self.encoder.get_input_embeddings()(input_ids)
        embeds = torch.cat([self._prefix(input_ids.shape[0], embeds, image_features, has_image), embeds], dim=1)
        mask = torch.cat([attention_mask.new_ones(input_ids.shape[0], 1), attention_mask], dim=1)
        hidden = self.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state[:, 1:]
        return self.classifier(self.dropout(hidden))

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """What the optimizer updates: the head, plus the encoder in fine-tune mode."""
        return [
            (name, p)
            for name, p in self.named_parameters()
            if p.requires_grad and (self.finetune_encoder or not name.startswith("encoder."))
        ]

    def head_state(self) -> dict[str, torch.Tensor]:
        """Everything but the encoder (which is saved with save_pretrained)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}


def build_model(encoder: nn.Module, num_labels: int, config: TrainConfig, image_dim: int | None) -> StudentModel:
    return StudentModel(
        encoder, num_labels, config.dropout, image_dim, config.finetune_encoder, config.feature_layers, config.head_hidden
    )


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
    features: Sequence[torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Pad a batch of windows (right padding) into tensors on ``device``.

    ``features`` (frozen mode, one ``[len, dim]`` tensor per window) are padded alongside.
    """
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
        image_tensor = torch.zeros((n, image_dim), dtype=torch.float32)
        present = torch.zeros(n, dtype=torch.bool)
        for i, w in enumerate(windows):
            if w.image is not None and image_vectors is not None and w.image in image_vectors:
                image_tensor[i] = torch.as_tensor(image_vectors[w.image])
                present[i] = True
        batch["image_features"] = image_tensor
        batch["has_image"] = present
    if features is not None:
        padded = torch.zeros((n, length, features[0].shape[-1]), dtype=torch.float32)
        for i, f in enumerate(features):
            padded[i, : f.shape[0]] = f.float()
        batch["features"] = padded
    return {k: v.to(device) for k, v in batch.items()}


# ---------------------------------------------------------------------- save / load


def encoder_fingerprint(encoder: nn.Module) -> str:
    """A cheap identity of an encoder's weights: sha256 over every tensor's name, shape and
    first 4096 values. Tells "the encoder this head was trained on" from another one
    (a different checkpoint, a re-conversion with other weights) without hashing 450 MB."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        values = tensor.detach().reshape(-1)[:4096].to("cpu", torch.float32).contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)};".encode())
        digest.update(values.numpy().tobytes())
    return digest.hexdigest()


def save_student(student: TrainedStudent, directory: str | os.PathLike) -> Path:
    """Write the student to ``directory`` (replaced whole; never left half-written).

    The encoder is written only when it was fine-tuned; a frozen one is referenced by
    ``config.encoder`` and its fingerprint (module docstring)."""
    from safetensors.torch import save_file

    from core.files import built_folder

    directory = Path(directory)
    with built_folder(directory) as work:
        model = student.model
        storage = encoder_storage(student)
        encoder_meta: dict[str, Any] = {"encoder_storage": storage, "encoder_fingerprint": None}
        if storage == "full":
            model.encoder.save_pretrained(work / ENCODER_DIR, safe_serialization=True)
            student.tokenizer.save_pretrained(work / ENCODER_DIR)
        else:
            base = model.base_fingerprint if storage == "trained" else encoder_fingerprint(model.encoder)
            if base is None:
                raise StudentError("a fine-tuned student without its base encoder's fingerprint cannot be saved as trained weights")
            encoder_meta["encoder_fingerprint"] = base
        if storage == "trained":
            frozen = frozen_encoder_keys(model.encoder)
            trained = {k: v.detach().cpu().contiguous() for k, v in model.encoder.state_dict().items() if k not in frozen}
            save_file(trained, work / ENCODER_WEIGHTS_FILE)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.head_state().items()}, work / HEAD_FILE)
        meta = {
            "format": FORMAT_VERSION,
            "encoder_saved": storage == "full",  # read by format-2 readers
            **encoder_meta,
            "encoder": str(getattr(model.encoder.config, "name_or_path", "") or ""),  # for messages
            "labels": student.labels,
            "config": student.config.to_dict(),
            "image_dim": student.image_dim,
            "best_epoch": student.best_epoch,
            "history": student.history,
        }
        (work / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return directory


def encoder_storage(student: TrainedStudent) -> str:
    """How ``save_student`` keeps the encoder (module docstring): reference, trained or full."""
    if not student.model.finetune_encoder:
        return "reference"
    return "trained" if student.config.freeze_embeddings else "full"


def load_student(directory: str | os.PathLike, device: str = "auto") -> TrainedStudent:
    """Read a folder written by ``save_student``; the model is in eval mode.

    A student whose encoder was frozen loads that encoder from ``config.encoder`` (None:
    settings().encoder); ValueError when it cannot be loaded or its weights are not the
    ones the head was trained on."""
    from safetensors.torch import load_file

    from core.encoder import load_encoder

    directory = Path(directory)
    meta_path = directory / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StudentError(f"{meta_path}: not a saved student ({exc})") from exc
    if meta.get("format") not in READABLE_FORMATS:
        raise StudentError(f"{meta_path}: student format {meta.get('format')!r}, this version reads {READABLE_FORMATS}")
    config = TrainConfig.from_dict({"word_form": "as-is", **meta["config"]})  # saved before word_form: words were read as they were
    device = resolve_device(device)
    storage = meta.get("encoder_storage") or ("full" if meta.get("encoder_saved", True) else "reference")  # formats 1-2
    if storage == "full":
        tokenizer, encoder = load_encoder(str(directory / ENCODER_DIR), device)
    else:
        tokenizer, encoder = _referenced_encoder(meta_path, meta, config, device)
    if storage == "trained":
        encoder = finetune_copy(encoder, config)
        weights = load_file(directory / ENCODER_WEIGHTS_FILE)
        missing, unexpected = encoder.load_state_dict(weights, strict=False)
        frozen = frozen_encoder_keys(encoder)
        if unexpected or set(missing) - frozen:
            raise StudentError(
                f"{directory / ENCODER_WEIGHTS_FILE}: the trained encoder weights do not fit the base encoder "
                f"(missing {sorted(set(missing) - frozen)[:5]}, unexpected {sorted(unexpected)[:5]})"
            )
    model = build_model(encoder, len(meta["labels"]), config, meta.get("image_dim"))
    model.base_fingerprint = meta.get("encoder_fingerprint")
    missing, unexpected = model.load_state_dict(load_file(directory / HEAD_FILE), strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise StudentError(f"{directory / HEAD_FILE}: head does not fit (missing {missing}, unexpected {unexpected})")
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


def _referenced_encoder(meta_path: Path, meta: dict[str, Any], config: TrainConfig, device: str) -> tuple[Any, nn.Module]:
    """The frozen encoder a head-only student names, checked against its fingerprint."""
    from core.config import settings
    from core.encoder import load_encoder

    name = config.encoder if config.encoder is not None else settings().encoder
    try:
        tokenizer, encoder = load_encoder(name, device)
    except (OSError, ValueError) as exc:
        raise StudentError(
            f"{meta_path}: this student keeps only what it trained; its base encoder {name!r} "
            f"(trained with {meta.get('encoder') or name!r}) cannot be loaded: {exc}"
        ) from exc
    expected = meta.get("encoder_fingerprint")
    if expected and encoder_fingerprint(encoder) != expected:
        raise StudentError(
            f"{meta_path}: the encoder at {name!r} is not the one this student's head was trained on "
            f"(weights differ from {meta.get('encoder') or name!r}); restore that encoder or retrain"
        )
    return tokenizer, encoder
