"""The demo projects: 43 English news-style sentences with gold PER/ORG/LOC/MISC spans,
hand-written Spanish and German translations, and a few pictures drawn at seed time.

The translations carry no spans in the data files: in the app their spans come from the
projection engine, run when the demo is seeded. Hand-made gold spans of each translation
are kept apart in ``meta["target_gold"]``, so projected spans can be compared with a
reference and are never confused with it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from core.data import Item, Span, check_spans
from core.demo.images import DEMO_IMAGES, render_demo_images

__all__ = [
    "DEMO_DIR",
    "DEMO_PROJECTS",
    "DemoProject",
    "REFERENCE_KEY",
    "load_demo_items",
    "reference_target_spans",
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


def _projected(items: list[Item]) -> tuple[list[Item], dict[str, Any]] | None:
    """Run the default projection engine over the items, or None when it is not available."""
    try:
        from core.project import project_items  # the projection pipeline (another module)
    except ImportError as exc:
        log.info("projection engine not available (%s); the demo is seeded without projected spans", exc)
        return None
    return project_items(items)


def seed_demo(url: str | None = None, media_dir: Path | None = None) -> bool:
    """Create the demo projects when the database has no project at all; True when seeded.

    Everything is one transaction: a failure leaves the database without demo projects.
    """
    from core.config import settings
    from db import queries
    from db.engine import init_db, session_scope

    init_db(url)
    media_dir = Path(media_dir) if media_dir is not None else settings().media_dir
    with session_scope(url) as s:
        if queries.list_projects(s):
            return False
        with tempfile.TemporaryDirectory(prefix="labelbridge-demo-") as tmp:
            images = Path(tmp)
            render_demo_images(images)
            for demo in DEMO_PROJECTS:
                items = load_demo_items(demo)
                project = queries.create_project(s, demo.name, demo.src_lang, demo.tgt_lang, list(LABELS))
                queries.import_items(s, project.id, items, media_dir, image_root=images)
                projected = _projected(items)
                if projected is not None:
                    done, stage = projected
                    queries.save_stage_results(s, project.id, **stage, items=done)
    return True
