"""Student training and prediction over a project's database items, as background jobs.

One training run:

1. the training pool (``training_pool``): each item's target labels as the ledger gives
   them (core.annotations.ledger.training_labels): gold when people or gold data decided
   them (adjudicated, accepted, imported gold), silver when they are the projection;
2. the project's held-out gold TEST split: drawn once (``TEST_FRACTION`` of the gold items,
   when there are at least ``MIN_GOLD_FOR_TEST``) and stored, so every version is scored on
   the same sentences; its items are never trained on, not even their projections. New
   gold items go to training; only ``new_test_split`` draws the split again;
3. a dev split for early stopping (``DEV_FRACTION`` of the other gold items, when there
   are at least ``MIN_GOLD_FOR_DEV``), drawn per run with the training seed;
4. ``core.student.train_student`` with progress, the loss curve and cancellation wired
   to the job row (``done``/``total`` = optimizer steps, ``result`` = the live curve);
5. seqeval strict IOB2 scores on the test split; the model is written to a temporary
   folder, then moved to ``settings().models_dir/students/<id>-<project>/<version>`` in
   the transaction that records the version row, so a crash at any point leaves no
   version, no folder, and the project's items untouched (the job is marked failed).

Prediction runs the active version over every item with a translation and stores a
``student:<version>`` target span set per item with the student's uncertainty and its
disagreement with the projection (core.student.disagreement: 1 - the student's lowest
probability of a projected tag; db.students.save_student_predictions stores both in the
set's settings, student_scores reads them back).

Both run as jobs through services.jobs (a separate process per job started with
``start_training_job`` / ``start_predict_job``; CLI: cli.train). Both take a Session and
commit it where a step must be durable (the test split, each prediction chunk, the new
version); no transaction is held open while a model trains.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import time
import uuid
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy.orm import Session

from core.annotations.ledger import source_training_labels, training_labels
from core.config import REPO_ROOT, settings
from core.data import Item
from core.errors import LabelBridgeError
from core.student.bench import peak_memory_mb
from db import students as sq
from db.codecs import chunks
from db.errors import DuplicateError, NotFoundError, QueryError
from db.items import item_ids as project_item_ids
from db.items import load_items
from db.jobs import JobInfo
from db.projects import ProjectInfo, get_project
from services.jobs import JobReporter, refresh_jobs, start_job_process
from services.labels import preferred_source

if TYPE_CHECKING:  # torch is imported only when a model is trained or run
    from core.student import TrainConfig

__all__ = [
    "ACTIVATE_CHOICES",
    "JOB_KIND_PREDICT",
    "JOB_KIND_TRAIN",
    "STUDENT_JOB_KINDS",
    "PoolItem",
    "PredictReport",
    "Splits",
    "TrainReport",
    "TrainingError",
    "TrainingOptions",
    "draw_test_split",
    "model_dir",
    "resolve_teacher_spec",
    "prepare_splits",
    "run_prediction",
    "run_training",
    "split_pool",
    "start_predict_job",
    "start_training_job",
    "training_args",
    "training_pool",
]

JOB_KIND_TRAIN = "train"
JOB_KIND_PREDICT = "predict"
STUDENT_JOB_KINDS = (JOB_KIND_TRAIN, JOB_KIND_PREDICT)
ACTIVATE_CHOICES = ("auto", "yes", "no")  # auto: when none is active or the new one scores at least as well

TEST_FRACTION = 0.2
MIN_GOLD_FOR_TEST = 10
MAX_TEST_ITEMS = 2000
DEV_FRACTION = 0.1
MIN_GOLD_FOR_DEV = 20
LOSS_CURVE_POINTS = 300  # the stored loss curve is averaged down to this many points
PREDICT_CHUNK = 256  # items per prediction batch (one commit each)


class TrainingError(LabelBridgeError):
    """A run that cannot start: unknown project, no training data, no active version."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TrainingOptions:
    """A training job's request: the student's TrainConfig plus what to do with the result."""

    config: "TrainConfig" = None  # type: ignore[assignment]  # None = TrainConfig() defaults
    activate: str = "auto"
    new_test_split: bool = False
    continue_active: bool = False  # a warm start: go on from the active version (an epoch after a batch of corrections)
    with_source: bool = False  # also learn from the source-language gold ("both": measured best in bench transfer)
    start_student: str | None = None  # a warm start from another student: student:FOLDER or student:PROJECT@VERSION (e.g. the English teacher)

    def __post_init__(self) -> None:
        from core.student import TrainConfig

        if self.config is None:
            object.__setattr__(self, "config", TrainConfig())
        if self.config.side != "target":
            raise TrainingError("project students learn the target side (config.side must be 'target')")
        if self.activate not in ACTIVATE_CHOICES:
            raise TrainingError(f"activate must be one of {ACTIVATE_CHOICES}, not {self.activate!r}")
        if self.continue_active and self.new_test_split:
            raise TrainingError("a new test split and 'continue from the active version' do not go together: the active "
                                "version's weights may have seen the new test items; train from scratch")  # fmt: skip
        if self.start_student is not None:
            if self.continue_active:
                raise TrainingError("start from one student: either 'continue from the active version' or another student, not both")
            if not self.start_student.startswith("student:") or not self.start_student[len("student:"):].strip():
                raise TrainingError(f"start from {self.start_student!r}: give a saved student as student:FOLDER or student:PROJECT@VERSION")

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "activate": self.activate, "new_test_split": self.new_test_split,
                "continue_active": self.continue_active, "with_source": self.with_source, "start_student": self.start_student}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrainingOptions":
        from core.student import TrainConfig

        return cls(TrainConfig.from_dict(data.get("config") or {}), data.get("activate", "auto"), bool(data.get("new_test_split")),
                   bool(data.get("continue_active")), bool(data.get("with_source")), data.get("start_student") or None)  # fmt: skip


def training_args(options: TrainingOptions) -> list[str]:
    """The ``train`` command-line options that reproduce ``options`` (see cli.train)."""
    c = options.config
    args = ["--epochs", str(c.epochs), "--lr", repr(c.learning_rate), "--head-lr", repr(c.head_learning_rate),
            "--batch-size", str(c.batch_size), "--seed", str(c.seed), "--patience", str(c.patience),
            "--w-gold", repr(c.w_gold), "--w-silver", repr(c.w_silver), "--silver-threshold", repr(c.silver_threshold),
            "--gold-share", repr(c.gold_share or 0), "--word-form", c.word_form,
            "--activate", options.activate]  # fmt: skip
    if c.encoder:
        args += ["--encoder", c.encoder]
    if c.finetune_encoder is not None:  # None: chosen by the time budget
        args.append("--finetune" if c.finetune_encoder else "--no-finetune")
    args += ["--encoder-layers", str(c.encoder_layers or 0), "--precision", c.precision, "--time-budget", repr(c.time_budget_s)]
    args.append("--freeze-embeddings" if c.freeze_embeddings else "--no-freeze-embeddings")
    if c.image_encoder:
        args += ["--images", "--image-encoder", c.image_encoder]
    if options.new_test_split:
        args.append("--new-test-split")
    if options.continue_active:
        args.append("--continue")
    if options.with_source:
        args.append("--with-source")
    if options.start_student:
        args += ["--start-from", options.start_student]
    return args


# --------------------------------------------------------------------------- training data


@dataclass(frozen=True, slots=True)
class PoolItem:
    """An item a student may learn from: its target spans are the ones to learn."""

    item_id: int  # database id
    item: Item  # target_spans = the labels to learn; meta["gold"] says gold or silver
    gold: bool
    source: str  # where the labels come from: adjudicated, gold, human:<user>, projection:<method>


def training_pool(s: Session, project_id: int, media_dir: Path | None = None) -> list[PoolItem]:
    """Every item a student can learn from, gold and silver, in item order: the ledger's
    training labels of each item (items without a translation or labels are left out)."""
    get_project(s, project_id)
    preferred = preferred_source(s, project_id)
    pool: list[PoolItem] = []
    for chunk in chunks(project_item_ids(s, project_id)):
        for record in load_items(s, chunk, media_dir):
            found = training_labels(record, preferred)
            if found is None:
                continue
            item = record.as_item(target_spans=found.spans)
            pool.append(PoolItem(record.id, item.with_(meta={**item.meta, "gold": found.gold}), found.gold, found.source))
    return pool


def source_gold_pool(s: Session, project_id: int, exclude: Iterable[int] = ()) -> list[PoolItem]:
    """The source sentences people or gold data labelled, as extra gold items for the
    target-language student (the ledger's ``source_training_labels``); items in ``exclude``
    (the test and dev splits) are left out, so nothing of a held-out item is trained on."""
    skip = set(exclude)
    pool: list[PoolItem] = []
    for chunk in chunks(project_item_ids(s, project_id)):
        for record in load_items(s, chunk):
            if record.id in skip:
                continue
            found = source_training_labels(record)
            if found is None or not found.spans:
                continue
            item = Item(f"{record.external_id}:source", record.source, target=record.source, target_spans=found.spans, meta={"gold": True})
            pool.append(PoolItem(record.id, item, True, f"source:{found.source}"))
    return pool


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Splits:
    train: list[PoolItem]  # gold and silver, never a test item
    dev: list[PoolItem]  # gold, for early stopping
    test: list[PoolItem]  # gold items of the stored test split
    test_ids: list[int]  # the stored split (its digest identifies it)

    def item_ids(self) -> dict[str, list[int]]:
        return {
            "train_gold": [p.item_id for p in self.train if p.gold],
            "train_silver": [p.item_id for p in self.train if not p.gold],
            "dev": [p.item_id for p in self.dev],
            "test": [p.item_id for p in self.test],
        }


def draw_test_split(
    gold_ids: Sequence[int],
    seed: int,
    fraction: float = TEST_FRACTION,
    minimum: int = MIN_GOLD_FOR_TEST,
    maximum: int = MAX_TEST_ITEMS,
) -> list[int]:
    """A seeded sample of ``fraction`` of the gold items (empty below ``minimum`` gold items:
    a test set of one or two sentences would only say noise)."""
    ids = sorted(set(gold_ids))
    if len(ids) < minimum:
        return []
    n = min(maximum, max(1, round(len(ids) * fraction)))
    return sorted(random.Random(seed).sample(ids, n))


def split_pool(
    pool: Sequence[PoolItem],
    test_ids: Iterable[int],
    seed: int,
    dev_fraction: float = DEV_FRACTION,
    min_gold_for_dev: int = MIN_GOLD_FOR_DEV,
) -> Splits:
    """Train/dev/test from the pool. Every item of the test split stays out of training
    (a test item that is not gold any more is simply not scored)."""
    held = set(test_ids)
    test = [p for p in pool if p.item_id in held and p.gold]
    rest = [p for p in pool if p.item_id not in held]
    gold = [p for p in rest if p.gold]
    dev: list[PoolItem] = []
    if len(gold) >= min_gold_for_dev and dev_fraction > 0:
        n_dev = max(2, round(len(gold) * dev_fraction))
        dev_ids = set(random.Random(seed).sample(sorted(p.item_id for p in gold), n_dev))
        dev = [p for p in gold if p.item_id in dev_ids]
    dev_set = {p.item_id for p in dev}
    train = [p for p in rest if p.item_id not in dev_set]
    return Splits(train, dev, test, sorted(held))


def _split_seed(project_id: int, n_gold: int) -> int:
    """The test split does not depend on the training seed: one per project (and gold count)."""
    return zlib.crc32(f"student-test-split:{project_id}:{n_gold}".encode())


def prepare_splits(s: Session, project_id: int, seed: int, new_test_split: bool = False) -> Splits:
    """Load the pool, draw and store (commit) the test split when there is none yet (or
    when asked)."""
    from sqlalchemy.exc import IntegrityError

    for attempt in range(3):
        try:
            pool = training_pool(s, project_id)
            test_ids = sq.test_split_ids(s, project_id)
            if new_test_split or not test_ids:
                gold_ids = [p.item_id for p in pool if p.gold]
                drawn = draw_test_split(gold_ids, _split_seed(project_id, len(gold_ids)))
                if new_test_split and not drawn:
                    raise TrainingError(f"a new test split needs at least {MIN_GOLD_FOR_TEST} gold items; the project has {len(gold_ids)}")
                if drawn:
                    test_ids = sq.set_test_split(s, project_id, drawn)
            s.commit()
            return split_pool(pool, test_ids, seed)
        except IntegrityError:  # another job stored a split at the same moment: read theirs
            s.rollback()
            if attempt == 2:
                raise
            new_test_split = False
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- loss curve


def _curve(points: Sequence[tuple[int, float]], n: int = LOSS_CURVE_POINTS) -> list[list[float]]:
    """``[[step, loss], ...]`` averaged over equal buckets down to at most ``n`` points."""
    if len(points) <= n:
        return [[int(st), round(float(loss), 5)] for st, loss in points]
    size = len(points) / n
    out = []
    for b in range(n):
        bucket = points[int(b * size) : int((b + 1) * size)]
        if bucket:
            out.append([int(bucket[-1][0]), round(sum(loss for _, loss in bucket) / len(bucket), 5)])
    return out


# --------------------------------------------------------------------------- training


@dataclass
class TrainReport:
    project_id: int
    version: int | None = None  # None when cancelled
    test_f1: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    item_counts: dict[str, int] = field(default_factory=dict)
    active: bool = False
    path: str | None = None
    cancelled: bool = False

    @property
    def message(self) -> str:
        if self.cancelled:
            return "cancelled"
        f1 = "no test split yet" if self.test_f1 is None else f"test F1 {self.test_f1:.3f}"
        return f"version {self.version}: {f1}" + (" (active)" if self.active else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id, "version": self.version, "test_f1": self.test_f1, "metrics": self.metrics,
            "item_counts": self.item_counts, "active": self.active, "path": self.path, "cancelled": self.cancelled,
        }  # fmt: skip


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "project"


def students_root(project_id: int, project_name: str) -> Path:
    """Where a project's versions live: ``models_dir/students/<id>-<name>/`` (the id keeps
    two names that slug alike apart)."""
    return settings().models_dir / "students" / f"{project_id}-{_slug(project_name)}"


def resolve_teacher_spec(s: Session, spec: str) -> str:
    """``student:PROJECT@VERSION`` (a model version LabelBridge trained) as ``student:FOLDER``;
    any other spec unchanged. Raises NotFoundError for an unknown project or version."""
    import re

    kind, _, rest = spec.partition(":")
    match = re.fullmatch(r"(.+)@(\d+)", rest) if kind == "student" else None
    if match is None or Path(rest).expanduser().exists():
        return spec
    project = get_project(s, match.group(1))
    return f"student:{model_dir(sq.get_model_version(s, project.id, int(match.group(2))))}"


def start_student_folder(s: Session, project_id: int, spec: str) -> Path:
    """The folder of the student a run starts from (``TrainingOptions.start_student``): a saved
    folder or another project's version, e.g. the English teacher of ``make teacher`` (model
    transfer, then adapted to this project's items). This project's own versions go through
    'continue', which checks the test split. Raises TrainingError naming the spec."""
    try:
        resolved = resolve_teacher_spec(s, spec)
    except NotFoundError as exc:
        raise TrainingError(f"start from {spec!r}: {exc}") from None
    folder = Path(resolved[len("student:"):]).expanduser()
    if not folder.is_absolute() and not folder.exists():  # the app and its jobs may run elsewhere: relative to the checkout too
        folder = REPO_ROOT / folder
    folder = folder.resolve()
    info = get_project(s, project_id)
    if folder.is_relative_to(students_root(project_id, info.name).resolve()):
        raise TrainingError(f"start from {spec!r}: that is a version of this project; use 'continue from the active version' "
                            "(it checks that the test split is the one the version was trained under)")  # fmt: skip
    meta = folder / "student.json"
    if not meta.is_file():
        raise TrainingError(f"start from {spec!r}: {folder} holds no saved student (student.json)")
    try:
        tags = json.loads(meta.read_text(encoding="utf-8")).get("labels") or []
    except (OSError, ValueError) as exc:
        raise TrainingError(f"start from {spec!r}: {meta} cannot be read: {exc}") from None
    extra = sorted({t[2:] for t in tags if t[:2] in ("B-", "I-")} - set(info.labels))
    if extra:  # its output rows would go on predicting them into this project's items and scores
        raise TrainingError(f"start from {spec!r}: it predicts {', '.join(extra)}, which project {info.name!r} does not have; "
                            "add those labels to the project or start from a student without them")  # fmt: skip
    return folder


def load_start_student(s: Session, project_id: int, spec: str, device: str = "auto") -> Any:
    """The student of ``start_student_folder``, loaded."""
    from core.student import load_student
    from core.student.config import StudentError

    folder = start_student_folder(s, project_id, spec)
    try:
        return load_student(folder, device=device)
    except (StudentError, OSError, ValueError) as exc:
        raise TrainingError(f"start from {spec!r}: {exc}") from None


def model_dir(version: sq.ModelVersionInfo) -> Path:
    """The folder of a saved version (paths are stored relative to settings().models_dir)."""
    path = Path(version.path)
    return path if path.is_absolute() else settings().models_dir / path


def _evaluate(student: Any, test: Sequence[PoolItem]) -> dict[str, Any] | None:
    from core.metrics import span_scores
    from core.student import predict

    if not test:
        return None
    sentences = [p.item.target for p in test]
    predicted = predict(student, sentences, [p.item.image for p in test])
    return span_scores(sentences, [p.item.target_spans for p in test], predicted)


def _should_activate(policy: str, active: sq.ModelVersionInfo | None, test_f1: float | None, digest: str | None) -> bool:
    if policy != "auto":
        return policy == "yes"
    if active is None or active.test_f1 is None or active.test_split != digest:
        return True  # nothing comparable is active: the newest version is the best guess
    return test_f1 is not None and test_f1 >= active.test_f1


def _record_version(
    s: Session, project_id: int, project_name: str, saved: Path, *, job_id: int | None, options: TrainingOptions,
    encoder: str, splits: Splits, metrics: dict[str, Any], test_f1: float | None,
) -> sq.ModelVersionInfo:  # fmt: skip
    """Move the saved model to its version folder and record (commit) the row, as one step:
    when the transaction fails, the folder is removed again; when the move fails, nothing is
    recorded."""
    root = students_root(project_id, project_name)
    digest = sq.test_split_digest(splits.test_ids)
    settings_json = {**options.to_json(), "encoder": encoder}
    for attempt in range(3):
        final: Path | None = None
        try:
            version = sq.next_version_number(s, project_id)
            activate = _should_activate(options.activate, sq.active_model_version(s, project_id), test_f1, digest)
            info = sq.add_model_version(
                s, project_id, version=version, path=str((root / str(version)).relative_to(settings().models_dir)),
                settings=settings_json, item_ids=splits.item_ids(), metrics=metrics, job_id=job_id,
                test_f1=test_f1, test_split=digest, activate=activate,
            )  # fmt: skip
            final = root / str(version)
            if final.exists():  # a folder without a row: left by a process killed mid-way
                shutil.rmtree(final)
            os.replace(saved, final)
            s.commit()
            return info
        except DuplicateError:  # a concurrent run took this number: the next one
            s.rollback()
            if final is not None and final.exists() and not saved.exists():
                os.replace(final, saved)
            if attempt == 2:
                raise
        except BaseException:
            s.rollback()
            if final is not None and final.exists() and not saved.exists():
                shutil.rmtree(final, ignore_errors=True)
            raise
    raise AssertionError("unreachable")


def run_training(s: Session, project: int | str, options: TrainingOptions, *, reporter: JobReporter | None = None) -> TrainReport:
    """Train a new version of the project's student (module docstring); returns its report.

    Raises TrainingError when there is nothing to train on; any other error leaves the
    project as it was (no version, no model folder).
    """
    from core.student import TrainingCancelled, train_student

    reporter = reporter or JobReporter(s, None)
    cancel, job_id = reporter.cancel, reporter.job_id
    report_progress = reporter.report
    try:
        info = get_project(s, project)
    except NotFoundError as exc:
        raise TrainingError(str(exc)) from None
    report_progress(force=True, message="reading the training data")
    config = options.config
    splits = prepare_splits(s, info.id, config.seed, options.new_test_split)
    counts = {k: len(v) for k, v in splits.item_ids().items()}
    if not splits.train:
        raise TrainingError(
            f"project {info.name!r} has nothing to train on: no reviewed or gold items and no projected items "
            "(run the pipeline or review some items first)"
        )
    extra: list[PoolItem] = []
    if options.with_source:
        extra = source_gold_pool(s, info.id, exclude=[p.item_id for p in splits.test + splits.dev])
        s.commit()
        counts["train_source_gold"] = len(extra)
    report = TrainReport(info.id, item_counts=counts)
    start_from, continued = None, None
    if options.continue_active:
        continued = sq.active_model_version(s, info.id)
        if continued is None:
            raise TrainingError(f"project {info.name!r} has no active student version to continue from: train one from scratch first")
        if continued.test_split != sq.test_split_digest(splits.test_ids):
            raise TrainingError(
                f"version {continued.version} was trained under another test split, so its weights may have seen today's test "
                "items: train from scratch (without 'continue') to score this split fairly"
            )
        from core.student import load_student

        start_from = load_student(model_dir(continued), device=config.device)
    elif options.start_student:
        start_from = load_start_student(s, info.id, options.start_student, config.device)
    report_progress(
        force=True,
        message=f"training on {counts['train_gold']} gold + {counts['train_silver']} silver item(s)"
        + (f" + {counts['train_source_gold']} source-language gold sentence(s)" if options.with_source else "") + "; "
        f"dev {counts['dev']}, test {counts['test']}; "
        + (f"going on from version {continued.version}" if continued is not None
           else f"going on from {options.start_student}" if start_from is not None else "preparing the encoder"),
    )

    losses: list[tuple[int, float]] = []
    started = time.perf_counter()

    def on_step(step: int, total: int, loss: float) -> None:
        losses.append((step, loss))
        steps_per_epoch = max(1, math.ceil(total / config.epochs))
        epoch = min(config.epochs, (step - 1) // steps_per_epoch + 1)
        report_progress(
            force=step == total or step % steps_per_epoch == 0,
            done=step, total=total, progress=0.95 * step / total,
            message=f"epoch {epoch}/{config.epochs} · step {step}/{total} · loss {loss:.4f}",
            live={"phase": "training", "epoch": epoch, "epochs": config.epochs, "loss_curve": _curve(losses)},
        )  # fmt: skip

    try:
        student = train_student([p.item for p in splits.train + extra], [p.item for p in splits.dev], config, on_step, cancel.is_set,
                                start_from=start_from)  # fmt: skip
    except TrainingCancelled:
        report.cancelled = True
        return report
    train_seconds = time.perf_counter() - started
    if cancel.is_set():
        report.cancelled = True
        return report

    report_progress(force=True, progress=0.96, message=f"scoring on {counts['test']} test item(s)")
    test = _evaluate(student, splits.test)
    dev_scores = [h["dev_f1"] for h in student.history if "dev_f1" in h]
    metrics = {
        "test": test,
        "dev_f1": max(dev_scores) if dev_scores else None,
        "best_epoch": student.best_epoch,
        "history": student.history,
        "loss_curve": _curve(losses),
        "steps": len(losses),
        "labels": list(student.labels),
        "train_seconds": round(train_seconds, 2),
        "continued_from": continued.version if continued is not None else None,
        "started_from": options.start_student,
        "peak_memory_mb": peak_memory_mb(),
    }
    report.metrics = metrics
    report.test_f1 = test["f1"] if test is not None else None

    report_progress(force=True, progress=0.98, message="saving the model")
    root = students_root(info.id, info.name)
    saved = root / f".tmp-{job_id if job_id is not None else 'cli'}-{uuid.uuid4().hex[:8]}"
    from core.student import save_student

    try:
        save_student(student, saved)
        if cancel.is_set():
            report.cancelled = True
            return report
        # what was trained: a warm start keeps the structure of the version it went on from
        trained = replace(options, config=student.config)
        encoder = str(student.config.encoder or settings().encoder)
        version = _record_version(
            s, info.id, info.name, saved, job_id=job_id, options=trained, encoder=encoder, splits=splits,
            metrics=metrics, test_f1=report.test_f1,
        )  # fmt: skip
    finally:
        if saved.exists():
            shutil.rmtree(saved, ignore_errors=True)
    report.version, report.active, report.path = version.version, version.active, str(model_dir(version))
    return report


# --------------------------------------------------------------------------- prediction


@dataclass
class PredictReport:
    project_id: int
    version: int
    items: int = 0  # items given predictions
    skipped: int = 0  # items without a translation
    cancelled: bool = False

    @property
    def message(self) -> str:
        return f"version {self.version} predicted {self.items} item(s)" + (f", {self.skipped} without a translation" if self.skipped else "")

    def to_json(self) -> dict[str, Any]:
        return {"project_id": self.project_id, "version": self.version, "items": self.items, "skipped": self.skipped, "cancelled": self.cancelled}


def run_prediction(
    s: Session,
    project: int | str,
    version: int | None = None,
    *,
    batch_size: int = 32,
    reporter: JobReporter | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PredictReport:
    """Run a student version (default: the active one) over every item with a translation
    and store its ``student:<version>`` span sets with uncertainty and disagreement.

    Committed per chunk of items; a cancelled or crashed run leaves every item with either
    its old student set or the new one. Raises TrainingError without a version to run.
    """
    from core.annotations.ledger import suggestion
    from core.student import disagreement, load_student, predict_details

    reporter = reporter or JobReporter(s, None)
    cancel, job_id = reporter.cancel, reporter.job_id
    try:
        info = get_project(s, project)
        chosen = sq.get_model_version(s, info.id, version) if version is not None else sq.active_model_version(s, info.id)
    except NotFoundError as exc:
        raise TrainingError(str(exc)) from None
    if chosen is None:
        raise TrainingError(f"project {info.name!r} has no active student version: train one first")
    ids = project_item_ids(s, info.id)
    preferred = preferred_source(s, info.id)
    s.commit()
    reporter.report(force=True, done=0, total=len(ids), message=f"loading student version {chosen.version}")
    student = load_student(model_dir(chosen))
    report = PredictReport(info.id, chosen.version)
    from tqdm import tqdm

    bar = tqdm(total=len(ids), desc=f"student {chosen.version} predicting", unit="item", disable=job_id is not None)
    try:
        for start in range(0, len(ids), PREDICT_CHUNK):
            if cancel.is_set():
                report.cancelled = True
                break
            chunk = ids[start : start + PREDICT_CHUNK]
            records = [r for r in load_items(s, chunk) if r.target is not None]
            s.commit()
            report.skipped += len(chunk) - len(records)
            predictions = predict_details(
                student, [r.target for r in records], [str(r.image_path) if r.image_path else None for r in records],
                batch_size=batch_size, source=chosen.source,
            )  # fmt: skip
            rows = []
            for r, pred in zip(records, predictions):
                shown = suggestion(r.annotations.span_sets, "target", preferred)
                against = shown if shown is not None and shown.source.startswith("projection:") else None
                rows.append(sq.PredictionRow(r.id, pred.spans, pred.uncertainty, pred.entropy,
                                             disagreement(pred, list(against.spans)) if against is not None else None))  # fmt: skip
            report.items += sq.save_student_predictions(s, info.id, chosen.source, rows, chosen.version)
            s.commit()
            done = min(start + PREDICT_CHUNK, len(ids))
            bar.update(len(chunk))
            if on_progress is not None:
                on_progress(done, len(ids))
            reporter.report(force=done == len(ids), done=done, total=len(ids), message=f"student {chosen.version}: {done}/{len(ids)} item(s)")
    finally:
        bar.close()
    return report


# --------------------------------------------------------------------------- starting jobs (the page)


def _check_idle(s: Session, info: ProjectInfo, kind: str) -> None:
    """One job of a kind per project at a time (a dead worker's job does not count)."""
    busy = [j for j in refresh_jobs(s, info.id, kind=kind) if j.status in ("queued", "running")]
    if busy:
        what = "training" if kind == JOB_KIND_TRAIN else "prediction"
        raise QueryError(f"{what} job {busy[0].id} of project {info.name!r} is still {busy[0].status}; wait for it or cancel it")


def start_training_job(s: Session, project: int | str, options: TrainingOptions) -> JobInfo:
    """Create a training job and start its worker process; returns at once with the job.
    Raises QueryError while another training job of the project runs."""
    info = get_project(s, project)
    _check_idle(s, info, JOB_KIND_TRAIN)
    if options.start_student:  # a bad spec is said on the page, not in a failed job; the job gets the folder it was checked as
        options = replace(options, start_student=f"student:{start_student_folder(s, info.id, options.start_student)}")
    args = ["train", "--project", info.name, *training_args(options)]
    return start_job_process(s, JOB_KIND_TRAIN, info.id, {"options": options.to_json()}, args)


def start_predict_job(s: Session, project: int | str, version: int | None = None) -> JobInfo:
    """Create a prediction job (default: the active version) and start its worker process.
    Raises QueryError while another prediction job of the project runs."""
    info = get_project(s, project)
    chosen = sq.get_model_version(s, info.id, version) if version is not None else sq.active_model_version(s, info.id)
    if chosen is None:
        raise TrainingError(f"project {info.name!r} has no active student version: train one first")
    _check_idle(s, info, JOB_KIND_PREDICT)
    args = ["predict", "--project", info.name, "--version", str(chosen.version)]
    return start_job_process(s, JOB_KIND_PREDICT, info.id, {"version": chosen.version}, args)
