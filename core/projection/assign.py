"""Choosing which candidate each source entity projects to.

The problem: given scores for (entity, candidate) pairs, pick pairs so that each entity is
used at most once, chosen candidates never overlap (share a target token) and every chosen
score exceeds the threshold, maximising the total of (score - threshold). Counting each
pair by its margin over the threshold, not its raw score, stops the ILP from cutting one
well-matched target span into two poor halves just to place two source entities (two
pairs at 0.67 outweigh one at 1.0, but not at a threshold of 0.5). ``assign_ilp`` solves it exactly as
a 0/1 program with scipy's HiGHS MILP; ``assign_greedy`` takes pairs from the highest score
down and skips conflicts. Overlap is encoded per target token (at most one chosen candidate
covers each token), which for intervals is the same as pairwise non-overlap but with far
fewer constraints.

When the best candidates of the entities do not conflict, both return them; otherwise the
ILP total is always >= the greedy total.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

__all__ = ["assign_ilp", "assign_greedy", "total_score", "SOLVERS"]

SOLVERS = ("ilp", "greedy")


def _eligible(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    rows, cols = np.nonzero(scores > threshold)
    return list(zip(rows.tolist(), cols.tolist()))


def assign_greedy(scores: np.ndarray, spans: Sequence[tuple[int, int]], threshold: float = 0.0) -> list[tuple[int, int]]:
    """Highest score first; skip a pair whose entity is used or whose span overlaps a chosen one.

    Ties go to the shorter candidate, then the earlier entity and candidate, so the result is
    deterministic.
    """
    pairs = _eligible(scores, threshold)
    pairs.sort(key=lambda p: (-scores[p], spans[p[1]][1] - spans[p[1]][0], p[0], spans[p[1]]))
    used: set[int] = set()
    covered: set[int] = set()
    chosen: list[tuple[int, int]] = []
    for e, c in pairs:
        a, b = spans[c]
        if e in used or any(t in covered for t in range(a, b)):
            continue
        used.add(e)
        covered.update(range(a, b))
        chosen.append((e, c))
    return sorted(chosen)


def assign_ilp(scores: np.ndarray, spans: Sequence[tuple[int, int]], threshold: float = 0.0) -> list[tuple[int, int]]:
    """Exact maximum-score assignment (see the module docstring), solved with HiGHS."""
    pairs = _eligible(scores, threshold)
    if not pairs:
        return []
    n_ent = scores.shape[0]
    n_tok = max(b for _, b in spans)
    rows, cols = [], []
    for v, (e, c) in enumerate(pairs):
        rows.append(e)  # entity row: each entity at most once
        cols.append(v)
        a, b = spans[c]
        for t in range(a, b):  # token rows: each token covered at most once
            rows.append(n_ent + t)
            cols.append(v)
    a_mat = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_ent + n_tok, len(pairs))).tocsr()
    # A tiny preference for shorter candidates breaks exact ties the same way as the greedy.
    lengths = np.array([spans[c][1] - spans[c][0] for _, c in pairs], dtype=float)
    objective = -(np.array([scores[p] for p in pairs], dtype=float) - threshold) + 1e-9 * lengths
    res = milp(
        objective,
        constraints=LinearConstraint(a_mat, -np.inf, 1.0),
        integrality=np.ones(len(pairs)),
        bounds=Bounds(0.0, 1.0),
        options={"presolve": True},
    )
    if res.x is None:
        raise RuntimeError(f"ILP solver failed: {res.message}")
    return sorted(p for p, x in zip(pairs, res.x) if x > 0.5)


def total_score(scores: np.ndarray, chosen: Sequence[tuple[int, int]], threshold: float = 0.0) -> float:
    """The objective the ILP maximises: the sum of the chosen scores above the threshold."""
    return float(sum(scores[p] - threshold for p in chosen))
