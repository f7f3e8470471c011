"""Candidate matching projection (Shkalikov 2024; Politov et al. 2025), with fused evidence.

Instead of reading spans off the alignment, enumerate target candidates (all n-grams up to
``max_len`` words, or spans proposed by a target-language NER model with a probability), score
every (source entity, candidate) pair and pick the best non-overlapping assignment, each
entity at most once (``core.projection.assign``: exact ILP or greedy).

Every evidence is a *coverage Dice* in [0, 1]: (how much of each entity word is covered by
the candidate + how much of each candidate word is covered by the entity) / (entity words +
candidate words). It equals 1 exactly when both sides explain each other completely.

* ``align`` (hard links): a word is covered when it has a link across (its best link score
  with ``link_scores``). With one-to-one links this is the classic 2 * links / (len_s +
  len_t); counting covered words instead of links keeps one-to-many links inside [0, 1].
  With ``gap_credit`` a word strictly inside the candidate, in a gap of at most ``max_gap``
  words between two words linked to the entity (none of them linked to anything outside
  it), counts ``gap_credit`` instead of 0: translations add function words inside names
  ("EU Member States" -> "Estados Miembros de la UE") that aligners leave unlinked.
* ``soft`` (alignment probabilities, :mod:`core.projection.soft`): an entity word is covered
  by the probability mass of its translation that falls inside the candidate, a candidate
  word by the mass of its source that falls inside the entity. It sees the second half of
  a one-to-many translation ("UK" -> "Reino Unido") that a hard aligner misses.
* ``string`` (:mod:`core.projection.similarity`): names and numbers survive translation as
  strings; a word is covered by its best character n-gram similarity across (above
  ``string_floor``), punctuation ignored.
* ``model``: the probability of an externally proposed candidate (target NER model).

The pair score is the weighted mean of the evidences present; it is the confidence of the
projected span. Weights of absent evidence (no soft alignment, no model probability) drop out.
Only pairs scoring above ``threshold`` are eligible, and the assignment maximises their
margins over it (core.projection.assign).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.data import Link, Sentence, Span, make_span
from core.projection.assign import SOLVERS, assign_greedy, assign_ilp
from core.projection.common import ProjectionError, ProjectionResult, Unprojected, check_links, is_punct, projected_label
from core.projection.similarity import word_similarity
from core.projection.soft import SoftAlignment

__all__ = ["Candidate", "ngram_candidates", "score_candidates", "project_candidates", "coverage_dice"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A target span that may be an entity; ``probability`` from a target NER model if any."""

    start: int
    end: int
    probability: float | None = None
    label: str | None = None  # the model's label, for model candidates: it only supports entities of that label


def _model_bonus(scores, cands: Sequence[Candidate], source_spans: Sequence[Span], model_candidates: Sequence[Candidate], weight: float):  # noqa: ANN001, ANN202
    """Raise the score of each entity-candidate pair the target model supports (same span,
    same label or no label): ``s * (1 + weight * p)``. Only pairs the alignment already
    gives some evidence (``s > 0``) gain, so a model span never attracts an unrelated
    entity, and the pairs the model did not propose keep exactly their alignment score. The
    product may pass 1 (alignment scores often tie at 1 between nested spans: the model's
    one must win the tie); the projected span's confidence stays clipped to 1."""
    index = {(c.start, c.end): j for j, c in enumerate(cands)}
    for mc in model_candidates:
        j = index.get((mc.start, mc.end))
        if j is None:
            continue
        p = 1.0 if mc.probability is None else float(mc.probability)
        for k, ent in enumerate(source_spans):
            base = scores[k, j]
            if base > 0 and (mc.label is None or mc.label == ent.label):
                scores[k, j] = base * (1.0 + weight * p)
    return scores


def ngram_candidates(target: Sentence, max_len: int = 10, trim_punct: bool = True) -> list[Candidate]:
    """All target n-grams of 1..max_len words, without punctuation-only spans.

    With ``trim_punct`` a candidate may neither start nor end with a punctuation token
    (entities are not delimited by their quotes or commas).
    """
    if max_len < 1:
        raise ProjectionError(f"max_len must be >= 1, got {max_len}")
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


def coverage_dice(
    src_values: np.ndarray,
    tgt_values: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    src_agg: str = "max",
    tgt_weights: np.ndarray | None = None,
    src_len: float | None = None,
    interior: np.ndarray | None = None,
) -> np.ndarray:
    """Coverage Dice of one entity against each candidate ``[starts[j], ends[j])``.

    ``src_values`` (entity words x target words): how much a target word covers an entity
    word; an entity word's coverage is the ``max`` (best single word) or ``sum`` (probability
    mass) over the candidate, capped at 1. ``tgt_values`` (target words): how much each target
    word is covered by the entity. ``tgt_weights`` (0/1 per target word) and ``src_len`` let
    evidence ignore words (punctuation for string similarity). ``interior`` (target words)
    replaces a word's value when it is strictly inside the candidate (not its first or last
    word): the credit of a gap word between two covered words.
    """
    n_tgt = len(tgt_values)
    weights = np.ones(n_tgt) if tgt_weights is None else tgt_weights
    prefix_t = np.concatenate([[0.0], np.cumsum(tgt_values * weights)])
    prefix_w = np.concatenate([[0.0], np.cumsum(weights)])
    tgt_part = prefix_t[ends] - prefix_t[starts]
    if interior is not None:
        inner = np.maximum(interior, tgt_values) * weights
        prefix_i = np.concatenate([[0.0], np.cumsum(inner)])
        long = ends - starts >= 3
        edge = (tgt_values * weights)[starts] + (tgt_values * weights)[ends - 1]
        tgt_part = np.where(long, edge + prefix_i[np.maximum(ends - 1, starts)] - prefix_i[np.minimum(starts + 1, ends)], tgt_part)
    tgt_len = prefix_w[ends] - prefix_w[starts]
    n_src = src_values.shape[0] if src_len is None else src_len
    if src_agg == "sum":
        cum = np.concatenate([np.zeros((src_values.shape[0], 1)), np.cumsum(src_values, axis=1)], axis=1)
        src_part = np.minimum(cum[:, ends] - cum[:, starts], 1.0).sum(axis=0)
    elif src_agg == "max":
        src_part = np.zeros(len(starts))
        for a in np.unique(starts):
            sel = np.nonzero(starts == a)[0]
            b_max = int(ends[sel].max())
            running = np.maximum.accumulate(src_values[:, a:b_max], axis=1).sum(axis=0)  # per end b = a+1..b_max
            src_part[sel] = running[ends[sel] - a - 1]
    else:
        raise ProjectionError(f"unknown aggregation {src_agg!r}")
    denom = n_src + tgt_len
    return np.divide(src_part + tgt_part, denom, out=np.zeros(len(starts)), where=denom > 0)


def _flanked_gaps(covered: np.ndarray, elsewhere: np.ndarray, max_gap: int) -> np.ndarray:
    """1.0 for words in a run of at most ``max_gap`` uncovered words between two covered
    words, none of them linked to anything outside the entity; else 0.0."""
    out = np.zeros(len(covered))
    idx = np.nonzero(covered)[0]
    for left, right in zip(idx, idx[1:]):
        gap = slice(left + 1, right)
        if 0 < right - left - 1 <= max_gap and not elsewhere[gap].any():
            out[gap] = 1.0
    return out


def _link_matrix(n_src: int, n_tgt: int, links: Sequence[Link], use_scores: bool) -> np.ndarray:
    mat = np.zeros((n_src, n_tgt))
    for ln in links:
        value = min(max(ln.score, 0.0), 1.0) if use_scores else 1.0
        mat[ln.src, ln.tgt] = max(mat[ln.src, ln.tgt], value)
    return mat


def score_candidates(
    source: Sentence,
    source_spans: Sequence[Span],
    target: Sentence,
    links: Sequence[Link],
    candidates: Sequence[Candidate],
    *,
    soft: SoftAlignment | None = None,
    align_weight: float = 1.0,
    soft_weight: float = 1.0,
    string_weight: float = 0.0,
    model_weight: float = 0.0,
    link_scores: bool = False,
    string_floor: float = 0.5,
    gap_credit: float = 0.0,
    max_gap: int = 2,
) -> np.ndarray:
    """Score matrix (entities x candidates) in [0, 1]; see the module docstring."""
    n_ent, n_cand = len(source_spans), len(candidates)
    if n_ent == 0 or n_cand == 0:
        return np.zeros((n_ent, n_cand))
    starts = np.array([c.start for c in candidates])
    ends = np.array([c.end for c in candidates])
    total = np.zeros((n_ent, n_cand))
    weight_sum = 0.0
    if align_weight > 0:
        mat = _link_matrix(len(source), len(target), links, link_scores)
        for k, ent in enumerate(source_spans):
            sub = mat[ent.start : ent.end]
            interior = None
            if gap_credit > 0:
                outside = np.concatenate([mat[: ent.start], mat[ent.end :]]).max(axis=0, initial=0.0)
                interior = gap_credit * _flanked_gaps(sub.max(axis=0) > 0, outside > 0, max_gap)
            total[k] += align_weight * coverage_dice(sub, sub.max(axis=0), starts, ends, "max", interior=interior)
        weight_sum += align_weight
    if soft_weight > 0 and soft is not None:
        fwd, rev = soft.matrices(len(source), len(target))
        for k, ent in enumerate(source_spans):
            tgt_cov = np.minimum(rev[ent.start : ent.end].sum(axis=0), 1.0)
            total[k] += soft_weight * coverage_dice(fwd[ent.start : ent.end], tgt_cov, starts, ends, "sum")
        weight_sum += soft_weight
    if string_weight > 0:
        tgt_words = target.words
        tgt_keep = np.array([0.0 if is_punct(w) else 1.0 for w in tgt_words])
        for k, ent in enumerate(source_spans):
            ent_words = [w for w in source.words[ent.start : ent.end] if not is_punct(w)]
            if not ent_words:
                continue
            sims = np.array([[word_similarity(s, t) for t in tgt_words] for s in ent_words])
            sims = np.where(sims > string_floor, sims, 0.0) * tgt_keep
            total[k] += string_weight * coverage_dice(sims, sims.max(axis=0), starts, ends, "max", tgt_keep, len(ent_words))
        weight_sum += string_weight
    if weight_sum == 0:
        raise ProjectionError("candidate matching needs at least one evidence with a positive weight")
    if model_weight > 0:
        probs = np.array([np.nan if c.probability is None else c.probability for c in candidates])
        has = ~np.isnan(probs)
        total[:, has] += model_weight * probs[has]
        return total / np.where(has, weight_sum + model_weight, weight_sum)
    return total / weight_sum


def project_candidates(
    source: Sentence,
    source_spans: Sequence[Span],
    target: Sentence,
    links: Sequence[Link],
    *,
    soft: SoftAlignment | None = None,
    solver: str = "ilp",
    candidates: Sequence[Candidate] | None = None,
    model_candidates: Sequence[Candidate] | None = None,
    max_len: int = 10,
    trim_punct: bool = True,
    threshold: float = 0.0,
    align_weight: float = 1.0,
    soft_weight: float = 1.0,
    string_weight: float = 0.0,
    model_weight: float = 0.0,
    link_scores: bool = False,
    string_floor: float = 0.5,
    gap_credit: float = 0.0,
    max_gap: int = 2,
    derived_label: str | None = None,
) -> ProjectionResult:
    """Project spans by scoring candidates and solving the assignment (module docstring).

    ``candidates`` replaces the n-gram candidates (e.g. from a target NER model);
    ``model_candidates`` (a target model's spans with probabilities and labels) are fused
    with them instead: every n-gram stays a candidate with its alignment score, and a pair
    the model supports is multiplied by ``1 + model_weight * probability``
    (``_model_bonus``), so the model decides where the alignment cannot and the entities it
    missed project as before. A pair is eligible only when its score exceeds ``threshold``. The n-gram length limit grows to the
    longest source entity when that is longer (titles of documents run past 10 words).
    A name projected onto one lower-case word gets ``derived_label`` (common.projected_label).
    """
    if solver not in SOLVERS:
        raise ProjectionError(f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}")
    links = check_links(source, target, links)
    result = ProjectionResult()
    if not source_spans:
        return result
    if candidates is None:
        longest = max(len(s) for s in source_spans)
        cands = ngram_candidates(target, max(max_len, longest), trim_punct)
        if model_candidates is not None:
            known = {(c.start, c.end) for c in cands}
            extra = {(c.start, c.end) for c in model_candidates} - known  # longer than the n-grams, or at punctuation
            cands += [Candidate(a, b) for a, b in sorted(extra)]
    else:
        cands = list(candidates)
    for c in cands:
        if not (0 <= c.start < c.end <= len(target)):
            raise ProjectionError(f"candidate [{c.start}, {c.end}) outside the target sentence of {len(target)} tokens")
    scores = score_candidates(
        source, source_spans, target, links, cands,
        soft=soft, align_weight=align_weight, soft_weight=soft_weight, string_weight=string_weight,
        model_weight=model_weight, link_scores=link_scores, string_floor=string_floor,
        gap_credit=gap_credit, max_gap=max_gap,
    )
    if model_candidates is not None and candidates is None and model_weight > 0:
        scores = _model_bonus(scores, cands, source_spans, model_candidates, model_weight)
    spans = [(c.start, c.end) for c in cands]
    assign = assign_ilp if solver == "ilp" else assign_greedy
    chosen = dict(assign(scores, spans, threshold)) if cands else {}
    linked = {ln.src for ln in links}
    out: list[Span] = []
    for k, ent in enumerate(source_spans):
        if k in chosen:
            c = cands[chosen[k]]
            conf = float(min(1.0, max(0.0, scores[k, chosen[k]])))
            label = projected_label(source, ent, target, c.start, c.end, derived_label)
            out.append(make_span(target, c.start, c.end, label, f"projection:{solver}", round(conf, 6)))
        elif (scores[k] > threshold).any():
            result.unprojected.append(Unprojected(ent, "conflict"))
        elif not any(s in linked for s in range(ent.start, ent.end)) and not (scores[k] > 0).any():
            result.unprojected.append(Unprojected(ent, "no_links"))
        else:
            result.unprojected.append(Unprojected(ent, "below_threshold"))
    result.spans = sorted(out, key=lambda s: s.start)
    return result
