"""``python -m core.cli bench <name>``: benchmarks that print one JSON line each.

Each benchmark is a plain function beside the code it measures (core.align.bench,
core.projection.bench, core.student.bench, services.pipeline.bench,
services.review_bench); this module only parses the options and prints the result.
Heavy modules (torch) are imported when a benchmark runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from cli.common import CliError

__all__ = ["register", "run_script"]


def _print_command_result(result: dict) -> None:
    """One JSON line, with the command line that produced it (for RESULTS.md)."""
    result["command"] = "python -m core.cli " + " ".join(sys.argv[1:])
    print(json.dumps(result, ensure_ascii=False))


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


# --------------------------------------------------------------------------- align-speed


def _add_align_speed(parser: argparse.ArgumentParser) -> None:
    from core.encoder import PRECISIONS

    parser.add_argument("--source", required=True, help="source-language CoNLL file (token<TAB>tag)")
    parser.add_argument("--target", required=True, help="target-language CoNLL file, parallel to --source")
    parser.add_argument("--limit", type=int, default=200, help="first N sentence pairs (0 = all; default 200)")
    parser.add_argument("--method", default="itermax", choices=["argmax", "itermax", "match"])
    parser.add_argument("--layer", type=int, default=8)
    parser.add_argument("--model", default=None, help="HF id or local folder (default: settings().encoder)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (ours)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision", default=None, choices=list(PRECISIONS),
        help="ours' products: auto (bf16 on a CPU with native bf16), float32 (simalign's links exactly), "
        "bfloat16 (default: LABELBRIDGE_ALIGN_PRECISION, else auto)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for both (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print one JSON line (default: key: value lines)")
    parser.set_defaults(func=_run_align_speed)


def _run_align_speed(args: argparse.Namespace) -> int:
    from core.align.bench import bench_align_speed

    result = bench_align_speed(
        args.source, args.target, limit=args.limit, method=args.method, layer=args.layer, model=args.model,
        batch_size=args.batch_size, device=args.device, threads=args.threads, precision=args.precision,
    )  # fmt: skip
    _print(result, args.json)
    return 0


# --------------------------------------------------------------------------- projection


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise CliError(f"--option must be KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _add_projection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="source-language CoNLL file with gold tags (e.g. en)")
    parser.add_argument("--target", required=True, help="parallel target-language CoNLL file with gold tags")
    parser.add_argument("--method", help="projection method (default: core.projection.DEFAULT_METHOD); "
                        "a comma-separated list prints one line per method from one shared alignment")  # fmt: skip
    parser.add_argument("--aligner", help="aligner spec (default: core.projection.DEFAULT_ALIGNER)")
    parser.add_argument("--limit", type=int, help="only the first N sentence pairs")
    parser.add_argument("--back-translator", help="translator spec (e.g. apertium) that back-translates the targets for bt(...) aligners")
    parser.add_argument("--langs", help="SRC,TGT language codes, needed with --back-translator (e.g. en,es)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="projection option, value as JSON (e.g. threshold=0.2); repeatable")  # fmt: skip
    parser.add_argument("--aligner-option", action="append", default=[], metavar="KEY=VALUE",
                        help="aligner option, value as JSON (e.g. layer=7, learning_rate=1e-4 for simalign-tuned); repeatable")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON line (the default output)")
    parser.set_defaults(func=_run_projection)


def _run_projection(args: argparse.Namespace) -> int:
    from core.projection.bench import bench_projection_methods

    options = dict(_parse_option(o) for o in args.option)
    methods = [m.strip() for m in args.method.split(",") if m.strip()] if args.method else None
    langs = tuple(x.strip() for x in args.langs.split(",")) if args.langs else None
    if langs is not None and len(langs) != 2:
        raise CliError(f"--langs must be SRC,TGT, got {args.langs!r}")
    try:
        aligner_options = dict(_parse_option(o) for o in args.aligner_option)
        records = bench_projection_methods(args.source, args.target, methods, args.aligner, args.limit, args.back_translator, langs,
                                           aligner_options=aligner_options, **options)  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc)) from exc
    for record in records:
        print(json.dumps(record, ensure_ascii=False), flush=True)
    return 0


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _layer_choice(text: str) -> int | tuple[int, ...]:
    """``8`` -> 8; ``7-9`` -> (7, 8, 9): the layers whose similarities are averaged."""
    first, sep, last = text.strip().partition("-")
    if not sep:
        return int(first)
    if int(last) <= int(first):
        raise ValueError(f"layer range {text!r}: the last layer must be above the first")
    return tuple(range(int(first), int(last) + 1))


def _add_protocol(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="source-language CoNLL file with gold tags (e.g. en)")
    p.add_argument("--target", required=True, action="append", help="a parallel target CoNLL file; give two or more")
    p.add_argument("--aligners", default="simalign:itermax,simalign:argmax", help="aligner specs of the grid (default %(default)s)")
    p.add_argument("--layers", default="7,8,9", help="encoder layers of the grid; A-B averages the similarities of layers A..B (default %(default)s)")
    p.add_argument("--methods", default="heuristic,greedy,greedy-fused", help="projection methods of the grid (default %(default)s)")
    p.add_argument("--thresholds", default="0.2,0.3,0.5", help="fused methods' thresholds, at tau 0.05 (default %(default)s)")
    p.add_argument("--taus", default="0.03,0.05,0.08", help="soft alignment temperatures, at threshold 0.3 (default %(default)s)")
    p.add_argument("--derived-labels", default="off,MISC",
                   help="label of a name projected onto one lower-case word: off (its own) or a label (default %(default)s)")
    p.add_argument("--limit", type=int, help="only the first N sentence pairs of each file")
    p.add_argument("--json", action="store_true", help="one JSON line (the default output is JSON too)")
    p.set_defaults(func=_run_protocol)


def _run_protocol(args: argparse.Namespace) -> int:
    from core.errors import BenchError
    from core.projection.protocol import bench_protocol, default_grid

    try:
        grid = default_grid(
            aligners=[a.strip() for a in args.aligners.split(";" if "(" in args.aligners else ",") if a.strip()],
            layers=[_layer_choice(x) for x in args.layers.split(",") if x.strip()],
            thresholds=_floats(args.thresholds), taus=_floats(args.taus),
            methods=[m.strip() for m in args.methods.split(",") if m.strip()],
            derived_labels=[None if d.strip() == "off" else d.strip() for d in args.derived_labels.split(",") if d.strip()],
        )  # fmt: skip
        result = bench_protocol(args.source, args.target, grid, args.limit)
    except (BenchError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    _print_command_result(result)
    return 0


# --------------------------------------------------------------------------- pipeline


def _add_pipeline(p: argparse.ArgumentParser) -> None:
    from core.teacher import DEFAULT_TEACHER

    p.add_argument("--input", required=True, help="input file (any core.formats format)")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--teacher", default=DEFAULT_TEACHER)
    p.add_argument("--translator", help="hf:ID | apertium | provided:FILE (default: the input's translations)")
    p.add_argument("--aligner", default="", help="default: the projection default")
    p.add_argument("--method", default="", help="default: the projection default")
    p.add_argument("--batch-size", type=int, default=256, help="items per pipeline batch (as pipeline run)")
    p.add_argument("--engine", choices=["local", "ray", "both"], default="local")
    p.add_argument("--ray-actors", type=int)
    p.add_argument("--keep-labels", action="store_true", help="keep the input's labels (the teacher skips labelled sentences)")
    p.add_argument("--keep", help="folder to keep the databases and exports in")
    p.add_argument("--db", help="run in this database URL (e.g. postgresql+psycopg2://...), a new project per run; default: fresh SQLite files")
    p.set_defaults(func=_run_pipeline)


def _run_pipeline(args: argparse.Namespace) -> int:
    from core.pipeline.stages import PipelineConfig
    from services.pipeline.bench import bench_pipeline

    config = PipelineConfig(args.src, args.tgt, args.teacher, args.translator, None, args.aligner, args.method, args.batch_size)
    result = bench_pipeline(args.input, config, engine=args.engine, limit=args.limit, keep_labels=args.keep_labels,
                            keep=args.keep, ray_actors=args.ray_actors, db_url=args.db)  # fmt: skip
    _print_command_result(result)
    return 0 if all(r["complete"] for r in result["runs"]) else 1


# --------------------------------------------------------------------------- system


def _add_system(p: argparse.ArgumentParser) -> None:
    from core.teacher import DEFAULT_TEACHER

    p.add_argument("--direction", choices=["translate-test"], default="translate-test",
                   help="translate-test: label the target file's original sentences through a pivot translation")  # fmt: skip
    p.add_argument("--target", required=True, help="gold file of target-language sentences (its labels are only used to score)")
    p.add_argument("--target-lang", required=True)
    p.add_argument("--pivot-lang", default="en", help="the language the teacher reads (default en)")
    p.add_argument("--source", help="optional gold file parallel to --target in the pivot language: reports teacher_f1_on_source")
    p.add_argument("--model-transfer", action="store_true", help="also run the teacher directly on the originals (a multilingual teacher)")
    p.add_argument("--translator", required=True, help="apertium | hf:ID_OR_PATH | provided:FILE (translations into --pivot-lang)")
    p.add_argument("--teacher", default=DEFAULT_TEACHER, help="spacy:NAME | hf:ID_OR_PATH | student:FOLDER")
    p.add_argument("--label-map", help="teacher label map name or JSON (default: the teacher's own)")
    p.add_argument("--aligner", default="")
    p.add_argument("--method", default="")
    p.add_argument("--candidates", default="", help="a target-language model whose spans join the matching's candidates (teacher spec)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--db", help="run in this database URL (default: a fresh SQLite file)")
    p.add_argument("--json", action="store_true", help="one JSON line (the default output is JSON too)")
    p.set_defaults(func=_run_system)


def _run_system(args: argparse.Namespace) -> int:
    from core.pipeline.stages import PipelineConfig, PipelineError, StageLoadError
    from core.teacher import TeacherError
    from services.pipeline.system_bench import bench_system

    label_map: Any = args.label_map
    if label_map and label_map.lstrip().startswith("{"):
        label_map = json.loads(label_map)
    config = PipelineConfig(args.pivot_lang, args.target_lang, args.teacher, args.translator, None, args.aligner, args.method,
                            args.batch_size, label_map, direction=args.direction, candidates=args.candidates)  # fmt: skip
    try:
        result = bench_system(args.target, config, limit=args.limit, source_path=args.source, model_transfer=args.model_transfer, db_url=args.db)
    except (PipelineError, StageLoadError, TeacherError, OSError) as exc:
        raise CliError(str(exc)) from exc
    _print_command_result(result)
    return 0 if not result["failed"] else 1


# --------------------------------------------------------------------------- transfer


def _add_transfer(p: argparse.ArgumentParser) -> None:
    from core.student.transfer_bench import BENCH_EPOCHS, BENCH_LIMIT

    p.add_argument("--source-train", help="labelled source-language training file (e.g. ../shared/data/conll2003-en/train.conll)")
    p.add_argument("--target-test", required=True, action="append",
                   help="labelled target-language test file; repeat for several (the first gives the headline figures)")  # fmt: skip
    p.add_argument("--target-lang", required=True)
    p.add_argument("--source-lang", default="en")
    p.add_argument("--translator", default="apertium", help="apertium | hf:ID_OR_PATH | provided:FILE (translate-train, source -> target)")
    p.add_argument("--limit", type=int, default=BENCH_LIMIT, help=f"first N source training sentences (default {BENCH_LIMIT}; 0 = all)")
    p.add_argument("--epochs", type=int, default=BENCH_EPOCHS, help=f"fine-tuning epochs per run (default {BENCH_EPOCHS})")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per setting (default 3)")
    p.add_argument("--layers", type=int, help="transformer blocks kept (default: TrainConfig's; 0 = all)")
    p.add_argument("--lr", type=float, help="encoder learning rate")
    p.add_argument("--frozen", action="store_true", help="the frozen-encoder head instead of fine-tuning")
    p.add_argument("--model-only", action="store_true", help="model transfer only (no translation): e.g. Europarl, MasakhaNER2")
    p.add_argument("--model-student", help="a saved student folder (teacher train) as the model-transfer model: nothing is trained")
    p.add_argument("--labels", help="comma-separated labels to score (default: those the training data and each test share)")
    p.add_argument("--complete-only", action="store_true", help="train on the translations whose every entity was projected")
    p.add_argument("--settings", default="model_transfer,data_transfer,both", help="which settings run (default %(default)s)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="one JSON line (the default output is JSON too)")
    p.set_defaults(func=_run_transfer)


def _run_transfer(args: argparse.Namespace) -> int:
    from core.errors import BenchError
    from core.student.config import TrainConfig
    from core.student.transfer_bench import bench_transfer
    from core.translate import TranslationError, TranslatorUnavailable

    if not args.source_train and not args.model_student:
        raise CliError("give --source-train (a labelled source file) or --model-student (a saved student)")
    changes: dict[str, Any] = {"epochs": args.epochs, "finetune_encoder": not args.frozen}
    if args.layers is not None:
        changes["encoder_layers"] = args.layers or None
    if args.lr:
        changes["learning_rate"] = args.lr
    try:
        config = replace(TrainConfig(), **changes)
        result = bench_transfer(args.source_train or "", args.target_test, args.target_lang, args.translator, source_lang=args.source_lang,
                                limit=args.limit or None, seeds=args.seeds, config=config, model_only=args.model_only,
                                model_student=args.model_student, labels=args.labels.split(",") if args.labels else None,
                                complete_only=args.complete_only, settings=[x.strip() for x in args.settings.split(",") if x.strip()],
                                progress=not args.no_progress)  # fmt: skip
    except (BenchError, TranslationError, TranslatorUnavailable, ValueError) as exc:
        raise CliError(str(exc)) from exc
    _print_command_result(result)
    return 0


def _add_multimodal(p: argparse.ArgumentParser) -> None:
    from core.student.multimodal_bench import DEFAULT_IMAGE_ENCODER

    p.add_argument("--data", required=True, help="a Twitter-2015/2017 layout folder: train.txt, dev.txt|valid.txt, test.txt with IMGID lines")
    p.add_argument("--images", help="the pictures' folder (default: found anywhere below --data)")
    p.add_argument("--image-encoder", default=DEFAULT_IMAGE_ENCODER, help=f"image features (default {DEFAULT_IMAGE_ENCODER})")
    p.add_argument("--encoder", help="text encoder: HF id or folder (default: the converted multilingual-e5-small)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--frozen", action="store_true", help="the frozen-encoder head instead of fine-tuning")
    p.add_argument("--json", action="store_true", help="one JSON line (the default output is JSON too)")
    p.set_defaults(func=_run_multimodal)


def _run_multimodal(args: argparse.Namespace) -> int:
    from core.errors import BenchError
    from core.student.config import TrainConfig
    from core.student.multimodal_bench import bench_multimodal

    changes: dict[str, Any] = {"epochs": args.epochs, "finetune_encoder": not args.frozen}
    if args.encoder:
        changes["encoder"] = args.encoder
    try:
        result = bench_multimodal(args.data, args.images, replace(TrainConfig(), **changes), image_encoder=args.image_encoder, seeds=args.seeds)
    except (BenchError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    _print_command_result(result)
    return 0


def _add_corrections(p: argparse.ArgumentParser) -> None:
    from core.student.corrections_bench import CORRECTION_STEPS, POOL

    p.add_argument("--data", required=True, help="a folder with train, dev and test files of the target language (e.g. masakhaner2/swa)")
    p.add_argument("--source-model", help="saved source-language student (default: data/models/teacher-conll2003-en, built by make teacher)")
    p.add_argument("--lang", help="language code of the files (default: the folder's name)")
    p.add_argument("--steps", default=",".join(map(str, CORRECTION_STEPS)), help="numbers of corrected sentences (default %(default)s)")
    p.add_argument("--pool", type=int, default=POOL, help=f"machine-labelled training sentences drawn from train (default {POOL}; 0 = all)")
    p.add_argument("--orders", default="queue,random,gold_only", help="curves to draw: queue, random, gold_only, gold_only_source (default %(default)s)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4, help="epochs of a training from scratch (default 4: ~250 steps on the 1,000 pool; 2 left it undertrained)")
    p.add_argument("--retrain", choices=("warm", "scratch"), default="warm",
                   help="warm (default): each retraining goes on from the curve's last student for one pass over the pool; "
                        "scratch: every point trained anew (needs --start base)")
    p.add_argument("--warm-lr-factor", type=float, default=1.0, help="warm retrainings run at the learning rates times this (default 1)")
    p.add_argument("--start", choices=("base", "source"), default="source",
                   help="the machine-labelled curves' first student starts from the source model (source, default: model transfer, then adapted) "
                        "or from the pre-trained encoder (base)")
    p.add_argument("--gold-share", type=float, default=None,
                   help="repeat the corrected sentences until they are at least this share of each training epoch (default: the training default, 0.5; 0 = each once)")
    p.add_argument("--word-form", choices=("auto", "as-is", "nfc", "no-marks"), default="auto",
                   help="how the students read words (default auto: without marks where the vocabulary covers the bare words "
                        "clearly better; as-is: as written, the bench before 2026-12-06)")
    p.add_argument("--workers", default="auto",
                   help="processes running the seeds' training chains (default auto: one per CPU core, each with its share of "
                        "threads; 1 on a GPU; 1 = every chain in this process)")
    p.add_argument("--json", action="store_true", help="one JSON line (the default output is JSON too)")
    p.set_defaults(func=_run_corrections)


def _run_corrections(args: argparse.Namespace) -> int:
    from core.config import settings
    from core.errors import BenchError
    from core.student.config import StudentError, TrainConfig
    from core.student.corrections_bench import bench_corrections

    source = args.source_model or str(settings().models_dir / "teacher-conll2003-en")
    try:
        steps = [int(n) for n in args.steps.split(",") if n.strip()]
        config = replace(TrainConfig(), epochs=args.epochs, finetune_encoder=True, word_form=args.word_form)
        if args.gold_share is not None:
            config = replace(config, gold_share=args.gold_share or None)  # 0: every sentence once
        result = bench_corrections(args.data, source, lang=args.lang, steps=steps, pool=args.pool or None, seeds=args.seeds, config=config,
                                   orders=[o.strip() for o in args.orders.split(",") if o.strip()], retrain=args.retrain,
                                   warm_lr_factor=args.warm_lr_factor, start=args.start, workers=args.workers)  # fmt: skip
    except (BenchError, ValueError, StudentError) as exc:
        raise CliError(str(exc)) from exc
    _print_command_result(result)
    return 0


# --------------------------------------------------------------------------- student, queue


def _student_config(args: argparse.Namespace) -> Any:
    from core.student.bench import BENCH_CONFIG

    changes = {}
    for name in ("encoder", "epochs", "learning_rate", "batch_size", "seed", "w_gold", "w_silver", "silver_threshold", "threads", "device"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if args.train_embeddings:
        changes["freeze_embeddings"] = False
    if args.finetune is not None:
        changes["finetune_encoder"] = args.finetune
    try:
        return replace(BENCH_CONFIG, **changes)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _add_student_options(parser: argparse.ArgumentParser) -> None:
    from core.config import REPO_ROOT

    parser.add_argument("--source", default="en", help="source language code (default en)")
    parser.add_argument("--target", required=True, help="target language code: de or es")
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "europarl-ner"),
                        help="Europarl-NER folder (default ../shared/data/europarl-ner)")  # fmt: skip
    parser.add_argument("--encoder", help="HF id or folder (default: settings().encoder)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", dest="learning_rate", type=float)
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--w-gold", dest="w_gold", type=float)
    parser.add_argument("--w-silver", dest="w_silver", type=float)
    parser.add_argument("--silver-threshold", dest="silver_threshold", type=float)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", help="auto, cpu, cuda")
    parser.add_argument("--train-embeddings", action="store_true", help="also fine-tune the embedding matrix")
    parser.add_argument("--finetune", action=argparse.BooleanOptionalAction, default=None,
                        help="fine-tune the encoder / train the frozen-encoder head (default: by the time budget)")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per setting, figures are means (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (default: key: value lines)")


def _run_student(args: argparse.Namespace) -> int:
    from core.student.bench import bench_student

    config = _student_config(args)
    try:
        corrections = tuple(int(n) for n in args.corrections.split(",") if n.strip())
    except ValueError:
        raise CliError(f"--corrections {args.corrections!r}: give comma-separated numbers of sentences, e.g. 50,100,200") from None
    _print(bench_student(args.data, args.source, args.target, config, corrections=corrections, corrections_order=args.corrections_order,
                         n_seeds=args.seeds), args.json)  # fmt: skip
    return 0


def _run_queue(args: argparse.Namespace) -> int:
    from core.student.bench import bench_queue

    _print(bench_queue(args.data, args.source, args.target, _student_config(args), n_seeds=args.seeds), args.json)
    return 0


# --------------------------------------------------------------------------- review


def _add_review(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=100_000, help="items in the generated project (default 100000)")
    parser.add_argument("--cycles", type=int, default=200, help="accept-and-next cycles to time (default 200)")
    parser.add_argument("--order", default="confidence", help="queue order: confidence, disagreement, uncertainty, random, original")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON line (default: key: value lines)")
    parser.set_defaults(func=_run_review)


def _run_review(args: argparse.Namespace) -> int:
    from core.annotations.queue import ORDERINGS
    from services.review_bench import bench_review

    if args.items < 2 or args.cycles < 1:
        raise CliError("--items must be at least 2 and --cycles at least 1")
    if args.cycles >= args.items:
        raise CliError(f"--cycles ({args.cycles}) must be smaller than --items ({args.items})")
    if args.order not in ORDERINGS:
        raise CliError(f"unknown --order {args.order!r}; expected one of {', '.join(ORDERINGS)}")
    _print(bench_review(args.items, args.cycles, args.order, args.seed), args.json)
    return 0


def _add_review_browser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=100_000, help="items in the generated project (default 100000)")
    parser.add_argument("--cycles", type=int, default=100, help="Enter presses to time (default 100)")
    parser.add_argument("--think-ms", type=int, default=300, help="pause between presses, as a person reads (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="folder to keep the database and the app log in")
    parser.add_argument("--json", action="store_true", help="print one JSON line (default: key: value lines)")
    parser.set_defaults(func=_run_review_browser)


def _run_review_browser(args: argparse.Namespace) -> int:
    from services.review_browser_bench import bench_review_browser

    if args.items < 2 or args.cycles < 1 or args.cycles >= args.items:
        raise CliError("--items must be at least 2 and --cycles between 1 and --items - 1")
    result = bench_review_browser(args.items, args.cycles, args.think_ms, args.seed, args.keep)
    _print(result, args.json)
    return 0 if result["lost_edits"] == 0 and result["duplicate_edits"] == 0 else 1


# --------------------------------------------------------------------------- the group


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (one JSON line each)")
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    _add_align_speed(sub.add_parser("align-speed", help="batched SimAlign vs the simalign package: pairs/second and link agreement"))
    _add_projection(sub.add_parser("projection", help="projection strict F1 on a parallel gold corpus"))
    _add_protocol(sub.add_parser("projection-protocol", help="leave-one-pair-out: settings chosen on the other pairs, F1 on each held-out pair"))
    _add_pipeline(sub.add_parser("pipeline", help="sentences/second of each pipeline stage and of the whole run"))
    _add_system(sub.add_parser("system", help="the whole system on real gold: translate-test strict F1 on the original sentences"))
    _add_transfer(sub.add_parser("transfer", help="model vs data transfer vs both on real target test sets (fine-tuned student)"))
    _add_multimodal(sub.add_parser("multimodal", help="text-only vs image-fused student F1 on a Twitter-2015/2017 layout folder"))
    _add_corrections(sub.add_parser("corrections", help="learning curves: N corrections in queue or random order, and gold only"))
    student = sub.add_parser("student", help="model vs data transfer vs corrections: target test F1 of the student")
    _add_student_options(student)
    student.add_argument(
        "--corrections-order", choices=["confidence", "random"], default="confidence",
        help="which training sentences get corrected first (default: the review queue, lowest confidence first)",
    )  # fmt: skip
    student.add_argument("--corrections", default="50,100,200", help="numbers of corrected sentences to train with (default %(default)s; '' = none)")
    student.set_defaults(func=_run_student)
    queue = sub.add_parser("queue", help="share of projection errors in the first 20%% of the review queue")
    _add_student_options(queue)
    queue.set_defaults(func=_run_queue)
    _add_review(sub.add_parser("review", help='server-side time of "accept and next" on a generated project'))
    _add_review_browser(sub.add_parser("review-browser", help='key press to next item on screen, in headless Chromium against the real app'))


def run_script(name: str | None, argv: list[str] | None = None) -> int:
    """Entry point of the thin scripts in bench/: ``bench/X.py ARGS`` = ``core.cli bench X ARGS``.

    ``name`` None passes the arguments through (scripts that offer several benchmarks).
    """
    from cli.main import main

    args = list(sys.argv[1:] if argv is None else argv)
    return main(["bench", *([name] if name else []), *args])
