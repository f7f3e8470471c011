"""Candidate matching projection (Shkalikov 2024; Politov et al. 2025).

Instead of reading spans off the alignment, enumerate target candidates (all n-grams up to
``max_len`` words, or spans proposed by a target-language NER model with a probability), score
every (source entity, candidate) pair and pick the best non-overlapping assignment, each
entity at most once (``core.projection.assign``: exact ILP or greedy).

Score of a pair, in [0, 1] (and the projected span's confidence):

* alignment Dice: (source words of the entity with a link into the candidate + candidate
  words with a link from the entity) / (len entity + len candidate). With one-to-one links it
  is the classic 2 * links / (len_s + len_t); counting covered words instead of links keeps
  one-to-many alignments inside [0, 1]. With ``link_scores`` each covered word counts with
  its best link score instead of 1. A candidate word that has no link at all (an article the
  aligner skipped) counts ``unaligned_credit`` instead of 0: it is weak evidence, unlike a
  word aligned to something outside the entity.
* string similarity (``core.projection.similarity.soft_dice``): names and numbers survive
  translation as strings.
* model probability of an externally proposed candidate.

The evidences are averaged with the given weights (weights of absent evidence drop out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.data import Link, Sentence, Span, make_span
from core.projection.assign import SOLVERS, assign_greedy, assign_ilp
from core.projection.common import ProjectionResult, Unprojected, check_links, is_punct
from core.projection.similarity import soft_dice

__all__ = ["Candidate", "ngram_candidates", "score_candidates", "project_candidates"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A target span that may be an entity; ``probability`` from a target NER model if any."""

    start: int
    end: int
    probability: float | None = None


def ngram_candidates(target: Sentence, max_len: int = 10, trim_punct: bool = True) -> list[Candidate]:
    """All target n-grams of 1..max_len words, without punctuation-only spans.

    With ``trim_punct`` a candidate may neither start nor end with a punctuation token
    (entities are not delimited by their quotes or commas).
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    punct = [is_punct(w) for w in target.words]
    n = len(punct)
    out: list[Candidate] = []
    for a in range(n):
        if trim_punct and punct[a]:
            continue
        for b in range(a + 1, min(n, a + max_len) + 1):
            if trim_punct and punct[b - 1]:
                continue
            if all(punct[a:b]):
                continue
            out.append(Candidate(a, b))
    return out


def _link_matrix(n_src: int, n_tgt: int, links: Sequence[Link], link_scores: bool) -> np.ndarray:
    mat = np.zeros((n_src, n_tgt))
    for ln in links:
        value = min(max(ln.score, 0.0), 1.0) if link_scores else 1.0
        mat[ln.src, ln.tgt] = max(mat[ln.src, ln.tgt], value)
    return mat


def score_candidates(
    source: Sentence,
    source_spans: Sequence[Span],
    target: Sentence,
    links: Sequence[Link],
    candidates: Sequence[Candidate],
    *,
    align_weight: float = 1.0,
    string_weight: float = 0.0,
    model_weight: float = 0.0,
    link_scores: bool = False,
    unaligned_credit: float = 0.0,
    string_floor: float = 0.5,
) -> np.ndarray:
    """Score matrix (entities x candidates) in [0, 1]; see the module docstring."""
    n_ent, n_cand = len(source_spans), len(candidates)
    scores = np.zeros((n_ent, n_cand))
    if n_ent == 0 or n_cand == 0:
        return scores
    weights = align_weight + string_weight
    starts = np.array([c.start for c in candidates])
    ends = np.array([c.end for c in candidates])
    lengths = ends - starts
    if align_weight > 0:
        mat = _link_matrix(len(source), len(target), links, link_scores)
        aligned_anywhere = mat.max(axis=0) > 0 if len(source) else np.zeros(len(target), bool)
        for k, ent in enumerate(source_spans):
            sub = mat[ent.start : ent.end]  # entity words x target words
            tgt_cov = sub.max(axis=0)
            tgt_cov = np.where(aligned_anywhere, tgt_cov, unaligned_credit)
            prefix = np.concatenate([[0.0], np.cumsum(tgt_cov)])
            tgt_part = prefix[ends] - prefix[starts]
            # source coverage: each entity word's best link inside [start, end)
            src_part = np.array([sub[:, c.start : c.end].max(axis=1).sum() for c in candidates])
            scores[k] += align_weight * (src_part + tgt_part) / (len(ent) + lengths)
    if string_weight > 0:
        src_words = [source.words[e.start : e.end] for e in source_spans]
        tgt_words = target.words
        for k, words in enumerate(src_words):
            for j, c in enumerate(candidates):
                scores[k, j] += string_weight * soft_dice(words, tgt_words[c.start : c.end], string_floor)
    if model_weight > 0:
        probs = np.array([c.probability if c.probability is not None else np.nan for c in candidates])
        has = ~np.isnan(probs)
        scores[:, has] += model_weight * probs[has]
        denom = np.where(has, weights + model_weight, weights)
        return scores / np.maximum(denom, 1e-12)
    return scores / max(weights, 1e-12)


def project_candidates(
    source: Sentence,
    source_spans: Sequence[Span],
    target: Sentence,
    links: Sequence[Link],
    *,
    solver: str = "ilp",
    candidates: Sequence[Candidate] | None = None,
    max_len: int = 10,
    trim_punct: bool = True,
    threshold: float = 0.0,
    align_weight: float = 1.0,
    string_weight: float = 0.0,
    model_weight: float = 0.0,
    link_scores: bool = False,
    unaligned_credit: float = 0.0,
    string_floor: float = 0.5,
) -> ProjectionResult:
    """Project spans by scoring candidates and solving the assignment (module docstring).

    ``candidates`` replaces the n-gram candidates (e.g. from a target NER model); a pair is
    eligible only when its score exceeds ``threshold``.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}")
    links = check_links(source, target, links)
    result = ProjectionResult()
    if not source_spans:
        return result
    cands = list(candidates) if candidates is not None else ngram_candidates(target, max_len, trim_punct)
    for c in cands:
        if not (0 <= c.start < c.end <= len(target)):
            raise ValueError(f"candidate [{c.start}, {c.end}) outside the target sentence of {len(target)} tokens")
    scores = score_candidates(
        source, source_spans, target, links, cands,
        align_weight=align_weight, string_weight=string_weight, model_weight=model_weight,
        link_scores=link_scores, unaligned_credit=unaligned_credit, string_floor=string_floor,
    )
    spans = [(c.start, c.end) for c in cands]
    assign = assign_ilp if solver == "ilp" else assign_greedy
    chosen = dict(assign(scores, spans, threshold)) if cands else {}
    linked = {ln.src for ln in links}
    out: list[Span] = []
    for k, ent in enumerate(source_spans):
        if k in chosen:
            c = cands[chosen[k]]
            conf = float(min(1.0, max(0.0, scores[k, chosen[k]])))
            out.append(make_span(target, c.start, c.end, ent.label, f"projection:{solver}", round(conf, 6)))
        elif (scores[k] > threshold).any():
            result.unprojected.append(Unprojected(ent, "conflict"))
        elif not any(s in linked for s in range(ent.start, ent.end)) and not (scores[k] > 0).any():
            result.unprojected.append(Unprojected(ent, "no_links"))
        else:
            result.unprojected.append(Unprojected(ent, "below_threshold"))
    result.spans = sorted(out, key=lambda s: s.start)
    return result
