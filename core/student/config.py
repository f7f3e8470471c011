"""Training options of the student, one frozen dataclass (stored with every saved model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from core.encoder import PRECISIONS
from core.errors import LabelBridgeError

__all__ = [
    "StudentError","TrainConfig"]

SIDES = ("target", "source")
WORD_FORMS = ("auto", "as-is", "nfc", "no-marks")  # core.student.data.word_form
CONFIDENCE_MODES = ("mean", "min")


class StudentError(LabelBridgeError):
    """A student setting or model folder that cannot be used."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train (and run) a student token classifier.

    Two ways to use the encoder:

    * ``finetune_encoder=False`` (default, feature-based; Devlin et al. 2019, sec. 5.3): the
      encoder is frozen, the mean of its hidden layers ``feature_layers`` (first, last;
      inclusive; 0 = the embedding output, negative counts from the top) is computed ONCE
      per training sentence, and a small head (linear reduction to ``head_hidden``, one
      transformer layer, linear) is trained on it for many epochs: seconds per epoch on a
      CPU. The default takes the MIDDLE layers 5-9 of a 12-layer encoder: e5-small is
      trained as a contrastive sentence embedder, so its top layers are tuned for pooling,
      while word-level (and cross-lingual) information peaks in the middle (the aligner
      uses layer 8 for the same reason). On Europarl en->de (head trained on the
      projection) layers 5-9 gave F1 0.61 against 0.50 for the last four (bench/RESULTS.md).
      Indices past the encoder's depth are clamped to its last layer. The head trains 20
      epochs at 5e-4: at 1e-3 for 10 epochs its F1 varied by 0.11 between seeds (0.50-0.61
      on en->de), at 5e-4 for 20 by 0.04 (0.61-0.65), at ~4 s per epoch.
    * ``finetune_encoder=True``: the encoder is fine-tuned under a linear head (the usual HF
      token classifier), made to fit a CPU: only its first ``encoder_layers`` blocks are
      kept (word information peaks in e5-small's middle layers, the aligner reads layer 8;
      each block cut is a twelfth of the compute; 9 is not yet tuned here), ``freeze_embeddings`` keeps the embedding
      matrix (96M of e5-small's 118M parameters) fixed and out of the saved version, the
      products run in bf16 autocast where the CPU has native bf16 (``precision="auto"``, as
      the aligner decides; float32 elsewhere and on GPUs), batches are bucketed by length.
      The head gets its own, higher rate (``head_learning_rate``): e5-small's hidden states
      are small (norm ~5, against ~15-20 for BERT-base), so at an encoder-sized rate a few
      hundred steps do not even learn the tag prior, while a high rate for the whole
      encoder makes it diverge.
    * ``finetune_encoder=None`` (default): fine-tune when the estimated training time
      (sentences x epochs x the measured seconds per sentence on this device and precision)
      fits ``time_budget_s``, else the frozen head. The saved config says which ran.
    """

    encoder: str | None = None  # HF id or folder; None = settings().encoder (converted e5-small)
    side: str = "target"  # which sentence of each Item to learn from / predict
    finetune_encoder: bool | None = None  # True: fine-tune; False: frozen features + small head; None: see above
    feature_layers: tuple[int, int] = (5, 9)  # frozen mode: hidden layers averaged (first, last; see above)
    head_hidden: int = 256  # frozen mode: width of the head's transformer layer
    freeze_embeddings: bool = True  # fine-tune mode: keep the embedding matrix fixed
    encoder_layers: int | None = 9  # fine-tune mode: transformer blocks kept (None: all)
    precision: str = "auto"  # fine-tune mode: auto (bf16 on CPUs with native bf16), float32, bfloat16
    time_budget_s: float = 1200.0  # finetune_encoder=None: fine-tune when it is expected to fit this
    epochs: int = 20
    learning_rate: float = 1e-4  # fine-tune mode: encoder weights (5e-5 lost 0.10 F1 on 600 sentences, 0.011 on 3,000: RESULTS)
    head_learning_rate: float = 5e-4  # the head (and the image projection)
    batch_size: int = 16
    seed: int = 13
    max_subwords: int = 256  # window budget incl. special tokens (and the image prefix)
    patience: int = 3  # epochs without dev F1 gain before stopping (needs dev items)
    w_gold: float = 1.0  # loss weight of tokens from gold (human) items
    w_silver: float = 1.0  # loss weight of tokens from silver (projected/teacher) items
    silver_threshold: float = 0.3  # silver spans below this confidence are left out of the loss
    gold_share: float | None = 0.5  # repeat gold sentences until they are at least this share of an epoch (core.student.data.balance_gold; RESULTS)
    dropout: float = 0.25
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    device: str = "auto"  # "auto" = cuda when available, else cpu
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    image_encoder: str | None = None  # set to fuse image features (e.g. "efficientnet-lite0")
    confidence: str = "mean"  # span confidence: mean or min of its words' tag probabilities
    word_form: str = "auto"  # how words reach the tokenizer (core.student.data.word_form); auto: chosen on the training text, stored

    def __post_init__(self) -> None:
        problems = []
        layers = self.feature_layers
        if isinstance(layers, int) or not (isinstance(layers, (tuple, list)) and len(layers) == 2 and all(isinstance(x, int) for x in layers)):
            problems.append(f"feature_layers must be two layer indices (first, last), not {layers!r}")
        else:
            object.__setattr__(self, "feature_layers", (int(layers[0]), int(layers[1])))  # JSON gives a list
            if (layers[0] < 0) == (layers[1] < 0) and layers[0] > layers[1]:
                problems.append(f"feature_layers: first layer {layers[0]} comes after last layer {layers[1]}")
        if self.side not in SIDES:
            problems.append(f"side must be one of {SIDES}, not {self.side!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        if self.encoder_layers is not None and self.encoder_layers < 1:
            problems.append("encoder_layers must be at least 1 (or None for all)")
        if self.time_budget_s <= 0:
            problems.append("time_budget_s must be positive")
        if self.word_form not in WORD_FORMS:
            problems.append(f"word_form must be one of {WORD_FORMS}, not {self.word_form!r}")
        if self.confidence not in CONFIDENCE_MODES:
            problems.append(f"confidence must be one of {CONFIDENCE_MODES}, not {self.confidence!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.head_hidden < 4 or self.head_hidden % 4:
            problems.append("head_hidden must be a positive multiple of 4 (4 attention heads)")
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
        if self.gold_share is not None and not 0.0 < self.gold_share < 1.0:
            problems.append("gold_share must be between 0 and 1 (exclusive), or None")
        if self.threads is not None and self.threads < 1:
            problems.append("threads must be at least 1")
        if problems:
            raise StudentError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild from ``to_dict``; unknown keys (from a newer version) are ignored.

        Students saved before ``feature_layers`` became a range stored a count of top
        layers ``n``: that is the range (-n, -1)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("feature_layers"), int):
            values["feature_layers"] = (-values["feature_layers"], -1)
        return cls(**values)
