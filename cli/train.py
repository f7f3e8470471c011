"""``python -m core.cli train|predict|students``: the student loop from the command line.

``train`` and ``predict`` always run as a job (a row in the jobs table with progress, the
loss curve and the outcome), so a run started here shows on the Train page like one
started there; ``--job-id`` is how the page hands its job to the worker process.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.common import CliError, add_db_project, db_url
from db.engine import init_db, session_scope
from db.errors import JobCancelledError, NotFoundError, QueryError
from db.jobs import create_job
from db.projects import get_project

__all__ = ["register"]


# Option -> TrainConfig field. An option not given keeps TrainConfig's default (not read at
# parser build time: importing core.student would load torch for every command of the CLI).
_CONFIG_OPTIONS = {
    "encoder": "encoder", "finetune": "finetune_encoder", "epochs": "epochs", "lr": "learning_rate",
    "head_lr": "head_learning_rate", "freeze_embeddings": "freeze_embeddings", "batch_size": "batch_size",
    "seed": "seed", "patience": "patience", "w_gold": "w_gold", "w_silver": "w_silver",
    "silver_threshold": "silver_threshold", "encoder_layers": "encoder_layers", "precision": "precision",
    "time_budget": "time_budget_s", "gold_share": "gold_share", "word_form": "word_form",
}  # fmt: skip


def _add_train(p: argparse.ArgumentParser) -> None:
    from services.training import ACTIVATE_CHOICES

    add_db_project(p)
    p.add_argument("--encoder", help="Hugging Face model id or folder (default: LABELBRIDGE_ENCODER or the converted multilingual-e5-small)")
    p.add_argument("--finetune", action=argparse.BooleanOptionalAction, default=None,
                   help="fine-tune the encoder with a linear head, or (--no-finetune) train a small head on frozen encoder "
                        "features; default: fine-tune when it is expected to fit --time-budget")
    p.add_argument("--encoder-layers", type=int, help="when fine-tuning: transformer blocks of the encoder kept (default 9; 0 = all)")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                   help="when fine-tuning: auto (bf16 on CPUs with native bf16, default), float32 or bfloat16")
    p.add_argument("--time-budget", type=float, help="seconds a fine-tuning may be expected to take before the frozen head is chosen instead")
    p.add_argument("--epochs", type=int, help="training epochs (early stopping on the dev split)")
    p.add_argument("--lr", type=float, help="learning rate of the encoder with --finetune")
    p.add_argument("--head-lr", type=float, help="learning rate of the tag head")
    p.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=None,
                   help="with --finetune: keep the embedding matrix fixed, most of e5-small's parameters (default: yes)")
    p.add_argument("--batch-size", type=int, help="sentences per step")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--patience", type=int, help="epochs without dev F1 gain before stopping")
    p.add_argument("--w-gold", type=float, help="loss weight of gold items")
    p.add_argument("--w-silver", type=float, help="loss weight of projected items")
    p.add_argument("--silver-threshold", type=float, help="projected spans below this confidence are left out of the loss")
    p.add_argument("--gold-share", type=float, help="repeat the reviewed items (up to 20 times) until they are at least this share of "
                                                    "each epoch beside the projected ones; 0 = each once")  # fmt: skip
    p.add_argument("--word-form", choices=["auto", "as-is", "nfc", "no-marks"],
                   help="how words reach the encoder: auto (default: without tone marks and underdots where the encoder's vocabulary "
                        "covers the bare words clearly better, as for Yoruba; else Unicode NFC), as-is, nfc, no-marks")
    p.add_argument("--images", action="store_true", help="fuse image features into the student (items without an image work unchanged)")
    p.add_argument("--image-encoder", help="image encoder with --images: efficientnet-lite0 (default) or a Hugging Face vision model")
    p.add_argument("--activate", choices=ACTIVATE_CHOICES, default="auto",
                   help="make the new version active: auto (when none is active or it scores at least as well), yes, no")
    p.add_argument("--new-test-split", action="store_true",
                   help="draw the held-out gold test split again (earlier versions' F1 then refers to the old split)")
    p.add_argument("--continue", dest="continue_active", action="store_true",
                   help="go on from the active version's weights (a warm start: an epoch or two after a batch of corrections "
                        "instead of a whole run); the structure (encoder, mode, blocks kept, head, images) stays the active version's; give the epochs to run (one is often enough)")
    p.add_argument("--with-source", action="store_true",
                   help="also learn from the source-language gold of every training item (translate-train: the English gold "
                        "beside the projected translations; measured best in bench transfer)")
    p.add_argument("--start-from", metavar="SPEC",
                   help="go on from another saved student: student:FOLDER or student:PROJECT@VERSION (e.g. student:data/models/teacher-conll2003-en, "
                        "model transfer adapted to this project); its structure stays; not with --continue")
    p.add_argument("--job-id", type=int, help=argparse.SUPPRESS)  # set by services.training.start_training_job
    p.set_defaults(func=cmd_train)


def _add_predict(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--version", type=int, help="model version to run (default: the active one)")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (default 32)")
    p.add_argument("--job-id", type=int, help=argparse.SUPPRESS)  # set by services.training.start_predict_job
    p.set_defaults(func=cmd_predict)


def _add_students(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--activate", type=int, metavar="VERSION", help="make this version the active one")
    p.add_argument("--json", action="store_true", help="print the versions as JSON lines")
    p.set_defaults(func=cmd_students)


def register(subparsers: Any) -> None:
    _add_train(subparsers.add_parser("train", help="train a new version of a project's student (gold + projected items)"))
    _add_predict(subparsers.add_parser("predict", help="run the active student over a project; the review queue uses its uncertainty"))
    _add_students(subparsers.add_parser("students", help="list a project's student versions with their test scores; activate one"))


def _project_id(url: str, name: str) -> int:
    init_db(url)
    with session_scope(url) as s:
        try:
            return get_project(s, name).id
        except NotFoundError as exc:
            raise CliError(str(exc)) from None


def _options(args: argparse.Namespace) -> Any:
    from core.student import TrainConfig
    from services.training import TrainingError, TrainingOptions

    image_encoder = None
    if args.images:
        from core.images import DEFAULT_IMAGE_ENCODER

        image_encoder = args.image_encoder or DEFAULT_IMAGE_ENCODER
    elif args.image_encoder:
        raise CliError("--image-encoder needs --images")
    given = {field: getattr(args, option) for option, field in _CONFIG_OPTIONS.items() if getattr(args, option) is not None}
    if given.get("encoder_layers") == 0:
        given["encoder_layers"] = None  # 0 on the command line: keep every block
    if given.get("gold_share") == 0:
        given["gold_share"] = None  # 0: every item once
    try:
        config = TrainConfig(**given, image_encoder=image_encoder)
        return TrainingOptions(config, args.activate, args.new_test_split, args.continue_active, args.with_source, args.start_from)
    except (ValueError, TrainingError) as exc:
        raise CliError(str(exc)) from None


def _ensure_job(url: str, kind: str, project_id: int, job_id: int | None, params: dict) -> int:
    """The job to report to: the page's (``--job-id``), or a new row when run by hand."""
    if job_id is not None:
        return job_id
    with session_scope(url) as s:
        job_id = create_job(s, kind, project_id, params=params, message="starting").id
    print(f"job {job_id}", file=sys.stderr)
    return job_id


def _run_job(url: str, job_id: int, work: Any) -> Any:
    """``run_as_job`` with user errors turned into one-line CLI errors (the job row already
    says failed, with the same text). None when the job was cancelled before it started."""
    from services.jobs import run_as_job
    from services.training import TrainingError

    try:
        with session_scope(url) as s:
            return run_as_job(s, job_id, lambda reporter: work(s, reporter))
    except JobCancelledError:
        print(f"job {job_id} was cancelled before it started", file=sys.stderr)
        return None
    except (TrainingError, ValueError, OSError) as exc:
        raise CliError(str(exc)) from None


def cmd_train(args: argparse.Namespace) -> int:
    from services.training import JOB_KIND_TRAIN, run_training

    url = db_url(args)
    project_id = _project_id(url, args.project)
    options = _options(args)
    job_id = _ensure_job(url, JOB_KIND_TRAIN, project_id, args.job_id, {"options": options.to_json()})
    report = _run_job(url, job_id, lambda s, reporter: run_training(s, project_id, options, reporter=reporter))
    if report is None:
        return 0
    if report.cancelled:
        print(f"job {job_id} cancelled: no version was recorded", file=sys.stderr)
        return 0
    summary = {k: report.metrics.get(k) for k in ("test", "dev_f1", "best_epoch", "train_seconds", "peak_memory_mb")}
    print(json.dumps({"job": job_id, "version": report.version, "active": report.active, "test_f1": report.test_f1,
                      "item_counts": report.item_counts, "path": report.path, **summary}))  # fmt: skip
    print(report.message, file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from services.training import JOB_KIND_PREDICT, run_prediction

    if args.batch_size < 1:
        raise CliError("--batch-size must be >= 1")
    url = db_url(args)
    project_id = _project_id(url, args.project)
    job_id = _ensure_job(url, JOB_KIND_PREDICT, project_id, args.job_id, {"version": args.version})
    report = _run_job(
        url, job_id,
        lambda s, reporter: run_prediction(s, project_id, args.version, batch_size=args.batch_size, reporter=reporter),
    )  # fmt: skip
    if report is None:
        return 0
    print(json.dumps({"job": job_id, **report.to_json()}))
    print(("cancelled: " if report.cancelled else "") + report.message, file=sys.stderr)
    return 0


def cmd_students(args: argparse.Namespace) -> int:
    from db import students as sq

    url = db_url(args)
    project_id = _project_id(url, args.project)
    with session_scope(url) as s:
        if args.activate is not None:
            try:
                sq.activate_model_version(s, project_id, args.activate)
            except QueryError as exc:
                raise CliError(str(exc)) from None
        versions = sq.list_model_versions(s, project_id)
    if not versions:
        print(f"project {args.project!r} has no student version yet", file=sys.stderr)
    for v in versions:
        if args.json:
            print(json.dumps({"version": v.version, "active": v.active, "test_f1": v.test_f1, "n_gold": v.n_gold,
                              "n_silver": v.n_silver, "n_test": v.n_test, "test_split": v.test_split, "path": v.path,
                              "created_at": v.created_at.isoformat(), "test": v.metrics.get("test")}))  # fmt: skip
        else:
            f1 = "-" if v.test_f1 is None else f"{v.test_f1:.3f}"
            print(f"{'*' if v.active else ' '} v{v.version}  test F1 {f1}  gold {v.n_gold}  silver {v.n_silver}  test {v.n_test}  {v.created_at:%Y-%m-%d %H:%M}")
    return 0
