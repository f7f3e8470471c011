"""``python -m core.cli teacher train``: a source-language NER teacher made here.

Trains a LabelBridge student on a labelled corpus (e.g. ``../shared/data/conll2003-en``: its
``train`` file, and ``dev`` for early stopping when there is one) and saves it to a folder,
which any pipeline run then uses with ``--teacher student:FOLDER``: a CoNLL-label English
teacher in place of the OntoNotes-mapped spaCy model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cli.common import CliError


def _cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm.auto import tqdm

    from core.formats import FormatError, find_split, read
    from core.student.bench import peak_memory_mb, seconds_per_epoch_per_1000
    from core.student.config import TrainConfig
    from core.student.model import save_student
    from core.student.train import train_student

    data = Path(args.data)
    train_path = find_split(data, "train") if data.is_dir() else data
    if train_path is None or not train_path.is_file():
        raise CliError(f"--data {args.data}: no train file (train.conll, train.txt, train.conll02 or train.jsonl) there")
    dev_path = find_split(data, "dev") if data.is_dir() else None
    test_path = Path(args.test) if args.test else (find_split(data, "test") if data.is_dir() else None)
    try:
        train = read(str(train_path), lang=args.lang)
        dev = read(str(dev_path), lang=args.lang) if dev_path else []
        test = read(str(test_path), lang=args.lang) if test_path and not args.no_test else []
    except FormatError as exc:
        raise CliError(str(exc)) from None
    train = train[: args.limit] if args.limit else train
    dev = dev[: args.dev_limit] if args.dev_limit else dev
    if not any(it.source_spans for it in train):
        raise CliError(f"{train_path}: no labelled entities to learn from")
    config = replace(TrainConfig(), side="source", finetune_encoder=args.finetune, epochs=args.epochs, threads=args.threads)
    if args.encoder:
        config = replace(config, encoder=args.encoder)
    if args.batch_size:
        config = replace(config, batch_size=args.batch_size)
    if args.layers is not None:
        config = replace(config, encoder_layers=args.layers or None)
    if args.precision:
        config = replace(config, precision=args.precision)
    if args.lr:
        config = replace(config, learning_rate=args.lr)
    if args.head_lr:
        config = replace(config, head_learning_rate=args.head_lr)
    started = time.perf_counter()
    with tqdm(desc="teacher train", unit="step", disable=args.no_progress) as bar:

        def progress(step: int, total: int, loss: float) -> None:
            bar.total = total
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(step - bar.n)

        student = train_student(train, dev, config, progress_cb=progress)
    folder = save_student(student, Path(args.out))
    seconds = time.perf_counter() - started
    best = max((h.get("dev_f1") or 0.0 for h in student.history), default=None) if dev else None
    result = {"out": str(folder), "train": len(train), "dev": len(dev), "dev_f1": best, "seconds": round(seconds, 1),
              "epochs_run": len(student.history), "seconds_per_epoch_per_1000": seconds_per_epoch_per_1000(student.history, len(train)),
              "peak_mb": peak_memory_mb(), "teacher": f"student:{folder}"}  # fmt: skip
    if test:
        result["test"] = {"file": str(test_path), "sentences": len(test), **_test_scores(student, test, args.score_labels)}
    print(json.dumps(result), file=sys.stdout)
    return 0


def _test_scores(student, test: list, score_labels: str | None) -> dict:  # noqa: ANN001 (TrainedStudent)
    """Strict F1 on the test file: over every label, and over ``--score-labels`` when given
    (CoNLL-2003 is usually reported with MISC; PER/ORG/LOC is what transfers to MasakhaNER2)."""
    from core.metrics import label_scores
    from core.student.inference import predict

    sentences = [it.source for it in test]
    gold = [it.source_spans for it in test]
    predicted = predict(student, sentences)
    every = {sp.label for spans in gold for sp in spans} | {sp.label for spans in predicted for sp in spans}
    out = {"all_labels": label_scores(sentences, gold, predicted, every)}
    if score_labels:
        chosen = {label.strip() for label in score_labels.split(",") if label.strip()}
        out["scored_labels"] = sorted(chosen)
        out["scored"] = label_scores(sentences, gold, predicted, chosen)
        out["f1"] = out["scored"]["f1"]
    else:
        out["f1"] = out["all_labels"]["f1"]
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("teacher", help="make a source-language NER teacher")
    sub = parser.add_subparsers(dest="teacher_command", required=True, metavar="ACTION")
    p = sub.add_parser("train", help="train a token classifier on a labelled corpus; use it with --teacher student:FOLDER")
    p.add_argument("--data", required=True, help="a folder with train (and dev) files, or one labelled file")
    p.add_argument("--out", required=True, help="folder to save the teacher in (replaced whole)")
    p.add_argument("--lang", default="en", help="language of the corpus (default en)")
    p.add_argument("--limit", type=int, help="only the first N training sentences")
    p.add_argument("--dev-limit", type=int, default=1000, help="dev sentences for early stopping (default 1000)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--finetune", action=argparse.BooleanOptionalAction, default=True,
                   help="fine-tune the encoder (default) or train the frozen-feature head only (--no-finetune, quicker)")  # fmt: skip
    p.add_argument("--encoder", help="Hugging Face id or folder (default: the converted multilingual-e5-small)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--layers", type=int, help="fine-tune: transformer blocks of the encoder kept (default 9; 0 = all)")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], help="fine-tune: auto (bf16 where the CPU has it natively)")
    p.add_argument("--lr", type=float, help="learning rate of the encoder")
    p.add_argument("--head-lr", type=float, help="learning rate of the tag head")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--test", help="test file to score after training (default: the --data folder's test file)")
    p.add_argument("--no-test", action="store_true", help="do not score a test file")
    p.add_argument("--score-labels", help="comma-separated labels the test F1 counts, e.g. PER,ORG,LOC (default: all)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_train)
