"""``bench corrections``: do a few hundred human corrections, chosen well, pay?

LabelBridge's loop on a target language with gold (e.g. a MasakhaNER2 folder: ``train``,
``dev``, ``test``), simulated:

1. machine labels for the target training sentences: the source-language model (a saved
   student, by default the English CoNLL-2003 teacher of ``make teacher``) predicts them, as
   model transfer would label a user's project;
2. a simulated reviewer corrects N of them to their gold labels, N = 0, 50, 100, 200, ...;
   which ones:
   - ``queue``: the project's review queue in "student uncertainty" order
     (``core.annotations.queue``): after each retraining the new student predicts the rest
     of the pool and the next batch is the most uncertain, as the Train and Review pages do;
   - ``random``: a seeded shuffle (nested: the first 100 hold the first 50);
3. the student is retrained on corrected + machine-labelled sentences (the Train page's
   mix: gold and silver), and scored strictly on the test file. ``retrain="warm"`` (default)
   goes on from the curve's last student for as many sentence passes as one epoch over the
   pool (the Train page's "continue from the active version"); ``"scratch"`` trains every
   point anew for ``config.epochs``; the corrected sentences are repeated to
   ``config.gold_share`` of each epoch, as every training does (core.student.data.balance_gold);
4. ``gold_only``: the N corrected sentences alone (the usual active-learning baseline), from
   the pre-trained encoder; ``gold_only_source``: the same from the source model.

``start="source"`` (default) starts the machine-labelled curves' first student (N=0) from the
source model instead of the pre-trained encoder (``"base"``): model transfer, then adapted on
its own labels of the target text (the Train page's "Start from a student").

Only labels the source model knows and the gold has are used (MasakhaNER2's DATE is not
in CoNLL-2003): other gold labels are dropped from the corrections and the score, and the
JSON says which. ``auc`` is the mean F1 over N from the first non-zero N to the last (trapezoids, N on a
linear axis), the same range for every curve (gold only has no N=0).
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.data import Item, Span
from core.errors import BenchError
from core.student.config import TrainConfig

__all__ = ["CORRECTION_STEPS", "POOL", "ChainSetup", "available_cores", "bench_corrections", "queue_order", "resolve_workers", "run_chain", "subword_fertility"]

CORRECTION_STEPS = (0, 50, 100, 200, 400, 800)
ORDERS = ("queue", "random", "gold_only", "gold_only_source")  # gold_only_source: gold only, from the source model
STARTS = ("base", "source")  # where the curves' first student (N=0) starts: the pre-trained encoder, or the source model itself
RETRAIN = ("warm", "scratch")  # warm: each retraining goes on from the last student of its curve (the Train page's "continue")
POOL = 1000  # machine-labelled training sentences: 3 seeds x 16 trainings fit 45 min on 2 cores (2,000: ~60 min on Swahili)


def _log(text: str) -> None:
    print(f"[bench corrections] {text}", file=sys.stderr, flush=True)


def _split(folder: Path, name: str, lang: str) -> list[Item]:
    from core.formats import find_split
    from core.student.transfer_bench import read_gold

    path = find_split(folder, name)
    if path is None:
        raise BenchError(f"{folder}: no {name} file ({name}.txt, .conll, .conll02 or .jsonl)")
    return [it for it in read_gold(str(path), lang) if len(it.source)]


def _keep(spans: Sequence[Span], labels: set[str]) -> list[Span]:
    return [sp for sp in spans if sp.label in labels]


def queue_order(uncertainties: Sequence[float | None], candidates: Sequence[int]) -> list[int]:
    """``candidates`` in the review queue's "student uncertainty" order (highest first; an
    item without a figure last), ties in the given order: the queue's own sort key."""
    from core.annotations.queue import compute_item_stats

    keys = {i: compute_item_stats(None, (), {}, uncertainties[i], ()).uncertainty_key for i in candidates}
    return sorted(candidates, key=lambda i: keys[i])


def subword_fertility(tokenizer: Any, sentences: Sequence[Sequence[str]], form: str = "as-is") -> dict[str, float]:
    """How well the encoder's vocabulary covers a language (its words read in ``form``,
    core.student.data.word_form): subwords per word, the share of words cut into 4 pieces or
    more, and the share of unknown pieces."""
    from core.student.data import word_pieces

    pieces = [w for sentence in word_pieces(tokenizer, sentences, form) for w in sentence]
    if not pieces:
        return {"subwords_per_word": 0.0, "words_in_4_or_more": 0.0, "unknown_pieces": 0.0}
    unk = tokenizer.unk_token_id
    n = sum(len(w) for w in pieces)
    return {
        "subwords_per_word": round(n / len(pieces), 3),
        "words_in_4_or_more": round(sum(len(w) >= 4 for w in pieces) / len(pieces), 4),
        "unknown_pieces": round(sum(p == unk for w in pieces for p in w) / max(1, n), 5),
    }


def _auc(curve: dict[str, float], start: int) -> float:
    """Mean F1 over N >= ``start`` (trapezoids): one range for every curve, so they compare."""
    xs = [int(n) for n in curve if int(n) >= start]
    ys = [curve[str(n)] for n in xs]
    if len(xs) < 2:
        return round(ys[0], 4) if ys else 0.0
    return round(float(np.trapezoid(ys, xs) / (xs[-1] - xs[0])), 4)


@dataclass(frozen=True)
class ChainSetup:
    """What every training chain reads (picklable: it crosses to the worker processes)."""

    train: list[Item]
    machine: list[Item]
    gold: list[Item]
    test: list[Item]
    labels: frozenset[str]
    source_model: str
    steps: tuple[int, ...]
    orders: tuple[str, ...]
    retrain: str
    warm_lr_factor: float
    start: str
    config: TrainConfig


def available_cores() -> int:
    """The CPU cores this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int | str, chains: int, device: str = "auto") -> int:
    """How many processes run the training chains. ``"auto"``: one per core on a CPU, each
    with the cores' share of threads (on 2 cores two 1-thread trainings do 1.26x the work of
    one 2-thread training: small matrices and the per-step overheads scale poorly over
    threads, bench/RESULTS.md); one on a GPU, which the processes would share. Never more
    than there are chains."""
    if workers == "auto":
        from core.student.model import resolve_device

        workers = 1 if resolve_device(device).startswith("cuda") else available_cores()
    try:
        workers = int(workers)
    except ValueError:
        raise BenchError(f"--workers {workers!r}: give a number or auto") from None
    if workers < 1:
        raise BenchError(f"--workers must be at least 1, not {workers}")
    return max(1, min(workers, chains))


def run_chain(setup: ChainSetup, name: str, k: int) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """One seed's chain of trainings, each going on from the last: ``"machine"`` (N = 0, then
    the queue and random curves from it) or a gold-only curve. Returns its F1 points per
    curve and its run records. Chains share nothing, so they run in any order or process."""
    from core.student.inference import predict_details
    from core.student.model import load_student
    from core.student.train import train_student
    from core.student.transfer_bench import score_student

    train, machine, gold, steps = setup.train, setup.machine, setup.gold, setup.steps
    config = setup.config
    run_config = replace(config, seed=config.seed + k)
    shuffled = list(range(len(train)))
    random.Random(1000 + k).shuffle(shuffled)
    curves: dict[str, dict[str, float]] = {}
    runs: list[dict[str, Any]] = []

    def fit_and_score(items: list[Item], run_config: TrainConfig, label: str, previous: Any = None) -> tuple[float, Any]:
        t0 = time.perf_counter()
        if previous is not None and setup.retrain == "warm":  # go on from the last student: passes over as many sentences as the pool
            run_config = replace(run_config, epochs=max(1, min(20, math.ceil(len(train) / len(items)))),
                                 learning_rate=run_config.learning_rate * setup.warm_lr_factor,
                                 head_learning_rate=run_config.head_learning_rate * setup.warm_lr_factor)  # fmt: skip
        else:
            previous = None
        student = train_student(items, (), run_config, start_from=previous)
        f1 = score_student(student, setup.test, set(setup.labels))["f1"]
        runs.append({"run": label, "sentences": len(items), "epochs": run_config.epochs, "warm": previous is not None,
                     "seconds": round(time.perf_counter() - t0, 1), "f1": round(f1, 4)})  # fmt: skip
        _log(f"{label}: {len(items)} sentences, F1 {f1:.4f} ({time.perf_counter() - t0:.0f} s)")
        return f1, student

    def mixed(corrected: set[int]) -> list[Item]:
        return [gold[i] if i in corrected else machine[i] for i in range(len(train))]

    if name == "machine":
        origin = load_student(setup.source_model) if setup.start == "source" else None  # source: model transfer, adapted on its own labels
        zero, zero_student = fit_and_score(mixed(set()), run_config, f"seed {run_config.seed} N=0", origin)
        del origin
        if "queue" in setup.orders:
            curves["queue"] = {}
            student = zero_student
            corrected: list[int] = []
            for n in steps:
                if n == 0:
                    curves["queue"]["0"] = zero
                    continue
                done = set(corrected)
                rest = [i for i in range(len(train)) if i not in done]
                details = predict_details(student, [train[i].source for i in rest])
                uncertainty: list[float | None] = [None] * len(train)
                for i, d in zip(rest, details):
                    uncertainty[i] = d.uncertainty
                corrected += queue_order(uncertainty, rest)[: n - len(corrected)]
                f1, student = fit_and_score(mixed(set(corrected)), run_config, f"seed {run_config.seed} queue N={n}", student)
                curves["queue"][str(n)] = f1
        if "random" in setup.orders:
            curves["random"] = {}
            student = zero_student
            for n in steps:
                if n == 0:
                    curves["random"]["0"] = zero
                    continue
                f1, student = fit_and_score(mixed(set(shuffled[:n])), run_config, f"seed {run_config.seed} random N={n}", student)
                curves["random"][str(n)] = f1
        return curves, runs
    # gold_only_source: the same, going on from the source model (is it the machine labels or the start that helps?)
    curves[name] = {}
    student = load_student(setup.source_model) if name == "gold_only_source" else None
    for n in steps:
        if n == 0:
            continue
        # as many sentence passes as one epoch over the pool would give, within reason
        epochs = min(20, max(config.epochs, math.ceil(config.epochs * len(train) / n / 4)))
        f1, student = fit_and_score([gold[i] for i in shuffled[:n]], replace(run_config, epochs=epochs),
                                    f"seed {run_config.seed} {name.replace('_', ' ')} N={n}", student)  # fmt: skip
        curves[name][str(n)] = f1
    return curves, runs


def bench_corrections(
    data_dir: str | Path,
    source_model: str | Path,
    *,
    lang: str | None = None,
    steps: Sequence[int] = CORRECTION_STEPS,
    pool: int | None = POOL,
    seeds: int = 3,
    config: TrainConfig | None = None,
    orders: Sequence[str] = ("queue", "random", "gold_only"),
    retrain: str = "warm",
    warm_lr_factor: float = 1.0,
    start: str = "source",
    workers: int | str = 1,
) -> dict[str, Any]:
    """Learning curves of corrections (module docstring). ``workers`` (a number or "auto",
    resolve_workers) runs the seeds' training chains in that many processes."""
    from core.metrics import label_scores
    from core.student.bench import children_peak_memory_mb, peak_memory_mb
    from core.student.data import choose_word_form
    from core.student.inference import predict_details
    from core.student.model import load_student
    from core.student.transfer_bench import score_student

    folder = Path(data_dir)
    if not folder.is_dir():
        raise BenchError(f"--data {data_dir}: not a folder")
    if seeds < 1:
        raise BenchError(f"--seeds must be at least 1, not {seeds}")
    steps = sorted(set(int(n) for n in steps))
    if not steps or steps[0] < 0:
        raise BenchError(f"correction steps must be non-negative, not {steps}")
    unknown = set(orders) - set(ORDERS)
    if unknown:
        raise BenchError(f"unknown order {sorted(unknown)[0]!r}; expected one of {', '.join(ORDERS)}")
    if not warm_lr_factor > 0:
        raise BenchError(f"--warm-lr-factor must be positive, not {warm_lr_factor}")
    if retrain not in RETRAIN:
        raise BenchError(f"unknown retraining {retrain!r}; expected one of {', '.join(RETRAIN)}")
    if start not in STARTS:
        raise BenchError(f"unknown start {start!r}; expected one of {', '.join(STARTS)}")
    if retrain != "warm" and (start == "source" or "gold_only_source" in orders):
        raise BenchError("--start source and gold_only_source go on from the source model: they need --retrain warm "
                         "(with --retrain scratch give --start base and leave gold_only_source out)")
    lang = lang or folder.name
    config = replace(config or replace(TrainConfig(), epochs=2, finetune_encoder=True), side="target")
    started = time.perf_counter()
    train_all, test = _split(folder, "train", lang), _split(folder, "test", lang)
    if not Path(source_model).is_dir():
        raise BenchError(f"source model {source_model}: no such folder (make teacher builds data/models/teacher-conll2003-en)")
    source = load_student(source_model)
    model_labels = {tag[2:] for tag in source.labels if tag[:2] in ("B-", "I-")}
    gold_labels = {sp.label for it in train_all + test for sp in it.source_spans}
    labels = model_labels & gold_labels
    if not labels:
        raise BenchError(f"{folder}: its labels {sorted(gold_labels)} share none with the source model's {sorted(model_labels)}")
    rng = random.Random(13)
    chosen_pool = sorted(rng.sample(range(len(train_all)), pool)) if pool and pool < len(train_all) else list(range(len(train_all)))
    train = [train_all[i] for i in chosen_pool]
    if steps[-1] > len(train):
        raise BenchError(f"{folder}: {len(train)} training sentences in the pool, fewer than the {steps[-1]} corrections asked for")

    # 1. machine labels: the source model on the target training sentences (silver)
    began = time.perf_counter()
    predicted = predict_details(source, [it.source for it in train], source=f"student:{Path(source_model).name}")
    machine = [it.with_(target=it.source, target_spans=_keep(p.spans, labels), source_spans=[], alignment=[], meta={"gold": False})
               for it, p in zip(train, predicted)]  # fmt: skip
    gold = [it.with_(target=it.source, target_spans=_keep(it.source_spans, labels), source_spans=[], alignment=[], meta={"gold": True})
            for it in train]  # fmt: skip
    machine_seconds = time.perf_counter() - began
    machine_f1 = label_scores([it.source for it in train], [g.target_spans for g in gold], [m.target_spans for m in machine], labels)["f1"]
    source_test_f1 = score_student(source, test, labels)["f1"]
    pool_words = [it.source.words for it in train]
    form = choose_word_form(source.tokenizer, pool_words) if config.word_form == "auto" else config.word_form  # what the students read
    fertility = {"as_written": subword_fertility(source.tokenizer, pool_words), "word_form": form,
                 "as_read": subword_fertility(source.tokenizer, pool_words, form)}  # fmt: skip
    del source
    _log(f"{lang}: {len(train)} pool sentences machine-labelled in {machine_seconds:.0f} s (F1 {machine_f1:.3f} against their gold); "
         f"the source model scores {source_test_f1:.3f} on the test file; the students read words {form} "
         f"({fertility['as_written']['subwords_per_word']} subwords per word as written, {fertility['as_read']['subwords_per_word']} as read)")  # fmt: skip

    setup = ChainSetup(train, machine, gold, test, frozenset(labels), str(source_model), tuple(steps), tuple(orders), retrain, warm_lr_factor, start, config)
    chains = [("machine", k) for k in range(seeds) if "queue" in orders or "random" in orders]
    chains += [(name, k) for name in ("gold_only", "gold_only_source") if name in orders for k in range(seeds)]
    workers = resolve_workers(workers, len(chains), config.device)
    _log(f"{len(chains)} training chains on {workers} worker{'s' if workers > 1 else ''}")
    if workers == 1:
        done = [run_chain(setup, name, k) for name, k in chains]
    else:  # longest chains first (the list is in that order): the last worker to finish waits least
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # each worker its share of the cores (TrainConfig.threads: set by its first training, before any scoring)
        setup = replace(setup, config=replace(config, threads=max(1, available_cores() // workers)))
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as executor:
                done = list(executor.map(run_chain, [setup] * len(chains), [name for name, _ in chains], [k for _, k in chains]))
        except BrokenProcessPool as exc:  # a worker killed (out of memory) or failing before its first chain
            raise BenchError("a training worker process ended abruptly (its error, if it printed one, is above; out of memory "
                             "kills without one). --workers 1 runs the chains in this process") from exc  # fmt: skip

    curves: dict[str, dict[str, list[float]]] = {name: {str(n): [] for n in steps if n or not name.startswith("gold_only")} for name in orders}
    runs: list[dict[str, Any]] = []
    # per seed, in the order one process runs them (a stable sort keeps each seed's chains in order)
    for chain_curves, chain_runs in (result for (_, k), result in sorted(zip(chains, done), key=lambda pair: pair[0][1])):
        runs += chain_runs
        for order, points in chain_curves.items():
            for n, f1 in points.items():
                curves[order][n].append(f1)
    mean = {name: {n: round(float(np.mean(v)), 4) for n, v in c.items()} for name, c in curves.items()}
    auc_from = min((n for n in steps if n > 0), default=0)  # gold only has no N=0: every area starts at the first N
    result: dict[str, Any] = {
        "bench": "corrections",
        "data": str(folder),
        "lang": lang,
        "source_model": str(source_model),
        "labels": sorted(labels),
        "labels_left_out": sorted(gold_labels - labels),
        "pool": len(train),
        "train_sentences": len(train_all),
        "test": len(test),
        "machine_label_f1": round(machine_f1, 4),
        "source_model_test_f1": round(source_test_f1, 4),
        "vocabulary": fertility,
        "curve": mean,
        "auc": {name: _auc(c, auc_from) for name, c in mean.items()},
        "auc_from": auc_from,
        "std": {name: {n: round(float(np.std(v)), 4) for n, v in c.items()} for name, c in curves.items()},
        "per_seed": curves,
        "seeds": [config.seed + k for k in range(seeds)],
        "epochs": config.epochs,
        "retrain": retrain,
        "warm_lr_factor": warm_lr_factor,
        "start": start,
        "config": {k: v for k, v in config.to_dict().items() if k not in ("side", "seed")},
        "runs": runs,
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_mb": max(peak_memory_mb(), children_peak_memory_mb()),  # with workers: the largest one process reached
    }
    return result
