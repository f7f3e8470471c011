"""``python -m core.cli pipeline run|status|export`` (``status`` and ``export`` also stand alone).

    pipeline run --db URL --project NAME --input FILE --src en --tgt es --translator apertium
    status --db URL --project NAME --json
    export --db URL --project NAME --format conll --out es.conll [--reviewed-only]

``pipeline run`` creates the project when it is missing, imports the input (items already in
the project are skipped, so the same command resumes an interrupted run) and runs the stages
that are not done yet.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import CliError, add_db_project, db_url
from core.pipeline.stages import PipelineError
from db.engine import init_db, session_scope
from db.errors import ItemImportError, JobCancelledError, NotFoundError, QueryError
from db.items import item_ids as project_item_ids
from db.items import load_items
from db.projects import create_project, get_project, update_project_settings
from services.projects import import_project_items

__all__ = ["register", "cmd_run", "cmd_status", "cmd_export"]



def _add_run(p: argparse.ArgumentParser) -> None:
    from core.teacher import DEFAULT_TEACHER
    from services.pipeline.run import ENGINES

    add_db_project(p)
    p.add_argument("--input", help="file to import first (any core.formats format); items already there are skipped")
    p.add_argument("--format", dest="input_format", help="input format (default: from the extension)")
    p.add_argument("--images", metavar="DIR", help="folder of the input's images: relative image paths are read from it "
                   "(default: the input file's folder); no image outside it is read")
    p.add_argument("--fix-encoding", action="store_true",
                   help="repair text of the input encoded twice (mojibake such as 'EspaÃ±a'); the reader warns when it finds some")
    p.add_argument("--src", help="source language (required to create the project); in translate-test the pivot, usually en")
    p.add_argument("--tgt", help="target language (required to create the project); in translate-test the language of the input")
    p.add_argument("--direction", choices=["translate-train", "translate-test"],
                   help="translate-train (default for a new project): the input is labelled or teacher-labelled source text, "
                        "translated and projected; translate-test: the input is raw target-language text, translated into "
                        "--src for the teacher and labelled by projection back onto its own tokens")  # fmt: skip
    p.add_argument("--teacher", default=DEFAULT_TEACHER, help=f"hf:ID_OR_PATH | spacy:NAME | gold (default {DEFAULT_TEACHER})")
    p.add_argument("--translator", help="hf:ID_OR_PATH | apertium | provided:FILE (default: the items' own translations)")
    p.add_argument("--back-translator", help="translator for back-translation (enables that stage; bt(...) aligners use the translator)")
    p.add_argument("--aligner", help="aligner spec, e.g. simalign:itermax, eflomal, gdfa(simalign:itermax,eflomal) (default: the projection default)")
    p.add_argument("--method", help="projection method (default: the projection default)")
    p.add_argument("--candidates", default="",
                   help="a target-language token classifier whose spans join the matching's candidates "
                        "(student:FOLDER, student:PROJECT@VERSION, hf:ID_OR_PATH); matching methods only")  # fmt: skip
    p.add_argument("--label-map", help="teacher label map: a name (ontonotes, masakhaner) or JSON {\"MODEL_LABEL\": \"LABEL\"}; stored in the project settings")
    p.add_argument("--drop-labels", action="store_true", help="import the input without its labels, so the teacher labels every sentence")
    p.add_argument("--engine", choices=ENGINES, default="local", help="local loop or Ray Data actors (RAY_ADDRESS picks the cluster)")
    p.add_argument("--ray-actors", type=int, help="actors per stage on Ray (default: one per CPU, or per GPU for GPU stages)")
    p.add_argument("--batch-size", type=int, default=256, help="items per batch (results are committed per batch; default 256)")
    p.add_argument("--limit", type=int, help="only the first N items (of the input, and of the project)")
    p.add_argument("--job-id", type=int, help=argparse.SUPPRESS)  # set by services.pipeline.run.start_pipeline_job
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)


def _add_status(p: argparse.ArgumentParser) -> None:
    add_db_project(p)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=cmd_status)


def _add_export(p: argparse.ArgumentParser) -> None:
    from core.formats import FORMATS

    add_db_project(p)
    p.add_argument("--format", dest="out_format", required=True, choices=sorted(FORMATS), help="output format")
    p.add_argument("--out", required=True, help="output file or folder (written atomically)")
    p.add_argument("--reviewed-only", action="store_true", help="only items marked reviewed")
    p.add_argument("--adjudicated-only", action="store_true", help="only adjudicated gold (items a reviewer adjudicated)")
    p.add_argument("--side", choices=["target", "source"], default="target",
                   help="side written by one-sided formats (conll, spacy); the others carry both (default target)")
    p.set_defaults(func=cmd_export)


def register(subparsers: Any) -> None:
    pipeline = subparsers.add_parser("pipeline", help="teacher -> translate -> align -> project over a project, resumable")
    sub = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")
    _add_run(sub.add_parser("run", help="import a file (optional) and run the stages not done yet"))
    _add_status(sub.add_parser("status", help="items done / failed / pending per stage, and the failures"))
    _add_export(sub.add_parser("export", help="write the project's items with their current spans"))
    _add_status(subparsers.add_parser("status", help="pipeline status of a project (same as pipeline status)"))
    _add_export(subparsers.add_parser("export", help="export a project to a file (same as pipeline export)"))


def _label_map(text: str | None) -> Any:
    from core.teacher import TeacherError, resolve_label_map

    if text is None:
        return None
    value: Any = text
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"--label-map is not valid JSON: {exc.msg} (column {exc.colno})") from None
    elif Path(text).is_file():
        try:
            value = json.loads(Path(text).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CliError(f"{text}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    try:
        resolve_label_map(value)
    except TeacherError as exc:
        raise CliError(f"--label-map: {exc}") from None
    return value


def _open_project(url: str, args: argparse.Namespace, label_map: Any) -> Any:
    """The project (created when missing), with the label map stored in its settings."""
    from core.teacher import DEFAULT_ONTONOTES_MAP, resolve_label_map
    with session_scope(url) as s:
        try:
            info = get_project(s, args.project)
        except NotFoundError:
            if not (args.src and args.tgt):
                raise CliError(f"project {args.project!r} does not exist; give --src and --tgt to create it") from None
            effective = resolve_label_map(label_map) if label_map is not None else DEFAULT_ONTONOTES_MAP
            labels = list(dict.fromkeys(effective.values())) if args.teacher != "gold" else []
            settings: dict[str, Any] = {"label_map": label_map} if label_map is not None else {}
            if args.direction:
                settings["direction"] = args.direction
            try:
                info = create_project(s, args.project, args.src, args.tgt, labels, settings)
            except QueryError as exc:
                raise CliError(str(exc)) from None
            return info
        for flag, given, have in (("--src", args.src, info.src_lang), ("--tgt", args.tgt, info.tgt_lang)):
            if given and given != have:
                raise CliError(f"project {info.name!r} has {flag[2:]} language {have!r}, not {given!r}")
        if args.direction and args.direction != info.direction:
            raise CliError(f"project {info.name!r} is a {info.direction} project, not {args.direction}")
        if label_map is not None and info.settings.get("label_map") != label_map:
            info = update_project_settings(s, info.id, {"label_map": label_map})
        return info


def _import(url: str, project_id: int, args: argparse.Namespace, lang: str) -> None:
    from core.formats import FormatError, ReadReport, get_format, guess_format, read

    report = ReadReport()
    options = {"fix_encoding": True} if getattr(args, "fix_encoding", False) else {}
    if options and "fix_encoding" not in get_format(args.input_format or guess_format(args.input)).read_options:
        raise CliError(f"--fix-encoding applies to CoNLL input (token files) only, not to {args.input}")
    try:
        items = read(args.input, args.input_format, report=report, lang=lang, **options)
    except FormatError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{args.input}: {exc.strerror or exc}") from None
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.limit is not None:
        items = items[: args.limit]
    if args.drop_labels:
        items = [it.with_(source_spans=[], target_spans=[]) for it in items]
    items, root = _with_images(items, args)
    try:
        with session_scope(url) as s:
            rep = import_project_items(s, project_id, items, labelled=not args.drop_labels, image_root=root)
    except (ItemImportError, PipelineError) as exc:
        raise CliError(f"{args.input}: {exc}") from None
    print(f"imported {rep.added} item(s) from {args.input}; {len(rep.skipped_duplicates)} already in the project", file=sys.stderr)


def _with_images(items: list, args: argparse.Namespace) -> tuple[list, Path | None]:
    """The items with their relative image paths found, and the folder they are read from:
    --images (a reference is found there or by its file name below it), else the input's
    folder when some item names a relative path (an export with its ``images/`` beside)."""
    from core.transfer import match_images

    relative = any(it.image and "://" not in it.image and not Path(it.image).is_absolute() and not _is_hash(it.image) for it in items)
    if args.images is None:
        return items, (Path(args.input).resolve().parent if relative else None)
    root = Path(args.images).expanduser().resolve()
    if not root.is_dir():
        raise CliError(f"--images {args.images}: no such folder")
    matched, problems = match_images(items, root)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CliError(f"{args.input}: images not found in {root}: {'; '.join(problems[:3])}{more}")
    return matched, root


def _is_hash(ref: str) -> bool:
    import re

    return re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", ref.strip()) is not None


def cmd_run(args: argparse.Namespace) -> int:
    from core.pipeline.stages import PipelineConfig, StageLoadError
    from services.jobs import run_as_job
    from services.pipeline.run import run_pipeline

    if args.batch_size < 1:
        raise CliError("--batch-size must be >= 1")
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be >= 1")
    url = db_url(args)
    init_db(url)
    label_map = _label_map(args.label_map)
    info = _open_project(url, args, label_map)
    if args.input:
        _import(url, info.id, args, info.tgt_lang if info.direction == "translate-test" else info.src_lang)
    if not args.translator and info.direction == "translate-test":
        raise CliError("translate-test needs --translator (apertium, hf:MODEL, or provided:FILE with your translations into --src)")
    if not args.translator:
        with session_scope(url) as s:
            ids = project_item_ids(s, info.id)
            ids = ids[: args.limit] if args.limit is not None else ids
            missing = [r.external_id for r in load_items(s, ids) if r.target is None]
        if missing:
            raise CliError(f"{len(missing)} item(s) have no translation (first: {missing[0]}); give --translator")
    config = PipelineConfig(
        src=info.src_lang, tgt=info.tgt_lang, teacher=args.teacher, translator=args.translator,
        back_translator=args.back_translator, aligner=args.aligner or "", method=args.method or "",
        batch_size=args.batch_size, label_map=label_map, direction=info.direction, candidates=args.candidates or "",
    )  # fmt: skip
    try:
        with session_scope(url) as s:

            def work(reporter=None):  # noqa: ANN001, ANN202
                return run_pipeline(s, info.id, config, engine=args.engine, limit=args.limit, progress=not args.no_progress,
                                    reporter=reporter, ray_actors=args.ray_actors)  # fmt: skip

            report = run_as_job(s, args.job_id, work) if args.job_id is not None else work()
    except JobCancelledError:
        print(f"job {args.job_id} was cancelled before it started", file=sys.stderr)
        return 0
    except (StageLoadError, ValueError) as exc:
        raise CliError(str(exc)) from None
    for st in report.stages:
        rate = f"{st.sentences_per_s} sent/s" if st.sentences_per_s else "nothing to do"
        print(f"{st.key}: {st.items} item(s), {st.failed} failed, {rate}", file=sys.stderr)
    if report.cancelled:
        print("cancelled: the batches written so far are kept; run again to finish", file=sys.stderr)
    if report.failed:
        print(f"{report.failed} item(s) failed; see `status --project {info.name}`", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from services.pipeline.store import pipeline_status

    url = db_url(args)
    init_db(url)
    try:
        with session_scope(url) as s:
            status = pipeline_status(s, args.project)
    except NotFoundError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=1))
        return 0
    print(f"project {status['project']}: {status['items']} item(s)")
    width = max((len(k) for k in status["stages"]), default=5)
    for key, c in status["stages"].items():
        print(f"  {key:<{width}}  done {c['done']:>6}  failed {c['failed']:>6}  pending {c['pending']:>6}")
    for f in status["failures"]:
        print(f"  failed: item {f['item']} at {f['stage']}: {f['error']}")
    if status["failures_total"] > len(status["failures"]):
        print(f"  ... {status['failures_total'] - len(status['failures'])} more failure(s)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.formats import FormatError, get_format
    from core.transfer import IMAGES_FOLDER, export_files
    from services.export import export_selection

    if args.reviewed_only and args.adjudicated_only:
        raise CliError("choose one of --reviewed-only and --adjudicated-only")
    url = db_url(args)
    init_db(url)
    try:
        with session_scope(url) as s:
            info = get_project(s, args.project)
            selection = "adjudicated" if args.adjudicated_only else "reviewed" if args.reviewed_only else "all"
            items = export_selection(s, info.id, selection)
    except NotFoundError as exc:
        raise CliError(str(exc)) from None
    options = {"side": args.side} if "side" in get_format(args.out_format).write_options else {}
    if options.get("side") == "target":
        missing = [it.id for it in items if it.target is None]
        if missing:
            raise CliError(f"{len(missing)} item(s) have no target sentence (first: {missing[0]}); run the pipeline first or use --side source")
    try:
        written = export_files(items, Path(args.out), args.out_format, **options)
    except FormatError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.filename or args.out}: {exc.strerror or exc}") from None
    images = [p for p in written[1:] if p.parent.name == IMAGES_FOLDER]
    extra = "".join(f"; with {p}" for p in written[1:] if p not in images)
    extra += f"; with {len(images)} image(s) in {images[0].parent}" if images else ""
    print(f"{len(items)} item(s) of {info.name} -> {args.out} ({args.out_format}){extra}", file=sys.stderr)
    return 0
