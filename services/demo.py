"""Seeding the demo projects (core.demo holds their data) and projecting their spans."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Sequence

from sqlalchemy.orm import Session

from core.config import settings
from core.demo import DEMO_PROJECTS, LABELS, DemoProject, load_demo_items
from core.demo.images import render_demo_images
from core.pipeline.stages import PipelineConfig, PipelineError, StageLoadError
from db.items import import_items
from db.projects import create_project, list_projects
from services.pipeline.run import run_pipeline, start_pipeline_job

__all__ = ["PROJECTION_MODES", "project_demo", "seed_demo"]

log = logging.getLogger(__name__)

PROJECTION_MODES = ("run", "background", "none")


def _import_demo(s: Session, media_dir: Path | None) -> bool:
    """Create the demo projects and their items (committed together), unless any project exists."""
    media_dir = Path(media_dir) if media_dir is not None else settings().media_dir
    if list_projects(s):
        return False
    with tempfile.TemporaryDirectory(prefix="labelbridge-demo-") as tmp:
        render_demo_images(Path(tmp))
        for demo in DEMO_PROJECTS:
            project = create_project(s, demo.name, demo.src_lang, demo.tgt_lang, list(LABELS))
            import_items(s, project.id, load_demo_items(demo), media_dir, image_root=Path(tmp))
    s.commit()
    return True


def project_demo(s: Session, projects: Sequence[DemoProject] = DEMO_PROJECTS, *, background: bool = False, progress: bool = True) -> list[str]:
    """Project the gold source spans onto the translations with the default pipeline
    (the items bring their own translations; default aligner and projection method).

    ``background``: start one pipeline job per project and return at once. Returns one line
    per project saying what happened; a stage whose model cannot be loaded (e.g. the default
    encoder was never prepared) is reported, not raised: the demo stays usable without
    projected spans.
    """
    done: list[str] = []
    for demo in projects:
        config = PipelineConfig(demo.src_lang, demo.tgt_lang, teacher="gold")
        if background:
            job = start_pipeline_job(s, demo.name, config)
            s.commit()
            done.append(f"{demo.name}: projection started as job {job.id}")
            continue
        try:
            report = run_pipeline(s, demo.name, config, progress=progress)
        except StageLoadError as exc:
            s.rollback()
            log.warning("demo %s: projection skipped: %s", demo.name, exc)
            done.append(f"{demo.name}: projection skipped ({exc})")
            continue
        failed = sum(st.failed for st in report.stages)
        done.append(f"{demo.name}: {report.items} items projected in {report.wall_s:.0f} s ({failed} failed)")
    return done


def seed_demo(s: Session, media_dir: Path | None = None, *, projection: str = "run") -> bool:
    """Create the demo projects when the database has no project at all; True when seeded.

    The import is one transaction (a failure leaves no demo project behind). Then the
    translations get their spans from the projection engine: ``projection="run"`` runs it
    here, ``"background"`` starts pipeline jobs (the app does this so the page returns at
    once), ``"none"`` skips it (the translations are shown without spans).
    """
    if projection not in PROJECTION_MODES:
        raise PipelineError(f"projection must be one of {', '.join(PROJECTION_MODES)}, not {projection!r}")
    if not _import_demo(s, media_dir):
        return False
    if projection != "none":
        for line in project_demo(s, background=projection == "background"):
            log.info("%s", line)
    return True
