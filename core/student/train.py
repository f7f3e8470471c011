"""Fine-tuning the student on gold + silver items, with early stopping on a dev split."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch

from core.data import Item
from core.encoder import length_batches
from core.student.config import StudentError, TrainConfig
from core.student.data import IGNORE, balance_gold, build_windows, choose_word_form, examples_from_items, label_list, side_of
from core.student.features import window_features
from core.student.model import (
    StudentModel,
    TrainedStudent,
    build_model,
    collate,
    continued_model,
    finetune_copy,
    resolve_device,
    student_autocast,
)

__all__ = ["FINETUNE_SECONDS_PER_SENTENCE", "STRUCTURE_FIELDS", "TrainingCancelled", "continued_config", "estimated_finetune_seconds", "resolve_mode", "train_student"]

# Seconds per training sentence per epoch of the fine-tuned student (e5-small cut to 9 blocks,
# embeddings frozen, batches of 16, 2 threads) on CoNLL-2003 English, 1,000 sentences, one
# epoch, measured on the 2-core CPU (bench/RESULTS.md "Student fine-tuning speed"): 9.9 s in
# bf16, 15.4 s in float32. CUDA is not measured: an assumed 5x. Only an estimate, for
# choosing the mode (TrainConfig).
FINETUNE_SECONDS_PER_SENTENCE = {"cpu-bfloat16": 0.0099, "cpu-float32": 0.0154, "cuda": 0.002}

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, float], None]  # (step, total_steps, loss)
CancelCallback = Callable[[], bool]  # True = stop now


class TrainingCancelled(RuntimeError):
    """``cancel_cb`` asked to stop; nothing is returned (a half-trained model is not kept)."""


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def estimated_finetune_seconds(config: TrainConfig, n_sentences: int, device: str) -> float:
    """Expected fine-tuning time of ``n_sentences`` for ``config.epochs`` on ``device``."""
    from core.encoder import compute_dtype

    if device.startswith("cuda"):
        rate = FINETUNE_SECONDS_PER_SENTENCE["cuda"]
    else:
        low = compute_dtype(config.precision, device) == torch.bfloat16
        threads = max(1, config.threads or torch.get_num_threads())
        rate = FINETUNE_SECONDS_PER_SENTENCE["cpu-bfloat16" if low else "cpu-float32"] * 2 / threads  # measured on 2
    return n_sentences * config.epochs * rate * (config.encoder_layers or 12) / 9  # measured with 9 blocks


def resolve_mode(config: TrainConfig, n_sentences: int, device: str) -> TrainConfig:
    """``config`` with ``finetune_encoder`` decided: None becomes True when the estimated
    fine-tuning time fits ``time_budget_s`` (the fine-tuned student is the better one), else
    False (the frozen head, minutes on any CPU)."""
    if config.finetune_encoder is not None:
        return config
    fits = estimated_finetune_seconds(config, n_sentences, device) <= config.time_budget_s
    log.info("student mode: %s (%d sentences x %d epochs)", "fine-tune" if fits else "frozen head", n_sentences, config.epochs)
    return replace(config, finetune_encoder=fits)


# What a warm start keeps from the student it goes on from: the model's structure.
STRUCTURE_FIELDS = ("encoder", "finetune_encoder", "encoder_layers", "freeze_embeddings", "feature_layers", "head_hidden", "image_encoder")


def continued_config(config: TrainConfig, start: TrainedStudent) -> TrainConfig:
    """``config`` with the structure of ``start`` (STRUCTURE_FIELDS): a warm start cannot
    change the encoder, the mode, the blocks kept or the head; the rest (epochs, rates,
    weights, seed) is this run's."""
    kept = {name: getattr(start.config, name) for name in STRUCTURE_FIELDS}
    kept["finetune_encoder"] = start.model.finetune_encoder
    return replace(config, **kept)


def _trainable_state(model: StudentModel) -> dict[str, torch.Tensor]:
    names = {n for n, _ in model.trainable_parameters()}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k in names or not k.startswith("encoder.")}


def train_student(
    train_items: Sequence[Item],
    dev_items: Sequence[Item] = (),
    config: TrainConfig = TrainConfig(),
    progress_cb: ProgressCallback | None = None,
    cancel_cb: CancelCallback | None = None,
    start_from: TrainedStudent | None = None,
) -> TrainedStudent:
    """Fine-tune ``config.encoder`` as a token classifier on ``config.side`` of the items.

    Gold items weigh ``w_gold``, silver ones ``w_silver``; low-confidence silver spans are
    masked (see core.student.data). With dev items, the model of the epoch with the best
    dev entity F1 is kept and training stops after ``patience`` epochs without gain;
    without, all epochs run. ``progress_cb(step, total, loss)`` is called after every
    optimizer step; ``cancel_cb()`` returning True stops with TrainingCancelled.

    ``start_from`` (a warm start): training goes on from that student's weights instead of
    the pre-trained encoder, keeping its structure (encoder, mode, blocks, head); a retraining
    after a batch of corrections then needs an epoch, not a whole run. Its labels keep their
    output rows; new ones get fresh rows.
    """
    from core.encoder import load_encoder
    from core.metrics import span_scores
    from core.student.inference import predict

    if config.threads:
        torch.set_num_threads(config.threads)
    _seed_everything(config.seed)
    device = resolve_device(config.device)

    if start_from is not None:
        config = continued_config(config, start_from)
    distinct = examples_from_items(train_items, config)
    examples = balance_gold(distinct, config.gold_share)
    if not examples:
        raise StudentError("no training sentences: every item is empty")
    config = resolve_mode(config, len(examples), device)
    dev_examples = examples_from_items(dev_items, config) if dev_items else []
    labels = label_list(examples + dev_examples)
    if len(labels) == 1:
        raise StudentError("the training items have no entity at all; nothing to learn")
    if start_from is not None:  # its rows first: unchanged when no label is new
        labels = list(start_from.labels) + [t for t in labels if t not in start_from.labels]
    label_ids = {t: i for i, t in enumerate(labels)}

    if start_from is not None:
        tokenizer, base_encoder, encoder = start_from.tokenizer, None, None  # continued_model copies its encoder
    else:
        tokenizer, base_encoder = load_encoder(config.encoder, device)
        # fine-tuning trains a copy: the loader caches its instance; frozen: shared read-only
        encoder = finetune_copy(base_encoder, config) if config.finetune_encoder else base_encoder

    if config.word_form == "auto":  # decided once, on the distinct training sentences, and saved with the model
        config = replace(config, word_form=choose_word_form(tokenizer, [ex.words for ex in distinct]))

    image_dim = None
    vectors = None
    if config.image_encoder:
        from core.images import image_features, load_image_encoder

        image_dim = load_image_encoder(config.image_encoder).dim
        refs = sorted({ex.image for ex in examples if ex.image is not None})
        vectors = dict(zip(refs, image_features(refs, config.image_encoder, progress=True))) if refs else {}

    windows = build_windows(
        tokenizer,
        [ex.words for ex in examples],
        config.max_subwords,
        tags=[ex.tags for ex in examples],
        label_ids=label_ids,
        weights=[ex.weight for ex in examples],
        images=[ex.image for ex in examples],
        reserved=1 if image_dim else 0,
        form=config.word_form,
    )
    windows = [w for w in windows if any(label != IGNORE for label in w.labels)]
    if not windows:
        raise StudentError("every training word is masked (silver below the threshold); nothing to learn")

    if start_from is not None:
        model = continued_model(start_from, labels, image_dim).to(device)
    else:
        model = build_model(encoder, len(labels), config, image_dim).to(device)
        if config.finetune_encoder:
            from core.student.model import encoder_fingerprint

            model.base_fingerprint = encoder_fingerprint(base_encoder)
    model.train()
    autocast = student_autocast(model, config, device)
    features = None
    feature_seconds = 0.0
    if not config.finetune_encoder:
        started = time.perf_counter()
        features = window_features(model, windows, tokenizer.pad_token_id or 0, device)
        feature_seconds = time.perf_counter() - started

    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.trainable_parameters():
        is_head = not name.startswith("encoder.")
        no_decay = param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
        groups.setdefault((is_head, no_decay), []).append(param)
    optimizer = torch.optim.AdamW(
        [
            {
                "params": params,
                "lr": config.head_learning_rate if is_head else config.learning_rate,
                "weight_decay": 0.0 if no_decay else config.weight_decay,
            }
            for (is_head, no_decay), params in groups.items()
        ]
    )
    steps_per_epoch = math.ceil(len(windows) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(total_steps * config.warmup_ratio)

    def lr_factor(step: int) -> float:  # linear warm-up then linear decay to 0
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none", ignore_index=IGNORE)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    student = TrainedStudent(model, tokenizer, labels, config, device, [], None, image_dim)
    dev_sentences = [side_of(item, config.side)[0] for item in dev_items]
    dev_gold = [side_of(item, config.side)[1] for item in dev_items]
    dev_images = [item.image for item in dev_items]

    rng = random.Random(config.seed)
    best_f1, best_state, stale = -1.0, None, 0
    step = 0
    from tqdm import tqdm

    bar = tqdm(total=total_steps, desc="training student", unit="step", leave=False)
    try:
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            model.train()
            epoch_loss, epoch_batches = 0.0, 0
            for batch_index in length_batches(len(windows), [len(w.input_ids) for w in windows], config.batch_size, rng):
                if cancel_cb is not None and cancel_cb():
                    raise TrainingCancelled(f"training cancelled at step {step} of {total_steps}")
                batch = collate(
                    [windows[i] for i in batch_index], pad_id, device, vectors, image_dim,
                    [features[i] for i in batch_index] if features is not None else None,
                )  # fmt: skip
                with autocast():
                    logits = model(
                        batch["input_ids"], batch["attention_mask"], batch.get("image_features"), batch.get("has_image"),
                        batch.get("features"),
                    ).float()  # fmt: skip
                token_loss = loss_fn(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1))
                labelled = (batch["labels"].reshape(-1) != IGNORE).float()
                loss = (token_loss * batch["weights"].reshape(-1) * labelled).sum() / labelled.sum().clamp(min=1.0)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
                optimizer.step()
                scheduler.step()
                step += 1
                value = float(loss.detach())
                epoch_loss += value
                epoch_batches += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{value:.4f}")
                if progress_cb is not None:
                    progress_cb(step, total_steps, value)
            seconds = time.perf_counter() - started
            record = {"epoch": epoch, "loss": epoch_loss / max(1, epoch_batches), "seconds": round(seconds, 2)}
            if epoch == 1 and features is not None:
                record["feature_seconds"] = round(feature_seconds, 2)  # the frozen encoder's one pass
            if epoch == 1:
                record["mode"] = "fine-tune" if config.finetune_encoder else "frozen"
                record["precision"] = "bfloat16" if autocast is not contextlib.nullcontext else "float32"
                record["sentences"] = len(examples)  # per epoch, reviewed items repeated (balance_gold)
                record["distinct_sentences"] = len(distinct)
            if dev_items:
                predicted = predict(student, dev_sentences, dev_images)
                record["dev_f1"] = span_scores(dev_sentences, dev_gold, predicted)["f1"]
            student.history.append(record)
            log.info("epoch %d: %s", epoch, record)
            if not dev_items:
                continue
            if record["dev_f1"] > best_f1:
                best_f1, best_state, stale = record["dev_f1"], _trainable_state(model), 0
                student.best_epoch = epoch
            else:
                stale += 1
                if stale >= config.patience:
                    break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    if student.best_epoch is None:
        student.best_epoch = len(student.history)
    model.eval()
    return student
