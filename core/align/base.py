"""The aligner interface and the small helpers every aligner shares.

An aligner takes a batch of sentence pairs (each a source and a target word list) and
returns, for each pair, word alignment links (``core.data.Link``: source word index, target
word index, score in [0, 1]), sorted by (src, tgt). Word lists, not text, so that the
links index exactly the tokens the caller projects labels over.
"""

from __future__ import annotations

from typing import Iterable, Protocol, Sequence, runtime_checkable

from core.data import Item, Link
from core.errors import LabelBridgeError

__all__ = [
    "Aligner",
    "Pair",
    "check_pairs",
    "links_from_scores",
    "link_set",
    "align_items",
    "AlignError",
]

# (source words, target words); back-translation aware aligners also accept a third
# element: the back-translation of the target into the source language, as words.
Pair = tuple[list[str], list[str]]


class AlignError(LabelBridgeError):
    """An aligner spec or input that cannot be aligned (unknown aligner, bad option, unparallel batch)."""


@runtime_checkable
class Aligner(Protocol):
    name: str

    def align(self, pairs: list[Pair]) -> list[list[Link]]:
        """Links for each pair, in input order; each list sorted by (src, tgt)."""
        ...


def check_pairs(pairs: Sequence[Sequence[Sequence[str]]], who: str) -> None:
    """Reject malformed input up front, naming the pair, so no aligner fails half-way."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(f"{who}: pairs must be a list of (source words, target words), got {type(pairs).__name__}")
    for k, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) not in (2, 3):
            raise AlignError(f"{who}: pair {k} must be (source words, target words[, back-translation words])")
        for side, words in zip(("source", "target", "back-translation"), pair):
            if words is None and side == "back-translation":
                continue
            if isinstance(words, str) or not isinstance(words, Sequence):
                raise AlignError(f"{who}: pair {k} {side} must be a list of words, got {type(words).__name__}")
            for i, w in enumerate(words):
                if not isinstance(w, str) or not w or w.isspace():
                    raise AlignError(f"{who}: pair {k} {side} word {i} is {w!r}: words must be non-empty strings")


def links_from_scores(scores: dict[tuple[int, int], float]) -> list[Link]:
    """Sorted links from a {(src, tgt): score} map, scores clipped to [0, 1]."""
    return [Link(s, t, min(1.0, max(0.0, float(v)))) for (s, t), v in sorted(scores.items())]


def link_set(links: Iterable[Link]) -> set[tuple[int, int]]:
    """The (src, tgt) pairs of some links, for comparisons that ignore scores."""
    return {(ln.src, ln.tgt) for ln in links}


def align_items(items: list[Item], aligner: Aligner) -> list[Item]:
    """Pipeline stage: fill ``Item.alignment`` for items that have a target sentence.

    A back-translation in ``item.meta["back_translation"]`` (text, as core.translate's
    ``back_translate`` stores it, or a word list) is passed on as the third pair element,
    text tokenized like the source language (back-translation aligners use it; the others
    ignore it).
    """
    todo = [k for k, it in enumerate(items) if it.target is not None]
    pairs: list = []
    for k in todo:
        it = items[k]
        back = it.meta.get("back_translation")
        if isinstance(back, str) and it.source.lang:
            from core.tokenize import tokenize  # spaCy: imported only when needed

            back = tokenize(back, it.source.lang).words
        elif isinstance(back, str):
            back = back.split()
        if back is not None:
            pairs.append((it.source.words, it.target.words, list(back)))
        else:
            pairs.append((it.source.words, it.target.words))
    links = aligner.align(pairs) if pairs else []
    out = list(items)
    for k, lk in zip(todo, links):
        out[k] = items[k].with_(alignment=lk)
    return out
