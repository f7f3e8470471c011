"""Student benchmarks on Europarl-NER (``bench student`` and ``bench queue``).

Data: the 799 parallel sentences of ../shared/data/europarl-ner; sentences 0-599 are the
training pool, 600-798 the test set. The English gold is the "source" side; the target
gold is only used to score, and in (c) and (d) to simulate human corrections.

``bench student`` trains one student per setting and scores it (strict IOB2 entity F1,
seqeval) on the target test sentences:

(a) model transfer: trained on the English gold only, applied to the target language;
(b) data transfer: trained on the target projection of the English gold (silver);
(c) (b) with N training sentences corrected: their projected labels are replaced by the
    target gold (weighted as gold). The corrected sentences are the first N of the review
    queue (lowest projection confidence first, ties in one seeded shuffle; or, with
    ``--corrections-order random``, of the shuffle alone), so the 50 are inside the 100,
    which are inside the 200. ``errors_fixed`` says how many of the projection's wrong
    sentences and spans each N corrects.
(d) every training sentence corrected (``all_corrected_f1``): the ceiling of (c), how
    much the student can gain from corrections at all on this data.

No setting sees a test sentence while training; no setting but (c) and (d) sees target gold.
Every setting is trained with ``--seeds`` training seeds (default 3) and the figures are
the means: F1 on 199 sentences moves by 0.01-0.02 between seeds, as much as the effect of
50 corrections, so one seed cannot say whether N corrections raise F1. ``per_seed`` in
the JSON holds every run.

``bench queue`` measures how well the review queue finds projection errors: all 799
sentences are projected; a sentence is erroneous when its projected span set differs from
the target gold. Three orders are compared by the share of erroneous sentences that fall in
the first 20 % of the queue:

* confidence: lowest projection confidence first (0 when a source entity could not be
  projected at all, else the lowest span confidence; 1 for sentences with nothing to
  project);
* disagreement: highest ``core.student.disagreement`` first (1 - the student's lowest
  probability of a projected tag; the same number the Review queue stores). Cross-fitted
  in 2 folds so the student never ranks a sentence it was trained on: the student that
  ranks fold A was trained on the projected labels of fold B, and vice versa; the mean
  over the training seeds;
* random: the mean over 100 seeded shuffles (expected 0.2).
"""

from __future__ import annotations

import math
import random
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.config import REPO_ROOT
from core.data import Item
from core.errors import BenchError
from core.student.config import TrainConfig

__all__ = [
    "BENCH_CONFIG",
    "bench_queue",
    "bench_student",
    "children_peak_memory_mb",
    "load_europarl",
    "peak_memory_mb",
    "project_for_bench",
    "seconds_per_epoch_per_1000",
    "top_share",
]

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "europarl-ner"
N_TRAIN, N_TEST = 600, 199
CORRECTIONS = (50, 100, 200)
TOP_FRACTION = 0.2
SEEDS = 3  # training seeds per setting: F1 on 199 sentences moves by ~0.01-0.02 between seeds

# The benchmark measures the defaults (TrainConfig explains why they suit a 2-core CPU).
BENCH_CONFIG = TrainConfig()




# ----------------------------------------------------------------------------- data


def load_europarl(data_dir: str | Path, source: str, target: str) -> list[Item]:
    """Parallel items: English (or ``source``) gold as source spans, target gold as target spans."""
    from core.formats import FormatError, read
    from core.metrics import WRITTEN_TAGS

    data_dir = Path(data_dir)
    sides = []
    for lang in (source.lower(), target.lower()):
        path = data_dir / f"{lang}-europarl.test.conll02"
        if not path.is_file():
            raise BenchError(f"{path}: no such file (languages in {data_dir}: en, de, es)")
        try:
            sides.append(read(path, "conll"))
        except FormatError as exc:
            raise BenchError(str(exc)) from exc
    src, tgt = sides
    if len(src) != len(tgt):
        raise BenchError(f"{data_dir}: {len(src)} {source} sentences but {len(tgt)} {target} sentences")
    items = []
    for i, (s, t) in enumerate(zip(src, tgt)):
        s_sent, t_sent = s.source, t.source
        s_sent.lang, t_sent.lang = source.lower(), target.lower()
        written = {side: item.meta[WRITTEN_TAGS]["source"] for side, item in (("source", s), ("target", t)) if WRITTEN_TAGS in item.meta}
        items.append(
            Item(
                id=f"europarl-{i}",
                source=s_sent,
                source_spans=list(s.source_spans),
                target=t_sent,
                target_spans=list(t.source_spans),
                meta={"gold": True, **({WRITTEN_TAGS: written} if written else {})},
            )
        )
    return items


def project_for_bench(items: Sequence[Item], progress: bool = True) -> tuple[list[Item], str]:
    """Target spans projected from the source gold (target gold dropped), and how.

    The project's default pipeline: ``core.align`` with ``DEFAULT_ALIGNER`` then
    ``core.projection.project_items`` with ``DEFAULT_METHOD``.
    """
    from core.align import align_items, get_aligner
    from core.projection import DEFAULT_ALIGNER, DEFAULT_METHOD, project_items

    stripped = [it.with_(target_spans=[], meta={**it.meta, "gold": False}) for it in items]
    aligned = align_items(stripped, get_aligner(DEFAULT_ALIGNER, progress=progress))
    return project_items(aligned, DEFAULT_METHOD), f"{DEFAULT_METHOD} over {DEFAULT_ALIGNER} (project defaults)"


# ------------------------------------------------------------------------ measures


def _max_rss_mb(who: int) -> float:
    rss = resource.getrusage(who).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)  # bytes on macOS, KiB on Linux


def peak_memory_mb() -> float:
    """This process's peak resident memory in MB (what every bench and training reports)."""
    return _max_rss_mb(resource.RUSAGE_SELF)


def children_peak_memory_mb() -> float:
    """The peak resident memory in MB of the largest child process this one waited for (worker
    processes; 0 without any)."""
    return _max_rss_mb(resource.RUSAGE_CHILDREN)


def seconds_per_epoch_per_1000(history: Sequence[dict], n_sentences: int) -> float | None:
    """The mean training epoch of a student's history, per 1,000 training sentences."""
    epochs = [h["seconds"] for h in history if "seconds" in h]
    return round(sum(epochs) / len(epochs) * 1000 / n_sentences, 2) if epochs and n_sentences else None


def _score(student: Any, test: Sequence[Item]) -> dict:
    from core.metrics import item_scores
    from core.student.inference import predict

    predicted = predict(student, [it.target for it in test])
    return item_scores(test, predicted, side="target")  # strict, on the gold tags as written


def _train(items: Sequence[Item], config: TrainConfig, label: str, log: list) -> Any:
    from core.student.train import train_student

    started = time.perf_counter()
    student = train_student(items, (), config)
    seconds = time.perf_counter() - started
    per_epoch = [h["seconds"] for h in student.history]
    feature_seconds = student.history[0].get("feature_seconds") if student.history else None
    log.append(
        {
            "run": label,
            "sentences": len(items),
            "seconds": round(seconds, 1),
            "epoch_seconds": per_epoch,
            "feature_seconds": feature_seconds,  # frozen encoder pass (0 when cached by an earlier run)
        }
    )
    print(f"[bench] {label}: trained on {len(items)} sentences in {seconds:.0f} s", file=sys.stderr, flush=True)
    return student


def _mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 4)


def _seeds(config: TrainConfig, n_seeds: int) -> list[int]:
    if n_seeds < 1:
        raise BenchError(f"--seeds must be at least 1, not {n_seeds}")
    return [config.seed + k for k in range(n_seeds)]


def bench_student(
    data_dir: str | Path,
    source: str = "en",
    target: str = "de",
    config: TrainConfig = BENCH_CONFIG,
    corrections: Sequence[int] = CORRECTIONS,
    seed: int = 13,
    corrections_order: str = "confidence",
    n_seeds: int = SEEDS,
) -> dict[str, Any]:
    """Model transfer vs data transfer vs data transfer + N corrections (module docstring).

    Every setting is trained ``n_seeds`` times (training seeds ``config.seed``,
    ``config.seed + 1``, ...); the headline figures are the means, ``per_seed`` holds each
    run's F1. ``seed`` fixes the order in which sentences get corrected (the same for every
    training seed). ``corrections_order``: which training sentences are corrected first:
    ``confidence`` (the review queue, lowest projection confidence first: what reviewers
    do) or ``random``.
    """
    if corrections_order not in ("random", "confidence"):
        raise BenchError(f"corrections order must be random or confidence, not {corrections_order!r}")
    seeds = _seeds(config, n_seeds)
    items = load_europarl(data_dir, source, target)
    train, test = items[:N_TRAIN], items[N_TRAIN : N_TRAIN + N_TEST]
    runs: list[dict] = []
    result: dict[str, Any] = {"source": source.lower(), "target": target.lower(), "train": len(train), "test": len(test)}

    started = time.perf_counter()
    projected, how = project_for_bench(train)
    result["projection"] = how
    result["projection_seconds"] = round(time.perf_counter() - started, 1)
    from core.metrics import span_scores

    result["projection_train_f1"] = round(
        span_scores([it.target for it in train], [it.target_spans for it in train], [it.target_spans for it in projected])["f1"], 4
    )
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    if corrections_order == "confidence":  # stable: ties keep the shuffled order
        order.sort(key=lambda i: sentence_confidence(projected[i]))
    settings: dict[str, tuple[list[Item], TrainConfig]] = {
        "model_transfer": (train, replace(config, side="source")),  # train[i]: English gold on the source side
        "data_transfer": (projected, replace(config, side="target")),
    }
    wrong = [len(_span_keys(p) ^ _span_keys(g)) for p, g in zip(projected, train)]  # spans to add or remove
    result["projection_train_errors"] = {"sentences": sum(w > 0 for w in wrong), "spans": sum(wrong)}
    result["errors_fixed"] = {}
    for n in corrections:
        chosen = set(order[:n])
        mixed = [train[i] if i in chosen else projected[i] for i in range(len(train))]  # train[i]: target gold
        settings[f"corrected_{n}"] = (mixed, replace(config, side="target"))
        result["errors_fixed"][str(n)] = {"sentences": sum(wrong[i] > 0 for i in chosen), "spans": sum(wrong[i] for i in chosen)}
    # every training sentence corrected: the most any number of corrections can add
    settings["all_corrected"] = (train, replace(config, side="target"))

    per_seed: dict[str, list[float]] = {name: [] for name in settings}
    for run_seed in seeds:
        for name, (data, run_config) in settings.items():
            student = _train(data, replace(run_config, seed=run_seed), f"{name} seed {run_seed}", runs)
            per_seed[name].append(round(_score(student, test)["f1"], 4))
            del student

    result["seeds"] = seeds
    result["model_transfer_f1"] = _mean(per_seed["model_transfer"])
    result["data_transfer_f1"] = _mean(per_seed["data_transfer"])
    result["corrected_f1"] = {str(n): _mean(per_seed[f"corrected_{n}"]) for n in corrections}
    result["all_corrected_f1"] = _mean(per_seed["all_corrected"])
    result["corrections_order"] = corrections_order
    result["per_seed"] = per_seed
    result["std_over_seeds"] = {name: round(float(np.std(v)), 4) for name, v in per_seed.items()}
    full = [e for r in runs if r["sentences"] == len(train) for e in r["epoch_seconds"]]
    result["seconds_per_epoch"] = round(float(np.mean(full or [e for r in runs for e in r["epoch_seconds"]])), 1)
    result["encoder_pass_seconds"] = max((r["feature_seconds"] or 0.0) for r in runs)
    result["peak_memory_mb"] = peak_memory_mb()
    result["epochs"] = config.epochs
    result["config"] = {k: v for k, v in config.to_dict().items() if k not in ("side", "seed")}
    result["runs"] = runs
    return result


def _span_keys(item: Item) -> set:
    return {s.key() for s in item.target_spans}


def top_share(scores: Sequence[float], errors: Sequence[bool], fraction: float = TOP_FRACTION) -> float:
    """Share of the erroneous sentences among the ``fraction`` highest-scored (stable sort)."""
    n_errors = sum(errors)
    if n_errors == 0:
        return 0.0
    k = math.ceil(fraction * len(scores))
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return sum(errors[i] for i in order[:k]) / n_errors


def sentence_confidence(item: Item) -> float:
    """Projection confidence of a sentence: 0 if a source entity was lost, else its weakest span."""
    if item.meta.get("unprojected") or len(item.target_spans) < len(item.source_spans):
        return 0.0
    confidences = [s.confidence if s.confidence is not None else 1.0 for s in item.target_spans]
    return min(confidences) if confidences else 1.0


def bench_queue(
    data_dir: str | Path,
    source: str = "en",
    target: str = "de",
    config: TrainConfig = BENCH_CONFIG,
    seed: int = 13,
    n_seeds: int = SEEDS,
) -> dict[str, Any]:
    """How many projection errors the first 20 % of each queue order holds (module docstring).

    The disagreement order is measured with ``n_seeds`` training seeds (the fold split is
    fixed by ``seed``); the headline is the mean recall, ``per_seed`` holds each one.
    """
    from core.student.inference import disagreement, predict_details

    seeds = _seeds(config, n_seeds)
    items = load_europarl(data_dir, source, target)
    started = time.perf_counter()
    projected, how = project_for_bench(items)
    projection_seconds = time.perf_counter() - started
    errors = [_span_keys(p) != _span_keys(g) for p, g in zip(projected, items)]

    confidence_scores = [-sentence_confidence(p) for p in projected]  # lowest confidence first

    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    folds = [sorted(order[0::2]), sorted(order[1::2])]
    runs: list[dict] = []
    disagreement_recalls, combined_recalls = [], []
    conf_rank = np.argsort(np.argsort(confidence_scores))
    for run_seed in seeds:
        scores = [0.0] * len(items)
        data_config = replace(config, side="target", seed=run_seed)
        for k, ranked in enumerate(folds):
            trained_on = folds[1 - k]
            student = _train([projected[i] for i in trained_on], data_config, f"fold_{k} seed {run_seed}", runs)
            details = predict_details(student, [projected[i].target for i in ranked])
            for i, d in zip(ranked, details):
                scores[i] = disagreement(d, projected[i].target_spans)
            del student
        disagreement_recalls.append(round(top_share(scores, errors), 4))
        combined = list((conf_rank + np.argsort(np.argsort(scores))).astype(float))
        combined_recalls.append(round(top_share(combined, errors), 4))

    rng = np.random.default_rng(seed)
    random_shares = [top_share(list(rng.random(len(items))), errors) for _ in range(100)]
    return {
        "source": source.lower(),
        "target": target.lower(),
        "sentences": len(items),
        "erroneous_sentences": int(sum(errors)),
        "top_k": math.ceil(TOP_FRACTION * len(items)),
        "confidence_top20_recall": round(top_share(confidence_scores, errors), 4),
        "disagreement_top20_recall": _mean(disagreement_recalls),
        "combined_top20_recall": _mean(combined_recalls),
        "random_top20_recall": round(float(np.mean(random_shares)), 4),
        "seeds": seeds,
        "per_seed": {"disagreement_top20_recall": disagreement_recalls, "combined_top20_recall": combined_recalls},
        "disagreement": "1 - min over words of p_student(projected tag) (core.student.disagreement)",
        "projection": how,
        "projection_seconds": round(projection_seconds, 1),
        "protocol": "2-fold cross-fitting: each half is ranked by a student trained on the projection of the other half",
        "seconds_per_epoch": round(float(np.mean([e for r in runs for e in r["epoch_seconds"]])), 1),
        "peak_memory_mb": peak_memory_mb(),
        "epochs": config.epochs,
        "config": {k: v for k, v in config.to_dict().items() if k not in ("side", "seed")},
        "runs": runs,
    }
