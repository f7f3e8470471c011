"""Word aligners behind one interface (``Aligner.align(pairs) -> list[list[Link]]``).

* ``simalign:argmax|itermax|match`` - SimAlign's embedding aligner, batched (embedding.py)
* ``simalign-tuned:METHOD`` - the same over the encoder adapted to the pairs (adapt.py)
* ``eflomal`` - statistical aligner trained on the batch + extra text (statistical.py)
* ``union|intersection|gd|gdf|gdfa(A,B)`` - combinations of two aligners (combine.py)
* ``bt(DIRECT[,SAME])`` - back-translation refinement (backtranslation.py)

Build any of them with ``get_aligner(spec, **options)`` (registry.py); heavy libraries
(torch, transformers, eflomal) load only when an aligner first runs.
"""

from typing import Any

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
from core.align.registry import get_aligner, parse_spec
from core.align.statistical import EflomalAligner, read_parallel_text

__all__ = [
    "AdaptConfig",
    "TunedSimAlignAligner",
    "adapt_encoder",
    "aligner_encoder",
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


def aligner_encoder(aligner: Any) -> str | None:
    """The encoder an aligner (or an aligner inside it) reads its vectors from, when that is
    not the project's default: an adapted encoder folder. The projection's soft alignment
    must read the same vectors."""
    name = getattr(aligner, "encoder_name", None)
    if name:
        return str(name)
    for part in vars(aligner).values():
        if hasattr(part, "align") and part is not aligner:
            found = aligner_encoder(part)
            if found:
                return found
    return None
