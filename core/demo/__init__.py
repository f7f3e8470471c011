"""The demo projects: 43 English news-style sentences with gold PER/ORG/LOC/MISC spans,
hand-written Spanish and German translations, and a few pictures drawn at seed time.

The translations carry no spans in the data files: their spans come from the projection
engine (core.pipeline with the default aligner and method), run when the demo is seeded. Hand-made gold spans of each translation
are kept apart in ``meta["target_gold"]``, so projected spans can be compared with a
reference and are never confused with it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from core.data import Item, Span, check_spans
from core.demo.images import render_demo_images

__all__ = [
    "DEMO_DIR",
    "DEMO_PROJECTS",
    "DemoProject",
    "REFERENCE_KEY",
    "load_demo_items",
    "reference_target_spans",
    "project_demo",
    "seed_demo",
]

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent
REFERENCE_KEY = "target_gold"  # meta key of the hand-made gold spans of the translation
LABELS = ("PER", "ORG", "LOC", "MISC")


@dataclass(frozen=True, slots=True)
class DemoProject:
    name: str
    src_lang: str
    tgt_lang: str
    file: str  # JSONL file in DEMO_DIR


DEMO_PROJECTS: tuple[DemoProject, ...] = (
    DemoProject("Demo (en→es)", "en", "es", "demo_en_es.jsonl"),
    DemoProject("Demo (en→de)", "en", "de", "demo_en_de.jsonl"),
)


def load_demo_items(project: DemoProject) -> list[Item]:
    """The demo items of one project, read with the project's own JSONL reader."""
    from core.formats import read

    return read(DEMO_DIR / project.file, "jsonl")


def reference_target_spans(item: Item) -> list[Span] | None:
    """The hand-made gold spans of the translation stored in ``meta``, or None when absent."""
    raw = item.meta.get(REFERENCE_KEY)
    if raw is None or item.target is None:
        return None
    spans = [
        Span(int(d["start"]), int(d["end"]), str(d["label"]), int(d["char_start"]), int(d["char_end"]), "reference")
        for d in raw
    ]
    return check_spans(item.target, spans, f"item {item.id} {REFERENCE_KEY}")


PROJECTION_MODES = ("run", "background", "none")


def _import_demo(url: str | None, media_dir: Path | None) -> bool:
    """Create the demo projects and their items in one transaction, unless any project exists."""
    from core.config import settings
    from db import queries
    from db.engine import init_db, session_scope

    init_db(url)
    media_dir = Path(media_dir) if media_dir is not None else settings().media_dir
    with session_scope(url) as s:
        if queries.list_projects(s):
            return False
        with tempfile.TemporaryDirectory(prefix="labelbridge-demo-") as tmp:
            render_demo_images(Path(tmp))
            for demo in DEMO_PROJECTS:
                project = queries.create_project(s, demo.name, demo.src_lang, demo.tgt_lang, list(LABELS))
                queries.import_items(s, project.id, load_demo_items(demo), media_dir, image_root=Path(tmp))
    return True


def project_demo(
    url: str | None = None,
    projects: Sequence[DemoProject] = DEMO_PROJECTS,
    *,
    background: bool = False,
    progress: bool = True,
) -> list[str]:
    """Project the gold source spans onto the translations with the default pipeline
    (the items bring their own translations; default aligner and projection method).

    ``background``: start one pipeline job per project and return at once. Returns one line
    per project saying what happened; a stage whose model cannot be loaded (e.g. the default
    encoder was never prepared) is reported, not raised: the demo stays usable without
    projected spans.
    """
    from core.config import settings
    from core.pipeline import PipelineConfig, StageLoadError, run_pipeline, start_pipeline_job

    url = url or settings().db_url
    done: list[str] = []
    for demo in projects:
        config = PipelineConfig(demo.src_lang, demo.tgt_lang, teacher="gold")
        if background:
            job = start_pipeline_job(url, demo.name, config)
            done.append(f"{demo.name}: projection started as job {job.id}")
            continue
        try:
            report = run_pipeline(url, demo.name, config, progress=progress)
        except StageLoadError as exc:
            log.warning("demo %s: projection skipped: %s", demo.name, exc)
            done.append(f"{demo.name}: projection skipped ({exc})")
            continue
        failed = sum(st.failed for st in report.stages)
        done.append(f"{demo.name}: {report.items} items projected in {report.wall_s:.0f} s ({failed} failed)")
    return done


def seed_demo(url: str | None = None, media_dir: Path | None = None, *, projection: str = "run") -> bool:
    """Create the demo projects when the database has no project at all; True when seeded.

    The import is one transaction (a failure leaves no demo project behind). Then the
    translations get their spans from the projection engine: ``projection="run"`` runs it
    here, ``"background"`` starts pipeline jobs (the app does this so the page returns at
    once), ``"none"`` skips it (the translations are shown without spans).
    """
    if projection not in PROJECTION_MODES:
        raise ValueError(f"projection must be one of {', '.join(PROJECTION_MODES)}, not {projection!r}")
    if not _import_demo(url, media_dir):
        return False
    if projection != "none":
        for line in project_demo(url, background=projection == "background"):
            log.info("%s", line)
    return True
