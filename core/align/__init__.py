"""Word aligners behind one interface (``Aligner.align(pairs) -> list[list[Link]]``).

* ``simalign:argmax|itermax|match`` - SimAlign's embedding aligner, batched (embedding.py)
* ``simalign-tuned:METHOD`` - the same over the encoder adapted to the pairs (adapt.py)
* ``eflomal`` - statistical aligner trained on the batch + extra text (statistical.py)
* ``union|intersection|gd|gdf|gdfa(A,B)`` - combinations of two aligners (combine.py)
* ``bt(DIRECT[,SAME])`` - back-translation refinement (backtranslation.py)

Build any of them with ``get_aligner(spec, **options)`` (registry.py); heavy libraries
(torch, transformers, eflomal) load only when an aligner first runs.
"""

from typing import Any, Iterator, Sequence

from core.align.adapt import AdaptConfig, TunedSimAlignAligner, adapt_encoder
from core.align.backtranslation import (
    BackTranslationAligner,
    StringMatchAligner,
    back_translator,
    compose_links,
    make_back_translator,
    refine_links,
)
from core.align.base import Aligner, Pair, align_items, check_pairs, link_set
from core.align.combine import CombinedAligner, combine_links, combine_points, grow_diag_final
from core.align.embedding import SimAlignAligner
from core.align.registry import get_aligner, parse_spec, spec_kinds
from core.align.statistical import EflomalAligner, read_parallel_text

__all__ = [
    "AdaptConfig",
    "TunedSimAlignAligner",
    "adapt_encoder",
    "aligner_encoder",
    "aligner_layers",
    "iter_aligners",
    "prepare_aligners",
    "spec_kinds",
    "Aligner",
    "Pair",
    "SimAlignAligner",
    "EflomalAligner",
    "CombinedAligner",
    "BackTranslationAligner",
    "StringMatchAligner",
    "get_aligner",
    "parse_spec",
    "align_items",
    "check_pairs",
    "link_set",
    "combine_links",
    "combine_points",
    "grow_diag_final",
    "compose_links",
    "refine_links",
    "make_back_translator",
    "back_translator",
    "read_parallel_text",
]


def iter_aligners(aligner: Any) -> Iterator[Any]:
    """``aligner`` and every aligner inside it (combinations, back-translation, an adapted
    aligner's SimAlign), outermost first."""
    yield aligner
    for part in vars(aligner).values():
        if part is not aligner and hasattr(part, "align"):
            yield from iter_aligners(part)


def prepare_aligners(aligner: Any, pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> list[dict[str, Any]]:
    """Adapt every aligner inside ``aligner`` that adapts to a corpus (simalign-tuned) on
    ``pairs`` (or load its cached adaptation); returns their descriptions (none: nothing to do)."""
    return [a.prepare(pairs) for a in iter_aligners(aligner) if callable(getattr(a, "prepare", None))]


def aligner_encoder(aligner: Any) -> str | None:
    """The encoder an aligner (or an aligner inside it) reads its vectors from when that is not
    the project's default (an adapted folder, or a ``model`` given): the projection's soft
    alignment must read the same vectors. None: the default encoder."""
    for a in iter_aligners(aligner):
        name = getattr(a, "encoder_name", None) or getattr(a, "model_name", None)
        if name:
            return str(name)
    return None


def aligner_layers(aligner: Any) -> dict[str, Any]:
    """The ``layer`` / ``layers`` of the first embedding aligner inside ``aligner`` (empty: none),
    for the soft alignment to read the same layers as the links."""
    for a in iter_aligners(aligner):
        if hasattr(a, "layer"):
            return {"layer": a.layer, "layers": list(a.layers) if getattr(a, "layers", None) else None}
    return {}
