"""``bench transfer``: does translate-train beat model transfer on a real target test set?

The standard cross-lingual NER experiment (e.g. CoNLL-2003 English -> CoNLL-2002 Spanish):

- ``model_transfer``: the student fine-tuned on the source-language gold and applied to the
  target language as is (the multilingual encoder carries it over);
- ``data_transfer``: translate-train: the source gold is machine-translated, its spans are
  projected onto the translation (the project defaults: ``core.projection.DEFAULT_METHOD``
  over ``DEFAULT_ALIGNER``), and the student is trained on the projected target sentences;
- ``both``: the source gold and the projected translations together.

Each setting is trained ``seeds`` times for a fixed number of epochs with no dev set (a
translate-train user has no target gold to stop on), and scored strictly (seqeval, IOB2) on
each target test file. Only labels the training data and the test gold share are scored
(MasakhaNER2's DATE is not in CoNLL-2003); the JSON names those left out.

With ``model_only`` only model transfer runs, e.g. on Europarl or MasakhaNER2 test files; with
``model_student`` a saved student (``teacher train``) is the model-transfer model and nothing
is trained.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.data import Item
from core.errors import BenchError
from core.student.bench import peak_memory_mb, seconds_per_epoch_per_1000
from core.student.config import TrainConfig

__all__ = ["BENCH_EPOCHS", "BENCH_LIMIT", "as_target_gold", "bench_transfer", "complete_projections", "project_translate_train", "read_gold", "score_student"]

BENCH_LIMIT = 5000  # source training sentences: 3 seeds x 3 settings fit the hour on 2 cores
BENCH_EPOCHS = 2


def _log(text: str) -> None:
    print(f"[bench transfer] {text}", file=sys.stderr, flush=True)


def project_translate_train(items: Sequence[Item], translator: Any, src: str, tgt: str, progress: bool = True) -> tuple[list[Item], dict]:
    """Translate the source gold, align and project with the project defaults.

    Returns the projected items (target = translation, target_spans = projected, silver) and
    what it took: seconds per step and the spans kept."""
    from core.align import align_items, get_aligner
    from core.projection import DEFAULT_ALIGNER, DEFAULT_METHOD, project_items
    from core.translate import translate_items

    timing: dict[str, Any] = {"translator": getattr(translator, "name", str(translator)), "projection": f"{DEFAULT_METHOD} over {DEFAULT_ALIGNER}"}
    started = time.perf_counter()
    translated = translate_items(list(items), translator, src, tgt)
    timing["translate_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    options = {"progress": progress} if DEFAULT_ALIGNER.startswith("simalign") else {}
    aligned = align_items([it.with_(meta={**it.meta, "gold": False}) for it in translated], get_aligner(DEFAULT_ALIGNER, **options))
    timing["align_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    projected = project_items(aligned, DEFAULT_METHOD)
    timing["project_seconds"] = round(time.perf_counter() - started, 1)
    timing["source_spans"] = sum(len(it.source_spans) for it in items)
    timing["projected_spans"] = sum(len(it.target_spans) for it in projected)
    timing["incomplete_sentences"] = sum(1 for it in projected if it.meta.get("unprojected"))
    return projected, timing


def complete_projections(items: Sequence[Item]) -> list[Item]:
    """The projected items whose every source entity reached the translation: in the others
    the missed entity's words would be taught as O (the usual translate-train filter)."""
    return [it for it in items if not it.meta.get("unprojected")]


def as_target_gold(items: Sequence[Item]) -> list[Item]:
    """Source-language gold items presented on the target side, so one ``side="target"``
    training run can mix them with projected translations (the ``both`` setting)."""
    return [it.with_(target=it.source, target_spans=list(it.source_spans), alignment=[], meta={**it.meta, "gold": True}) for it in items]


def read_gold(path: str, lang: str | None) -> list[Item]:
    """A labelled file, or a BenchError naming it."""
    from core.formats import FormatError, read

    try:
        items = read(path, lang=lang)
    except FormatError as exc:
        raise BenchError(str(exc)) from None
    except OSError as exc:
        raise BenchError(f"{path}: {exc.strerror or exc}") from None
    if not items:
        raise BenchError(f"{path}: no sentences")
    return items


def score_student(student: Any, test: Sequence[Item], labels: set[str]) -> dict[str, Any]:
    """The student's strict scores on a gold file's items (their ``source`` side), on ``labels``."""
    from core.metrics import label_scores
    from core.student.inference import predict

    sentences = [it.source for it in test]
    return label_scores(sentences, [it.source_spans for it in test], predict(student, sentences), labels)


def _summary(values: Sequence[float]) -> dict[str, Any]:
    return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4), "per_seed": list(values)}


def bench_transfer(
    source_train: str,
    target_tests: Sequence[str],
    target_lang: str,
    translator: str = "apertium",
    *,
    source_lang: str = "en",
    limit: int | None = BENCH_LIMIT,
    seeds: int = 3,
    config: TrainConfig | None = None,
    model_only: bool = False,
    model_student: str | None = None,
    labels: Sequence[str] | None = None,
    complete_only: bool = False,
    settings: Sequence[str] = ("model_transfer", "data_transfer", "both"),
    progress: bool = True,
) -> dict[str, Any]:
    """Model vs data transfer vs both on ``target_tests`` (module docstring). ``complete_only``
    trains data transfer (and both) on the completely projected sentences only;
    ``settings`` chooses which of the three run."""
    from core.student.model import load_student
    from core.student.train import train_student
    from core.translate import load_translator

    if not target_tests:
        raise BenchError("give at least one target test file")
    if seeds < 1:
        raise BenchError(f"--seeds must be at least 1, not {seeds}")
    config = config or replace(TrainConfig(), epochs=BENCH_EPOCHS, finetune_encoder=True)
    started_all = time.perf_counter()
    tests = {path: read_gold(path, target_lang) for path in target_tests}
    train: list[Item] = []
    if model_student is None:
        train = read_gold(source_train, source_lang)
        train = [it for it in train if len(it.source)][:limit] if limit else [it for it in train if len(it.source)]
        if not any(it.source_spans for it in train):
            raise BenchError(f"{source_train}: no labelled entities to learn from")
    result: dict[str, Any] = {
        "bench": "transfer",
        "source_train": None if model_student else source_train,
        "model_student": model_student,
        "source_lang": source_lang,
        "target_lang": target_lang,
        "train": len(train),
        "tests": {},
    }
    unknown = set(settings) - {"model_transfer", "data_transfer", "both"}
    if unknown:
        raise BenchError(f"unknown setting {sorted(unknown)[0]!r}; expected model_transfer, data_transfer or both")
    students: dict[str, list[Any]] = {}
    runs_of: dict[str, tuple[list[Item], TrainConfig]] = {}
    if model_student is not None:
        students["model_transfer"] = [load_student(model_student)]
        train_labels = set(students["model_transfer"][0].labels) - {"O"}
        train_labels = {lab[2:] if lab[:2] in ("B-", "I-") else lab for lab in train_labels}
    else:
        train_labels = {sp.label for it in train for sp in it.source_spans}
        runs_of["model_transfer"] = (train, replace(config, side="source"))
        if not model_only and {"data_transfer", "both"} & set(settings):
            _log(f"translating {len(train)} sentences {source_lang}->{target_lang} with {translator}, aligning, projecting")
            projected, projection = project_translate_train(train, load_translator(translator), source_lang, target_lang, progress=progress)
            if complete_only:
                projected = complete_projections(projected)
                if not projected:
                    raise BenchError(f"no translation kept every entity of its source sentence ({len(train)} tried); drop --complete-only")
            result["projection"] = {**projection, "complete_only": complete_only, "trained_on": len(projected)}
            runs_of["data_transfer"] = (projected, replace(config, side="target"))
            runs_of["both"] = (as_target_gold(train) + projected, replace(config, side="target"))
        runs_of = {name: run for name, run in runs_of.items() if name in settings}
    runs: list[dict[str, Any]] = []
    scores: dict[str, dict[str, list[float]]] = {path: {} for path in tests}
    per_label: dict[str, dict[str, Any]] = {path: {} for path in tests}
    score_labels: dict[str, set[str]] = {}
    for path, test in tests.items():
        gold_labels = {sp.label for it in test for sp in it.source_spans}
        keep = gold_labels & train_labels & (set(labels) if labels else gold_labels)
        if not keep:
            raise BenchError(f"{path}: its labels {sorted(gold_labels)} share none with the training data's {sorted(train_labels)}")
        score_labels[path] = keep
        result["tests"][path] = {"sentences": len(test), "labels": sorted(keep), "labels_left_out": sorted(gold_labels - keep)}

    def score_all(name: str, student: Any) -> None:
        for path, test in tests.items():
            out = score_student(student, test, score_labels[path])
            scores[path].setdefault(name, []).append(out["f1"])
            per_label[path].setdefault(name, out["per_label"])  # the first seed's, for reading

    if model_student is not None:
        score_all("model_transfer", students["model_transfer"][0])
    for k in range(seeds):
        run_seed = config.seed + k
        for name, (data, run_config) in runs_of.items():
            began = time.perf_counter()
            student = train_student(data, (), replace(run_config, seed=run_seed))
            seconds = time.perf_counter() - began
            runs.append({"run": name, "seed": run_seed, "sentences": len(data), "seconds": round(seconds, 1),
                         "mode": student.history[0].get("mode") if student.history else None,
                         "dtype": student.history[0].get("precision") if student.history else None,
                         "seconds_per_epoch_per_1000": seconds_per_epoch_per_1000(student.history, len(data))})  # fmt: skip
            score_all(name, student)
            _log(f"{name} seed {run_seed}: {len(data)} sentences in {seconds:.0f} s; "
                 + ", ".join(f"{Path(p).parent.name}/{Path(p).name} F1 {scores[p][name][-1]:.3f}" for p in tests))  # fmt: skip
            del student
    for path in tests:
        entry = result["tests"][path]
        for name, values in scores[path].items():
            entry[f"{name}_f1"] = _summary(values)
        entry["per_label"] = per_label[path]
        if "data_transfer" in scores[path] and "model_transfer" in scores[path]:
            entry.update(_differences(scores[path]))
    first = result["tests"][target_tests[0]]
    for name in ("model_transfer", "data_transfer", "both"):
        if f"{name}_f1" in first:
            result[f"{name}_f1"] = first[f"{name}_f1"]["mean"]
    result["std"] = {name: first[f"{name}_f1"]["std"] for name in ("model_transfer", "data_transfer", "both") if f"{name}_f1" in first}
    for key in ("data_minus_model", "data_minus_model_over_2std"):
        if key in first:
            result[key] = first[key]
    rates = [r["seconds_per_epoch_per_1000"] for r in runs if r["seconds_per_epoch_per_1000"] is not None]
    result["seconds_per_epoch_per_1000"] = round(float(np.mean(rates)), 2) if rates else None
    result["seeds"] = [config.seed + k for k in range(seeds)] if runs_of else []
    result["epochs"] = config.epochs
    result["config"] = {k: v for k, v in config.to_dict().items() if k not in ("side", "seed")}
    result["runs"] = runs
    result["seconds"] = round(time.perf_counter() - started_all, 1)
    result["peak_mb"] = peak_memory_mb()
    return result


def _differences(scores: dict[str, list[float]]) -> dict[str, Any]:
    """Data minus model transfer, and whether it exceeds twice the larger seed std."""
    data, model = np.array(scores["data_transfer"]), np.array(scores["model_transfer"])
    diff = float(data.mean() - model.mean())
    spread = 2 * max(float(data.std()), float(model.std()))
    return {"data_minus_model": round(diff, 4), "data_minus_model_over_2std": bool(diff > spread)}
