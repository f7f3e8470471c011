"""Combining two sets of links: union, intersection, grow-diag-final(-and).

The two sets can be the two directions of one statistical aligner (eflomal's forward and
reverse links) or the links of two different aligners, both indexed (src, tgt). Scores of
a combined link come from the inputs: ``"max"`` takes the higher of the scores it has,
``"mean"`` averages both with 0 for a side that lacks the link (so links both aligners
agree on score higher than links only one of them found).
"""

from __future__ import annotations

from typing import Iterable

from core.align.base import Aligner, AlignError, Pair, links_from_scores
from core.data import Link

__all__ = [
    "COMBINATIONS",
    "SCORE_POLICIES",
    "grow_diag_final",
    "combine_points",
    "combine_links",
    "CombinedAligner",
]

COMBINATIONS = ("union", "intersection", "gd", "gdf", "gdfa")
SCORE_POLICIES = ("max", "mean")
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def grow_diag_final(
    a: Iterable[tuple[int, int]], b: Iterable[tuple[int, int]], final: bool = True, final_and: bool = False
) -> set[tuple[int, int]]:
    """Koehn's symmetrisation: start from A & B, grow into neighbouring points of A | B.

    ``final`` adds the remaining points of A, then of B, whose source OR target word is
    still unaligned (grow-diag-final); with ``final_and`` both must be unaligned
    (grow-diag-final-and). ``final=False`` is plain grow-diag.
    """
    a, b = set(a), set(b)
    union = a | b
    points = a & b
    src_done = {s for s, _ in points}
    tgt_done = {t for _, t in points}
    grew = True
    while grew:
        grew = False
        for s, t in sorted(points):
            for ds, dt in _NEIGHBOURS:
                ns, nt = s + ds, t + dt
                if (ns, nt) in union and (ns, nt) not in points and (ns not in src_done or nt not in tgt_done):
                    points.add((ns, nt))
                    src_done.add(ns)
                    tgt_done.add(nt)
                    grew = True
    if final:
        for side in (a, b):
            for s, t in sorted(side):
                if (s, t) in points:
                    continue
                free = (s not in src_done and t not in tgt_done) if final_and else (s not in src_done or t not in tgt_done)
                if free:
                    points.add((s, t))
                    src_done.add(s)
                    tgt_done.add(t)
    return points


def combine_points(how: str, a: Iterable[tuple[int, int]], b: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (src, tgt) points that ``how`` (one of COMBINATIONS) keeps."""
    a, b = set(a), set(b)
    if how == "union":
        return a | b
    if how == "intersection":
        return a & b
    if how == "gd":
        return grow_diag_final(a, b, final=False)
    if how == "gdf":
        return grow_diag_final(a, b)
    if how == "gdfa":
        return grow_diag_final(a, b, final_and=True)
    raise AlignError(f"unknown combination {how!r}; choose one of {list(COMBINATIONS)}")


def combine_links(how: str, a: list[Link], b: list[Link], score: str = "mean") -> list[Link]:
    """Combine two link lists of one sentence pair; scores by ``score`` (max or mean)."""
    if score not in SCORE_POLICIES:
        raise AlignError(f"unknown score policy {score!r}; choose one of {list(SCORE_POLICIES)}")
    score_a = {(ln.src, ln.tgt): ln.score for ln in a}
    score_b = {(ln.src, ln.tgt): ln.score for ln in b}
    kept = combine_points(how, score_a, score_b)
    out: dict[tuple[int, int], float] = {}
    for p in kept:
        sa, sb = score_a.get(p), score_b.get(p)
        if score == "max":
            out[p] = max(s for s in (sa, sb) if s is not None)
        else:
            out[p] = ((sa or 0.0) + (sb or 0.0)) / 2.0
    return links_from_scores(out)


class CombinedAligner:
    """Links of two aligners combined pair by pair (``union(A,B)``, ``gdfa(A,B)``, ...)."""

    def __init__(self, how: str, first: Aligner, second: Aligner, score: str = "mean") -> None:
        if how not in COMBINATIONS:
            raise AlignError(f"unknown combination {how!r}; choose one of {list(COMBINATIONS)}")
        if score not in SCORE_POLICIES:
            raise AlignError(f"unknown score policy {score!r}; choose one of {list(SCORE_POLICIES)}")
        self.how, self.first, self.second, self.score = how, first, second, score
        self.name = f"{how}({first.name},{second.name})"

    def align(self, pairs: list[Pair]) -> list[list[Link]]:
        links_a = self.first.align(pairs)
        links_b = self.second.align(pairs)
        return [combine_links(self.how, la, lb, self.score) for la, lb in zip(links_a, links_b)]
