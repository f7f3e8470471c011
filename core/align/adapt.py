"""Adapting the embedding aligner's encoder to a project's own parallel text, without labels.

Why: an encoder aligner reads word correspondences off a pre-trained encoder that never saw
these sentences; awesome-align (Dou & Neubig 2021) showed that fine-tuning it on the
parallel text itself, with its own alignments as the target ("self-training"), aligns
markedly better than the untuned encoder (SimAlign). This is that objective for
LabelBridge's SimAlign path:

* both sentences go through the encoder cut after the aligner's layer (embeddings frozen,
  bf16 autocast where the CPU has it); the subword similarity ``cos / tau`` gives two
  softmaxes, source -> target over each row and target -> source over each column;
* the guide: subword pairs that are each other's best match within ``alpha`` of the best,
  in both directions (computed without gradients from the current model, batch by batch,
  as awesome-align recomputes its guide as it trains);
* the loss raises the guide's pairs in both softmaxes (mean negative log-probability), so
  the links the encoder already half-sees in most sentences become sharp, and the soft
  alignment the fused projection reads follows.

``objective="agreement"`` instead raises the probability that the two directions pick the
same pair (awesome-align's consistency objective, ``trace(P_st^T P_ts) / min(n, m)``): no
hard guide, the two softmaxes are pulled toward each other, not toward one-hot rows.

No labels are read, so adapting on the very sentences that are then aligned is fair (the
issue's protocol says so). The result is an *adapted encoder folder* (core.encoder:
trained blocks + the base's name; the embedding matrix stays the base's), loaded by the one
encoder loader, so the aligner and the projection's soft alignment share it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from core.align.base import AlignError

__all__ = ["AdaptConfig", "TunedSimAlignAligner", "adapt_encoder", "adapted_folder", "pairs_digest"]

ADAPT_FORMAT = 1
OBJECTIVES = ("self-training", "agreement")


@dataclass(frozen=True)
class AdaptConfig:
    """Settings of an adaptation run (the defaults: see bench/RESULTS.md, chosen under the
    leave-one-pair-out protocol)."""

    layer: int = 8  # the aligner's layer: the encoder is cut after it
    objective: str = "self-training"  # or "agreement" (module docstring)
    epochs: int = 1
    learning_rate: float = 2e-5
    batch_size: int = 16  # sentence pairs per step
    tau: float = 0.05  # cosine temperature of the two softmaxes (the soft alignment's)
    alpha: float = 0.9  # guide: within this ratio of the best match, in both directions
    max_subwords: int = 128  # longer sentences are cut for adaptation (alignment itself is not)
    warmup_ratio: float = 0.1
    seed: int = 13
    precision: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.layer < 1:
            problems.append("layer must be at least 1")
        if self.epochs < 1 or self.batch_size < 1 or self.max_subwords < 4:
            problems.append("epochs and batch_size must be at least 1, max_subwords at least 4")
        if not self.learning_rate > 0 or not self.tau > 0:
            problems.append("learning_rate and tau must be positive")
        if not 0.0 < self.alpha <= 1.0:
            problems.append("alpha must be in (0, 1]")
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {', '.join(OBJECTIVES)}")
        if problems:
            raise AlignError("invalid AdaptConfig: " + "; ".join(problems))


def pairs_digest(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> str:
    """An identity of a parallel corpus (the adapted encoder's cache key)."""
    digest = hashlib.sha256()
    for src, tgt in pairs:
        digest.update(("\x1f".join(src) + "\x1e" + "\x1f".join(tgt) + "\x1d").encode("utf-8"))
    return digest.hexdigest()


def adapted_folder(root: str | os.PathLike, base: str, pairs: Sequence[tuple[Sequence[str], Sequence[str]]], config: AdaptConfig) -> Path:
    """Where the encoder adapted on ``pairs`` with ``config`` is cached under ``root``."""
    key = json.dumps({"base": base, "pairs": pairs_digest(pairs), "config": asdict(config), "format": ADAPT_FORMAT}, sort_keys=True)
    return Path(root) / hashlib.sha256(key.encode()).hexdigest()[:16]


def adapt_encoder(
    pairs: Sequence[tuple[Sequence[str], Sequence[str]]],
    out: str | os.PathLike,
    base: str | None = None,
    config: AdaptConfig = AdaptConfig(),
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Adapt ``base`` (default: the project's encoder) on ``pairs`` (word lists) and write the
    adapted encoder folder ``out`` (replaced whole, never half-written). Returns its
    description (also in ``out/adapted.json``): steps, seconds, losses, guide sizes."""
    import torch
    from safetensors.torch import save_file

    from core.config import settings
    from core.encoder import ADAPTED_META, ADAPTED_WEIGHTS, compute_dtype, frozen_encoder_keys, length_batches, load_encoder, trainable_copy

    base = str(base or settings().encoder)
    usable = [(list(s), list(t)) for s, t in pairs if len(s) and len(t)]
    if not usable:
        raise AlignError("no sentence pair with words on both sides to adapt the aligner on")
    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    tokenizer, base_model = load_encoder(base, "cpu")
    n_blocks = getattr(base_model.config, "num_hidden_layers", None)
    if n_blocks is not None and config.layer > n_blocks:
        raise AlignError(f"adapt: layer {config.layer} asked, but {base} has {n_blocks} blocks")
    model = trainable_copy(base_model, config.layer, freeze_embeddings=True)
    model.train()
    low = compute_dtype(config.precision, "cpu") == torch.bfloat16

    def encode(sentences: list[list[str]]) -> tuple[Any, list[int]]:
        enc = tokenizer(sentences, is_split_into_words=True, padding=True, truncation=True, max_length=config.max_subwords,
                        return_tensors="pt")  # fmt: skip
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        lengths = (enc["attention_mask"].sum(dim=1) - 2).clamp(min=0).tolist()  # without the two special tokens
        return torch.nn.functional.normalize(hidden.float(), dim=-1), lengths

    lengths = [len(s) + len(t) for s, t in usable]
    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(usable) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(total * config.warmup_ratio))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (step + 1) / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))
    )
    losses: list[float] = []
    guide_links = 0
    step = 0
    for _epoch in range(config.epochs):
        for batch in length_batches(len(usable), lengths, config.batch_size, rng):
            src_vecs, src_len = encode([usable[i][0] for i in batch])
            tgt_vecs, tgt_len = encode([usable[i][1] for i in batch])
            loss_terms = []
            for row in range(len(batch)):
                n, m = src_len[row], tgt_len[row]
                if n == 0 or m == 0:
                    continue
                sim = src_vecs[row, 1 : 1 + n] @ tgt_vecs[row, 1 : 1 + m].T / config.tau
                log_st = torch.log_softmax(sim, dim=1)  # source subword -> target
                log_ts = torch.log_softmax(sim, dim=0)  # target subword -> source
                if config.objective == "agreement":
                    loss_terms.append(-(log_st.exp() * log_ts.exp()).sum() / min(n, m))
                    continue
                with torch.no_grad():
                    p_st, p_ts = log_st.exp(), log_ts.exp()
                    guide = (p_st >= config.alpha * p_st.max(dim=1, keepdim=True).values) & (
                        p_ts >= config.alpha * p_ts.max(dim=0, keepdim=True).values
                    )
                k = int(guide.sum())
                if k == 0:
                    continue
                guide_links += k
                loss_terms.append(-(log_st[guide].mean() + log_ts[guide].mean()) / 2)
            if not loss_terms:
                continue
            loss = torch.stack(loss_terms).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step, total, losses[-1])
    model.eval()
    seconds = time.perf_counter() - started
    meta = {
        "format": ADAPT_FORMAT,
        "base": base,
        "layers": config.layer,
        "objective": config.objective,
        "config": asdict(config),
        "pairs": len(usable),
        "pairs_digest": pairs_digest(usable),
        "steps": step,
        "guide_links_per_pair": round(guide_links / max(1, len(usable) * config.epochs), 2) if config.objective == "self-training" else None,
        "first_loss": round(losses[0], 4) if losses else None,
        "last_loss": round(sum(losses[-10:]) / max(1, len(losses[-10:])), 4) if losses else None,
        "precision": "bfloat16" if low else "float32",
        "seconds": round(seconds, 1),
    }
    from core.files import built_folder

    with built_folder(out) as work:
        frozen = frozen_encoder_keys(model)
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items() if k not in frozen}, work / ADAPTED_WEIGHTS)
        (work / ADAPTED_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


class TunedSimAlignAligner:
    """``simalign-tuned:METHOD``: SimAlign over the encoder adapted to the pairs it aligns.

    The first call adapts the encoder on the pairs given (or on all of a corpus handed to
    ``prepare`` first: the pipeline gives the project's pairs), cached under ``cache_dir``
    by encoder, corpus and settings, so a rerun or a resumed pipeline loads it instead of
    training again; every later call aligns with the same adapted encoder. ``encoder_name``
    is that folder, for the projection's soft alignment to read the same vectors."""

    def __init__(
        self,
        method: str = "itermax",
        model: str | None = None,
        layer: int = 8,
        epochs: int = AdaptConfig.epochs,
        learning_rate: float = AdaptConfig.learning_rate,
        adapt_batch_size: int = AdaptConfig.batch_size,
        objective: str = AdaptConfig.objective,
        cache_dir: str | None = None,
        adapted: str | None = None,
        progress: bool | None = None,
        **simalign_options: Any,
    ) -> None:
        """``adapted``: an adapted encoder folder made before (the pipeline adapts once per
        project, then hands every stage process the folder): used as it is, no adaptation."""
        from core.align.embedding import SimAlignAligner

        self.method = method
        self.name = f"simalign-tuned:{method}"
        self.base = model
        layers = simalign_options.get("layers")
        deepest = max(int(x) for x in layers) if layers else layer  # the encoder is cut after the deepest layer it reads
        self.config = AdaptConfig(layer=deepest, epochs=epochs, learning_rate=learning_rate, batch_size=adapt_batch_size, objective=objective)
        self.cache_dir = cache_dir
        self.progress = progress
        self.adapted: dict[str, Any] | None = None  # the adaptation's description once done or loaded
        self.encoder_name: str | None = None
        self._options = {"layer": layer, "progress": progress, **simalign_options}
        SimAlignAligner(method, **self._options)  # the options are checked now, not at the first call
        self._inner: Any = None
        if adapted is not None:
            meta = Path(adapted) / "adapted.json"
            if not meta.is_file():
                raise AlignError(f"simalign-tuned: {adapted} is not an adapted encoder folder (no adapted.json)")
            self.adapted = json.loads(meta.read_text(encoding="utf-8"))
            if int(self.adapted.get("layers") or 0) < self.config.layer:
                raise AlignError(f"simalign-tuned: {adapted} keeps {self.adapted.get('layers')} blocks, layer {self.config.layer} is asked")
            self.encoder_name = str(adapted)
            self._inner = SimAlignAligner(method, model=self.encoder_name, **self._options)

    def prepare(self, pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> dict[str, Any]:
        """Adapt on ``pairs`` (or load the cached adaptation of them); returns its description."""
        from core.align.embedding import SimAlignAligner
        from core.config import settings

        base = str(self.base or settings().encoder)
        root = Path(self.cache_dir) if self.cache_dir else settings().models_dir / "aligners"
        usable = [(list(s), list(t)) for s, t in pairs if len(s) and len(t)]
        folder = adapted_folder(root, base, usable, self.config)
        if not (folder / "adapted.json").is_file():
            bar = None
            if self.progress is not False:
                from tqdm.auto import tqdm

                bar = tqdm(desc="adapting the aligner", unit="step", leave=False)

            def report(step: int, total: int, loss: float) -> None:
                if bar is not None:
                    bar.total = total
                    bar.update(step - bar.n)
                    bar.set_postfix(loss=f"{loss:.3f}")

            try:
                adapt_encoder(usable, folder, base, self.config, report)
            finally:
                if bar is not None:
                    bar.close()
        self.adapted = json.loads((folder / "adapted.json").read_text(encoding="utf-8"))
        self.encoder_name = str(folder)
        self._inner = SimAlignAligner(self.method, model=self.encoder_name, **self._options)
        return self.adapted

    @property
    def layer(self) -> int:
        return self.config.layer

    @property
    def layers(self) -> tuple[int, ...] | None:
        layers = self._options.get("layers")
        return tuple(sorted({int(x) for x in layers})) if layers and len(set(layers)) > 1 else None

    def load(self) -> None:
        """Nothing to load before the pairs are known (adaptation needs them)."""

    def _aligner(self, pairs: list) -> Any:
        if self._inner is None:
            self.prepare(pairs)
        return self._inner

    def align(self, pairs: list) -> list:
        return self._aligner(pairs).align(pairs)

    def align_methods(self, pairs: list, methods: Sequence[str]) -> dict[str, list]:
        return self._aligner(pairs).align_methods(pairs, methods)

    def similarities(self, pairs: list) -> Any:
        return self._aligner(pairs).similarities(pairs)

    @property
    def compute_precision(self) -> str | None:
        return None if self._inner is None else self._inner.compute_precision
