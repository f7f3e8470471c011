"""Soft word alignment: translation probabilities from encoder similarities.

A hard aligner keeps one or two links per word and drops the rest of what the encoder knows.
Candidate matching can use the whole distribution instead: for a source word s, ``fwd[s, t]``
is the probability that it translates as target word t (softmax over the target words of
the word similarities divided by a temperature), and ``rev[s, t]`` the probability that
target word t comes from source word s (softmax over the source words). Word similarity is
the cosine of the best-matching subword pair, from the same encoder layer SimAlign uses.

Probabilities below ``min_prob`` are dropped so that a soft alignment is a short list of
scored links, kept as two ``list[Link]`` (JSON-friendly, like hard alignments).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from core.data import Link
from core.projection.common import ProjectionError

__all__ = ["SoftAlignment", "soft_from_similarity", "word_similarity_matrix", "soft_align", "DEFAULT_TAU"]

DEFAULT_TAU = 0.05  # cosine temperature; see bench/RESULTS.md for the sweep


@dataclass(slots=True)
class SoftAlignment:
    fwd: list[Link] = field(default_factory=list)  # score = P(target word | source word)
    rev: list[Link] = field(default_factory=list)  # score = P(source word | target word)

    def matrices(self, n_src: int, n_tgt: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense (n_src x n_tgt) fwd and rev probability matrices."""
        out = []
        for links in (self.fwd, self.rev):
            mat = np.zeros((n_src, n_tgt))
            for ln in links:
                if not (0 <= ln.src < n_src and 0 <= ln.tgt < n_tgt):
                    raise ProjectionError(f"soft alignment link {ln.src}-{ln.tgt} outside the sentences ({n_src} x {n_tgt})")
                mat[ln.src, ln.tgt] = ln.score
            out.append(mat)
        return out[0], out[1]

    def to_dict(self) -> dict[str, list[list[float]]]:
        return {name: [[ln.src, ln.tgt, ln.score] for ln in links] for name, links in (("fwd", self.fwd), ("rev", self.rev))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SoftAlignment":
        return cls(*([Link(int(s), int(t), float(p)) for s, t, p in data.get(name, [])] for name in ("fwd", "rev")))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def soft_from_similarity(cosine: np.ndarray, tau: float = DEFAULT_TAU, min_prob: float = 1e-3) -> SoftAlignment:
    """Soft alignment from a (source words x target words) cosine similarity matrix."""
    if tau <= 0:
        raise ProjectionError(f"tau must be > 0, got {tau}")
    if cosine.size == 0:
        return SoftAlignment()
    logits = np.asarray(cosine, dtype=np.float64) / tau
    result = []
    for probs in (_softmax(logits, 1), _softmax(logits, 0)):
        rows, cols = np.nonzero(probs >= min_prob)
        result.append([Link(int(i), int(j), float(probs[i, j])) for i, j in zip(rows, cols)])
    return SoftAlignment(result[0], result[1])


def word_similarity_matrix(sim: np.ndarray, src_map: np.ndarray, tgt_map: np.ndarray, n_src: int, n_tgt: int) -> np.ndarray:
    """Word x word cosine from a subword similarity matrix in SimAlign's (cos + 1) / 2 scale.

    Each word pair takes its best subword pair; words without subwords (cut by truncation)
    get -1, which the softmax turns into ~0 probability.
    """
    out = np.full((n_src, n_tgt), -1.0)
    if sim.size == 0:
        return out
    cos = 2.0 * np.asarray(sim, dtype=np.float64) - 1.0
    # max over subword rows of each source word, then over subword columns of each target word
    rows = np.full((n_src, cos.shape[1]), -1.0)
    np.maximum.at(rows, src_map, cos)
    out_t = np.full((n_tgt, n_src), -1.0)
    np.maximum.at(out_t, tgt_map, rows.T)
    return out_t.T


def soft_align(
    pairs: Sequence[tuple[Sequence[str], Sequence[str]]],
    model: str | None = None,
    layer: int = 8,
    tau: float = DEFAULT_TAU,
    layers: Sequence[int] | None = None,
    min_prob: float = 1e-3,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = False,
) -> list[SoftAlignment]:
    """Soft alignments for word-list pairs with the default (or given) encoder at ``layer``.

    Uses the same batched encoder pass as the SimAlign aligner, so the probabilities and the
    hard links come from the same vectors.
    """
    from core.align.embedding import SimAlignAligner

    aligner = SimAlignAligner("argmax", model=model, layer=layer, batch_size=batch_size, device=device, progress=progress, layers=layers)
    out: list[SoftAlignment] = []
    for (src, tgt), (sim, src_map, tgt_map) in zip(pairs, aligner.similarities([(list(s), list(t)) for s, t in pairs])):
        cosine = word_similarity_matrix(sim, src_map, tgt_map, len(src), len(tgt))
        out.append(soft_from_similarity(cosine, tau, min_prob))
    return out
