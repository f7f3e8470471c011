"""Alignment heuristic projection (Garcia-Ferrero et al. 2022).

For each source entity: the target words aligned to any of its words form contiguous runs;
runs split by at most ``max_gap`` words that are not aligned to the entity are merged (an
alignment often misses a function word inside a name: "Banco ___ Central"); runs whose
length ratio to the entity does not exceed ``min_ratio`` are dropped (a single stray link
rarely marks the whole translation); the best ``top_k`` runs are kept. Overlaps between the
projections of different entities are resolved in favour of the higher confidence.

Confidence is the alignment Dice of the entity and the run, 2 * links / (len_src + len_tgt):
1.0 when every word on both sides is aligned one-to-one inside the pair.
"""

from __future__ import annotations

from typing import Sequence

from core.data import Link, Sentence, Span, make_span
from core.projection.common import ProjectionError, ProjectionResult, Unprojected, check_links, links_by_source, projected_label

__all__ = ["project_heuristic", "aligned_runs"]


def aligned_runs(aligned: set[int], max_gap: int) -> list[tuple[int, int]]:
    """Contiguous runs ``[start, end)`` of the aligned target positions, merging gaps <= max_gap."""
    runs: list[tuple[int, int]] = []
    for t in sorted(aligned):
        if runs and t - runs[-1][1] <= max_gap:
            runs[-1] = (runs[-1][0], t + 1)
        else:
            runs.append((t, t + 1))
    return runs


def project_heuristic(
    source: Sentence,
    source_spans: Sequence[Span],
    target: Sentence,
    links: Sequence[Link],
    *,
    max_gap: int = 1,
    min_ratio: float = 0.0,
    top_k: int | None = 1,
    derived_label: str | None = None,
) -> ProjectionResult:
    """Project spans by contiguous runs of aligned target words (see the module docstring).

    ``top_k`` runs per entity are kept (most links first, then longer, then earlier);
    ``None`` keeps every run that passes the ratio filter. A name projected onto one
    lower-case word gets ``derived_label`` (common.projected_label).
    """
    if max_gap < 0:
        raise ProjectionError(f"max_gap must be >= 0, got {max_gap}")
    by_src = links_by_source(check_links(source, target, links), len(source))
    proposals: list[tuple[float, int, Span, tuple[int, int]]] = []  # (confidence, entity index, span, run)
    result = ProjectionResult()
    for k, ent in enumerate(source_spans):
        counts: dict[int, int] = {}
        for s in range(ent.start, ent.end):
            for t in by_src[s]:
                counts[t] = counts.get(t, 0) + 1
        if not counts:
            result.unprojected.append(Unprojected(ent, "no_links"))
            continue
        runs = [r for r in aligned_runs(set(counts), max_gap) if (r[1] - r[0]) / len(ent) > min_ratio]
        if not runs:
            result.unprojected.append(Unprojected(ent, "too_short"))
            continue
        scored = []
        for a, b in runs:
            n_links = sum(c for t, c in counts.items() if a <= t < b)
            scored.append((n_links, b - a, -a, (a, b)))
        scored.sort(reverse=True)
        if top_k is not None:
            scored = scored[:top_k]
        for n_links, length, _, run in scored:
            conf = min(1.0, 2.0 * n_links / (len(ent) + length))
            proposals.append((conf, k, ent, run))
    # Resolve overlaps: higher confidence first, then longer source entity, then source order.
    proposals.sort(key=lambda p: (-p[0], -len(p[2]), p[1]))
    taken: list[Span] = []
    projected: set[int] = set()
    for conf, k, ent, (a, b) in proposals:
        if not any(a < s.end and s.start < b for s in taken):
            taken.append(make_span(target, a, b, projected_label(source, ent, target, a, b, derived_label), "projection:heuristic", round(conf, 6)))
            projected.add(k)
    lost = sorted({k for _, k, _, _ in proposals} - projected)
    result.unprojected.extend(Unprojected(source_spans[k], "conflict") for k in lost)
    result.spans = sorted(taken, key=lambda s: s.start)
    return result
