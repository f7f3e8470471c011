"""Back-translation refinement: S-B string match, composition S->B->T, confirm/add policy."""

from __future__ import annotations

import pytest

from core.align import (
    BackTranslationAligner,
    StringMatchAligner,
    align_items,
    back_translator,
    compose_links,
    get_aligner,
    make_back_translator,
    refine_links,
)
from core.data import Item, Link, Sentence


class TableAligner:
    """Links looked up by (source words, target words): a stand-in for a real aligner."""

    def __init__(self, name: str, table: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Link]]):
        self.name = name
        self.table = table
        self.calls: list = []

    def align(self, pairs):
        self.calls.append(pairs)
        return [list(self.table.get((tuple(p[0]), tuple(p[1])), [])) for p in pairs]


S = ["the", "green", "house", "is", "big"]
T = ["das", "grüne", "Haus", "ist", "groß"]
B = ["the", "house", "green", "is", "large"]  # back-translation with a different word order


def test_string_match_pairs_repeats_by_position():
    links = StringMatchAligner().align([(["The", "cat", "and", "the", "dog"], ["the", "dog", "and", "THE", "cat"])])[0]
    assert {(ln.src, ln.tgt) for ln in links} == {(0, 0), (1, 4), (2, 2), (3, 3), (4, 1)}
    accents = StringMatchAligner(strip_accents=True).align([(["café"], ["cafe"])])[0]
    assert [(ln.src, ln.tgt) for ln in accents] == [(0, 0)]
    lemma = StringMatchAligner(lemmatize=lambda w: w.rstrip("s")).align([(["houses"], ["house"])])[0]
    assert [(ln.src, ln.tgt) for ln in lemma] == [(0, 0)]


def test_compose_takes_best_path():
    sb = [Link(0, 0, 1.0), Link(1, 2, 0.9), Link(1, 1, 0.5)]
    bt = [Link(0, 0, 0.8), Link(2, 1, 0.9), Link(1, 1, 1.0), Link(3, 3, 1.0)]
    assert compose_links(sb, bt) == [Link(0, 0, 0.8), Link(1, 1, pytest.approx(0.81))]


def test_refine_confirms_adds_and_drops():
    direct = [Link(0, 0, 0.6), Link(1, 2, 0.5), Link(2, 2, 0.9)]
    composed = [Link(0, 0, 0.5), Link(3, 3, 0.9), Link(2, 0, 0.95), Link(4, 4, 0.3)]
    out = {(ln.src, ln.tgt): ln.score for ln in refine_links(direct, composed, add_threshold=0.8)}
    assert out[(0, 0)] == pytest.approx(0.8)  # confirmed: 1 - 0.4 * 0.5
    assert out[(3, 3)] == 0.9  # added: both words unaligned, score above the threshold
    assert (2, 0) not in out  # source 2 and target 0 already have direct links
    assert (4, 4) not in out  # below the threshold
    assert out[(1, 2)] == 0.5 and out[(2, 2)] == 0.9  # unconfirmed links stay
    assert (2, 0) in {(ln.src, ln.tgt) for ln in refine_links(direct, composed, add_policy="any")}
    none = refine_links(direct, composed, add_policy="none", drop_below=0.55)
    assert {(ln.src, ln.tgt) for ln in none} == {(0, 0), (2, 2)}
    with pytest.raises(ValueError, match="add_policy"):
        refine_links(direct, composed, add_policy="some")


def make_aligner(**options):
    direct = TableAligner(
        "direct",
        {
            (tuple(S), tuple(T)): [Link(0, 0, 0.9), Link(1, 1, 0.6), Link(3, 3, 0.9)],
            (tuple(B), tuple(T)): [Link(0, 0, 0.9), Link(1, 2, 0.95), Link(2, 1, 0.9), Link(4, 4, 0.85)],
        },
    )
    return BackTranslationAligner(direct, **options), direct


def test_back_translation_aligner_with_given_back_translation():
    aligner, direct = make_aligner()
    assert aligner.name == "backtranslation(direct,exact)"
    composed = aligner.composed([(S, T, B)])[0]
    # S-B by string match: the-the, green-green(2), house-house(1), is-is; "big"/"large" do not match
    assert {(ln.src, ln.tgt) for ln in composed} == {(0, 0), (1, 1), (2, 2)}
    out = {(ln.src, ln.tgt): ln.score for ln in aligner.align([(S, T, B)])[0]}
    assert out[(1, 1)] == pytest.approx(1 - 0.4 * 0.1)  # green-grüne confirmed
    assert out[(2, 2)] == pytest.approx(0.95)  # house-Haus added (both unaligned directly)
    assert out[(3, 3)] == 0.9  # is-ist: not confirmed (B-T lacks is-ist), kept
    assert (4, 4) not in out  # big/large: no S-B link, so nothing to compose


def test_back_translation_made_by_translator_fn():
    calls = []

    def translate(texts):
        calls.append(texts)
        return ["the house green is large" for _ in texts]

    aligner, _ = make_aligner(translator_fn=make_back_translator(translate))
    out = aligner.align([(S, T)])
    assert calls == [["das grüne Haus ist groß"]]
    assert (2, 2) in {(ln.src, ln.tgt) for ln in out[0]}
    bare, _ = make_aligner()
    with pytest.raises(ValueError, match="pair 0 has no back-translation"):
        bare.align([(S, T)])


def test_align_items_passes_back_translation_text():
    aligner, direct = make_aligner()
    item = Item(
        "x", Sentence.from_words(S), target=Sentence.from_words(T), meta={"back_translation": "the house green is large"}
    )
    out = align_items([item], aligner)
    assert (2, 2) in {(ln.src, ln.tgt) for ln in out[0].alignment}
    assert direct.calls[0] == [(S, T)]  # the direct aligner sees plain pairs


def test_registry_builds_back_translation_with_same_language_aligner():
    al = get_aligner("bt(eflomal,exact)", translator_fn=lambda targets: targets, add_policy="none")
    assert isinstance(al, BackTranslationAligner) and al.add_policy == "none"
    assert al.translator_fn is not None and al.same_lang.name == "exact"


def test_back_translator_uses_core_translate_and_source_tokenizer(monkeypatch):
    import core.translate

    class FakeTranslator:
        name = "fake"

        def translate(self, texts, src, tgt):
            assert (src, tgt) == ("de", "en")  # target language back into the source language
            return ["the house, green." for _ in texts]

    monkeypatch.setattr(core.translate, "load_translator", lambda spec: FakeTranslator())
    fn = back_translator("fake", src="en", tgt="de")
    assert fn([T]) == [["the", "house", ",", "green", "."]]
