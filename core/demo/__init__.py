"""The demo projects: 43 English news-style sentences with gold PER/ORG/LOC/MISC spans,
hand-written Spanish and German translations, and a few pictures drawn at seed time.

The translations carry no spans in the data files: their spans come from the projection
engine (the pipeline with the default aligner and method), run when services.demo seeds it. Hand-made gold spans of each translation
are kept apart in ``meta["target_gold"]``, so projected spans can be compared with a
reference and are never confused with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from core.data import Item, Span, check_spans

__all__ = [
    "DEMO_DIR",
    "DEMO_PROJECTS",
    "DemoProject",
    "REFERENCE_KEY",
    "LABELS",
    "load_demo_items",
    "reference_target_spans",
    "sample_items",
    "sample_images_zip",
]

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


def sample_items(n: int = 4) -> list[Item]:
    """A few demo items for the import help's sample files: source spans, a translation, and
    (for the first ones) an image by file name, as in the images zip of ``sample_images_zip``."""
    items = load_demo_items(DEMO_PROJECTS[0])
    with_image = [it for it in items if it.image][: max(1, n // 2)]
    without = [it for it in items if not it.image][: n - len(with_image)]
    return [it.with_(meta={k: v for k, v in it.meta.items() if k != REFERENCE_KEY}) for it in with_image + without]


def sample_images_zip(items: Sequence[Item]) -> bytes:
    """A zip of the pictures the sample items name (drawn now; nothing binary is committed)."""
    import io
    import tempfile
    import zipfile

    from core.demo.images import render_demo_images

    names = {it.image for it in items if it.image}
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="labelbridge-sample-") as tmp, zipfile.ZipFile(buf, "w") as zf:
        for path in render_demo_images(Path(tmp), names):
            zf.write(path, path.name)
    return buf.getvalue()
