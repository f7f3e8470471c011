"""Property tests: projections stay in bounds, never overlap, and account for every entity."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data import Link, Sentence, check_spans, make_span
from core.projection import METHODS, project_sentence
from core.projection.assign import assign_greedy, assign_ilp, total_score
from core.projection.soft import soft_from_similarity

WORDS = ["EU", "la", "Comisión", ",", "Prodi", "de", "(", "1999", "Parlamento", "Europeo"]


@st.composite
def projection_case(draw):
    n_src = draw(st.integers(1, 9))
    n_tgt = draw(st.integers(1, 9))
    src = Sentence.from_words(draw(st.lists(st.sampled_from(WORDS), min_size=n_src, max_size=n_src)))
    tgt = Sentence.from_words(draw(st.lists(st.sampled_from(WORDS), min_size=n_tgt, max_size=n_tgt)))
    # non-overlapping source entities from sorted cut points
    cuts = sorted(set(draw(st.lists(st.integers(0, n_src), max_size=6))))
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        if draw(st.booleans()):
            spans.append(make_span(src, a, b, draw(st.sampled_from(["PER", "ORG"]))))
    pairs = draw(st.sets(st.tuples(st.integers(0, n_src - 1), st.integers(0, n_tgt - 1)), max_size=12))
    links = [Link(s, t, draw(st.floats(0, 1))) for s, t in sorted(pairs)]
    cos = np.array(draw(st.lists(st.floats(-1, 1), min_size=n_src * n_tgt, max_size=n_src * n_tgt))).reshape(n_src, n_tgt)
    return src, spans, tgt, links, soft_from_similarity(cos)


@settings(max_examples=60, deadline=None)
@given(projection_case(), st.sampled_from(sorted(METHODS)), st.booleans())
def test_every_entity_is_projected_once_or_reported(case, method, keep_labels):
    src, spans, tgt, links, soft = case
    options = {} if method == "heuristic" else {"soft": soft}
    if keep_labels:
        options["derived_label"] = None  # the fused presets' rule off: every label carries over
    res = project_sentence(src, spans, tgt, links, method, **options)
    check_spans(tgt, res.spans)  # in bounds, offsets match the tokens, no overlaps
    assert all(0.0 <= s.confidence <= 1.0 for s in res.spans)
    assert all(s.source == f"projection:{method}" for s in res.spans)
    assert len(res.spans) + len(res.unprojected) == len(spans)
    unprojected = [u.span for u in res.unprojected]
    assert all(u in spans for u in unprojected)
    # the source has only PER and ORG: a MISC comes from the derived-label rule, on one lower-case word
    derived = [s for s in res.spans if s.label == "MISC"]
    assert not (keep_labels and derived)
    assert all(s.end - s.start == 1 and tgt.words[s.start].islower() for s in derived)
    labels = Counter(s.label for s in res.spans if s.label != "MISC") + Counter(u.label for u in unprojected)
    assert labels <= Counter(s.label for s in spans) and labels.total() + len(derived) == len(spans)


@st.composite
def assignment_case(draw):
    n_ent = draw(st.integers(1, 4))
    n_tok = draw(st.integers(1, 8))
    spans = sorted(draw(st.sets(st.tuples(st.integers(0, n_tok - 1), st.integers(1, 4)), min_size=1, max_size=10)))
    spans = [(a, min(a + n, n_tok)) for a, n in spans]
    scores = np.array(draw(st.lists(st.floats(0, 1), min_size=n_ent * len(spans), max_size=n_ent * len(spans))))
    threshold = draw(st.sampled_from([0.0, 0.2, 0.5]))
    return scores.reshape(n_ent, len(spans)), spans, threshold


def _feasible(chosen, scores, spans, threshold):
    ents = [e for e, _ in chosen]
    assert len(ents) == len(set(ents))
    taken = sorted(spans[c] for _, c in chosen)
    assert all(a[1] <= b[0] for a, b in zip(taken, taken[1:]))
    assert all(scores[e, c] > threshold for e, c in chosen)


@settings(max_examples=80, deadline=None)
@given(assignment_case())
def test_ilp_is_never_worse_than_greedy(case):
    scores, spans, threshold = case
    ilp = assign_ilp(scores, spans, threshold)
    greedy = assign_greedy(scores, spans, threshold)
    _feasible(ilp, scores, spans, threshold)
    _feasible(greedy, scores, spans, threshold)
    assert total_score(scores, ilp, threshold) >= total_score(scores, greedy, threshold) - 1e-6


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.data())
def test_ilp_equals_greedy_without_conflicts(n_ent, data):
    # each entity gets its own disjoint block of candidates: no conflict between entities
    spans, owner = [], []
    for e in range(n_ent):
        base = 10 * e
        for a, b in data.draw(st.sets(st.tuples(st.integers(0, 4), st.integers(1, 4)), min_size=1, max_size=4)):
            spans.append((base + a, base + a + b))
            owner.append(e)
    scores = np.zeros((n_ent, len(spans)))
    values = data.draw(st.lists(st.floats(0.01, 1), min_size=len(spans), max_size=len(spans), unique=True))
    for j, (e, v) in enumerate(zip(owner, values)):
        scores[e, j] = v
    # within an entity's block only one candidate can be taken anyway; the best one wins
    ilp = assign_ilp(scores, spans)
    greedy = assign_greedy(scores, spans)
    assert ilp == greedy
    assert [c for _, c in ilp] == [int(np.argmax(scores[e])) for e in range(n_ent)]
