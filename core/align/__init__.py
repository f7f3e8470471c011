"""Word aligners behind one interface (``Aligner.align(pairs) -> list[list[Link]]``).

* ``simalign:argmax|itermax|match`` - SimAlign's embedding aligner, batched (embedding.py)
* ``eflomal`` - statistical aligner trained on the batch + extra text (statistical.py)
* ``union|intersection|gd|gdf|gdfa(A,B)`` - combinations of two aligners (combine.py)
* ``bt(DIRECT[,SAME])`` - back-translation refinement (backtranslation.py)

Build any of them with ``get_aligner(spec, **options)`` (registry.py); heavy libraries
(torch, transformers, eflomal) load only when an aligner first runs.
"""

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
