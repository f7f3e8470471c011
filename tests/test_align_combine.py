"""Union / intersection / grow-diag-final(-and) on hand-made links, and the aligner registry."""

from __future__ import annotations

import pytest

from core.align import CombinedAligner, combine_links, combine_points, get_aligner, grow_diag_final, parse_spec
from core.align.backtranslation import BackTranslationAligner, StringMatchAligner
from core.align.embedding import SimAlignAligner
from core.align.statistical import EflomalAligner
from core.data import Link

# A (forward) and B (reverse): both agree on 0-0 and 1-1; B continues the diagonal 2-2, 3-3
# (grown from 1-1); A has 4-0 (source 4 free, target 0 taken); B has 5-5 (both free, but
# not next to any point, so only a "final" step adds it).
A = {(0, 0), (1, 1), (4, 0)}
B = {(0, 0), (1, 1), (2, 2), (3, 3), (5, 5)}
GROWN = {(0, 0), (1, 1), (2, 2), (3, 3)}


def test_grow_diag_final_variants():
    assert combine_points("intersection", A, B) == {(0, 0), (1, 1)}
    assert combine_points("union", A, B) == A | B
    assert grow_diag_final(A, B, final=False) == GROWN == combine_points("gd", A, B)
    assert combine_points("gdf", A, B) == GROWN | {(4, 0), (5, 5)}  # either word free
    assert combine_points("gdfa", A, B) == GROWN | {(5, 5)}  # both words free


def test_grow_does_not_cross_aligned_words():
    # 0-1 neighbours 0-0 but both its words are already aligned: grow-diag skips it
    a = {(0, 0), (1, 1), (0, 1)}
    b = {(0, 0), (1, 1)}
    assert combine_points("gd", a, b) == {(0, 0), (1, 1)}
    assert combine_points("gdf", a, b) == {(0, 0), (1, 1)}
    assert combine_points("union", a, b) == a


def test_scores_max_and_mean():
    la = [Link(0, 0, 0.8), Link(1, 1, 0.6)]
    lb = [Link(0, 0, 0.4), Link(2, 2, 1.0)]
    assert combine_links("union", la, lb, score="max") == [Link(0, 0, 0.8), Link(1, 1, 0.6), Link(2, 2, 1.0)]
    assert combine_links("union", la, lb, score="mean") == [
        Link(0, 0, pytest.approx(0.6)), Link(1, 1, 0.3), Link(2, 2, 0.5)
    ]  # fmt: skip
    assert combine_links("intersection", la, lb, score="mean") == [Link(0, 0, pytest.approx(0.6))]
    with pytest.raises(ValueError, match="unknown score policy"):
        combine_links("union", la, lb, score="median")
    with pytest.raises(ValueError, match="unknown combination"):
        combine_links("grow", la, lb)


class FixedAligner:
    """Returns the same links for every pair (a stand-in for a real aligner)."""

    def __init__(self, name: str, links: set[tuple[int, int]]):
        self.name = name
        self.links = links

    def align(self, pairs):
        return [[Link(s, t) for s, t in sorted(self.links)] for _ in pairs]


def test_combined_aligner_runs_both_per_pair():
    aligner = CombinedAligner("gdfa", FixedAligner("fwd", A), FixedAligner("rev", B))
    assert aligner.name == "gdfa(fwd,rev)"
    out = aligner.align([(["w"] * 6, ["v"] * 6)] * 2)
    assert [{(ln.src, ln.tgt) for ln in links} for links in out] == [GROWN | {(5, 5)}] * 2


def test_registry_builds_trees_and_routes_options():
    assert parse_spec("gdfa( simalign:match , eflomal )") == ("gdfa", None, [("simalign", "match", []), ("eflomal", None, [])])
    al = get_aligner("gdfa(simalign:match,eflomal)", layer=6, score="max", simalign={"model": "m"}, eflomal={"model": 2})
    assert isinstance(al, CombinedAligner) and al.score == "max" and al.name == "gdfa(simalign:match,eflomal)"
    assert isinstance(al.first, SimAlignAligner) and al.first.method == "match" and al.first.layer == 6
    assert al.first.model_name == "m"
    assert isinstance(al.second, EflomalAligner) and al.second.model == 2
    bt = get_aligner("bt(simalign,exact)", add_threshold=0.5, lowercase=False)
    assert isinstance(bt, BackTranslationAligner) and bt.add_threshold == 0.5
    assert isinstance(bt.same_lang, StringMatchAligner) and bt.same_lang.lowercase is False
    assert get_aligner("simalign").name == "simalign:itermax"


@pytest.mark.parametrize(
    "spec,options,message",
    [
        ("fast_align", {}, "unknown aligner 'fast_align'"),
        ("union(simalign)", {}, "exactly two aligners"),
        ("simalign:best", {}, "unknown method 'best'"),
        ("union(simalign,eflomal", {}, "expected '\\)'"),
        ("simalign", {"lyer": 3}, "takes the option 'lyer'"),
        ("union(simalign,eflomal)", {"model": "x"}, "'model' is ambiguous"),
        ("simalign", {"eflomal": {"iterations": 3, "bogus": 1}}, "eflomal has no option bogus"),
    ],
)
def test_registry_errors(spec, options, message):
    with pytest.raises(ValueError, match=message):
        get_aligner(spec, **options)
