"""Training options of the student, one frozen dataclass (stored with every saved model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["TrainConfig"]

SIDES = ("target", "source")
CONFIDENCE_MODES = ("mean", "min")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (and run) a student token classifier.

    Two ways to use the encoder:

    * ``finetune_encoder=False`` (default, feature-based; Devlin et al. 2019, sec. 5.3): the
      encoder is frozen, the mean of its last ``feature_layers`` hidden layers is computed
      ONCE per training sentence, and a small head (linear reduction to ``head_hidden``,
      one transformer layer, linear) is trained on it for many epochs. On a 2-core CPU this is the only way to give the head the
      several hundred updates it needs: fine-tuning e5-small needed ~750 steps (10 epochs of
      600 sentences) to reach its F1 on Europarl, i.e. hours of CPU, while the feature pass
      costs about one forward epoch.
    * ``finetune_encoder=True``: the whole encoder is fine-tuned with a linear head (the
      usual HF token classifier), for GPUs. ``freeze_embeddings`` keeps the embedding
      matrix (96M of e5-small's 118M parameters) fixed. The head gets its own, higher rate
      (``head_learning_rate``): e5-small's last hidden states are small (norm ~5, against
      ~15-20 for BERT-base), so at an encoder-sized rate a few hundred steps do not even
      learn the tag prior, while a high rate for the whole encoder makes it diverge.
    """

    encoder: str | None = None  # HF id or folder; None = settings().encoder (converted e5-small)
    side: str = "target"  # which sentence of each Item to learn from / predict
    finetune_encoder: bool = False  # False: frozen encoder features + small head (CPU friendly)
    feature_layers: int = 4  # frozen mode: how many last hidden layers are averaged
    head_hidden: int = 256  # frozen mode: width of the head's transformer layer
    freeze_embeddings: bool = True  # fine-tune mode: keep the embedding matrix fixed
    epochs: int = 10
    learning_rate: float = 5e-5  # fine-tune mode: encoder weights
    head_learning_rate: float = 1e-3  # the head (and the image projection)
    batch_size: int = 16
    seed: int = 13
    max_subwords: int = 256  # window budget incl. special tokens (and the image prefix)
    patience: int = 3  # epochs without dev F1 gain before stopping (needs dev items)
    w_gold: float = 1.0  # loss weight of tokens from gold (human) items
    w_silver: float = 1.0  # loss weight of tokens from silver (projected/teacher) items
    silver_threshold: float = 0.3  # silver spans below this confidence are left out of the loss
    dropout: float = 0.25
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    device: str = "auto"  # "auto" = cuda when available, else cpu
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    image_encoder: str | None = None  # set to fuse image features (e.g. "efficientnet-lite0")
    confidence: str = "mean"  # span confidence: mean or min of its words' tag probabilities

    def __post_init__(self) -> None:
        problems = []
        if self.side not in SIDES:
            problems.append(f"side must be one of {SIDES}, not {self.side!r}")
        if self.confidence not in CONFIDENCE_MODES:
            problems.append(f"confidence must be one of {CONFIDENCE_MODES}, not {self.confidence!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.feature_layers < 1 or self.head_hidden < 4 or self.head_hidden % 4:
            problems.append("feature_layers must be at least 1 and head_hidden a multiple of 4 (4 attention heads)")
        if self.max_subwords < 8:
            problems.append("max_subwords must be at least 8")
        if self.patience < 1:
            problems.append("patience must be at least 1")
        if not (self.learning_rate > 0 and self.head_learning_rate > 0):
            problems.append("learning rates must be positive")
        for name in ("w_gold", "w_silver", "weight_decay"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        for name in ("silver_threshold", "dropout", "warmup_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be between 0 and 1")
        if self.threads is not None and self.threads < 1:
            problems.append("threads must be at least 1")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild from ``to_dict``; unknown keys (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
