"""Projection rules on tiny hand-made alignments (fast, no models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.data import Item, Link, Sentence, make_span
from core.projection import (
    DEFAULT_ALIGNER,
    DEFAULT_METHOD,
    METHODS,
    SoftAlignment,
    join_touching,
    project_candidates,
    project_heuristic,
    project_items,
    project_sentence,
)
from core.projection.assign import assign_greedy, assign_ilp, total_score
from core.projection.matching import Candidate, coverage_dice, ngram_candidates, score_candidates
from core.projection.similarity import word_similarity
from core.projection.soft import soft_from_similarity, word_similarity_matrix


def sent(text: str, lang: str = "x") -> Sentence:
    return Sentence.from_words(text.split(), lang)


def links(*pairs: tuple[int, int]) -> list[Link]:
    return [Link(s, t) for s, t in pairs]


def keys(spans) -> list[tuple[int, int, str]]:
    return [s.key() for s in spans]


# ----------------------------------------------------------------------------- heuristic


def test_heuristic_reordering():
    src, tgt = sent("I saw the European Parliament"), sent("vi el Parlamento Europeo")
    ent = make_span(src, 3, 5, "ORG")
    res = project_heuristic(src, [ent], tgt, links((1, 0), (2, 1), (3, 3), (4, 2)))
    assert keys(res.spans) == [(2, 4, "ORG")]
    assert res.spans[0].source == "projection:heuristic"
    assert res.spans[0].confidence == 1.0
    assert res.unprojected == []


def test_heuristic_one_to_many():
    src, tgt = sent("the UK voted"), sent("el Reino Unido votó")
    res = project_heuristic(src, [make_span(src, 1, 2, "LOC")], tgt, links((0, 0), (1, 1), (1, 2), (2, 3)))
    assert keys(res.spans) == [(1, 3, "LOC")]
    assert res.spans[0].confidence == 1.0  # both target words covered by the one source word


def test_heuristic_discontinuous_runs_merge_within_gap():
    src, tgt = sent("Central Bank said"), sent("Banco X Central dijo")
    ent = make_span(src, 0, 2, "ORG")
    lk = links((0, 2), (1, 0), (2, 3))
    assert keys(project_heuristic(src, [ent], tgt, lk, max_gap=1).spans) == [(0, 3, "ORG")]
    # without merging, two runs of one word: the top run (first on ties) is kept
    assert keys(project_heuristic(src, [ent], tgt, lk, max_gap=0).spans) == [(0, 1, "ORG")]
    both = project_heuristic(src, [ent], tgt, lk, max_gap=0, top_k=None)
    assert keys(both.spans) == [(0, 1, "ORG"), (2, 3, "ORG")]


def test_heuristic_length_ratio_filter():
    src, tgt = sent("Committee on Foreign Affairs met"), sent("Ausschuss tagte")
    ent = make_span(src, 0, 4, "ORG")
    lk = links((0, 0), (4, 1))
    assert keys(project_heuristic(src, [ent], tgt, lk, min_ratio=0.0).spans) == [(0, 1, "ORG")]
    res = project_heuristic(src, [ent], tgt, lk, min_ratio=0.5)  # 1/4 does not exceed 0.5
    assert res.spans == [] and [(u.span, u.reason) for u in res.unprojected] == [(ent, "too_short")]


def test_heuristic_unaligned_entity_is_reported():
    src, tgt = sent("Mr Hicks spoke"), sent("habló")
    ent = make_span(src, 1, 2, "PER")
    res = project_heuristic(src, [ent], tgt, links((2, 0)))
    assert res.spans == []
    assert [(u.span, u.reason) for u in res.unprojected] == [(ent, "no_links")]


def test_heuristic_overlap_keeps_higher_confidence():
    src, tgt = sent("Sri Lankan President of Sri Lanka"), sent("Presidente de Sri Lanka")
    a, b = make_span(src, 0, 2, "MISC"), make_span(src, 4, 6, "LOC")
    lk = links((0, 2), (2, 0), (4, 2), (5, 3))
    res = project_heuristic(src, [a, b], tgt, lk)
    assert keys(res.spans) == [(2, 4, "LOC")]  # Dice 1.0 beats 2/3
    assert [(u.span, u.reason) for u in res.unprojected] == [(a, "conflict")]


def test_heuristic_rejects_links_outside_the_sentences():
    src, tgt = sent("a b"), sent("c")
    with pytest.raises(ValueError, match="outside"):
        project_heuristic(src, [make_span(src, 0, 1, "X")], tgt, links((0, 3)))


# ----------------------------------------------------------------------------- candidates and scores


def test_ngram_candidates_respect_punctuation_and_length():
    tgt = sent('el " Parlamento Europeo " ,')
    spans = {(c.start, c.end) for c in ngram_candidates(tgt, max_len=3)}
    assert (2, 4) in spans and (0, 1) in spans
    assert not any(a == 1 or b == 2 for a, b in spans)  # never start or end on '"'
    assert all(b - a <= 3 for a, b in spans)
    loose = {(c.start, c.end) for c in ngram_candidates(tgt, max_len=3, trim_punct=False)}
    assert (1, 4) in loose and (5, 6) not in loose  # punctuation-only spans never


def test_alignment_dice_matches_the_formula():
    src, tgt = sent("European Parliament today"), sent("Parlamento Europeo de hoy")
    ent = make_span(src, 0, 2, "ORG")
    cands = [Candidate(0, 2), Candidate(0, 3), Candidate(1, 2)]
    lk = links((0, 1), (1, 0), (2, 3))
    scores = score_candidates(src, [ent], tgt, lk, cands, soft_weight=0.0)
    assert scores[0].tolist() == pytest.approx([1.0, 4 / 5, 2 / 3])  # 2*links/(ls+lt)


def test_coverage_dice_one_to_many_stays_in_unit_interval():
    src_vals = np.array([[1.0, 1.0, 0.0]])  # one source word linked to two target words
    d = coverage_dice(src_vals, src_vals.max(axis=0), np.array([0, 0]), np.array([2, 3]))
    assert d.tolist() == pytest.approx([1.0, 3 / 4])


def test_gap_credit_covers_unlinked_words_between_aligned_ones():
    src, tgt = sent("EU Member States refuse"), sent("Estados Miembros de la UE rechazan")
    ent = make_span(src, 0, 3, "ORG")
    lk = links((0, 4), (1, 1), (2, 0), (3, 5))
    plain = project_candidates(src, [ent], tgt, lk, soft_weight=0.0)
    assert keys(plain.spans) == [(0, 2, "ORG")]  # 0.8 beats 0.75 for the full span
    credited = project_candidates(src, [ent], tgt, lk, soft_weight=0.0, gap_credit=1.0, max_gap=2)
    assert keys(credited.spans) == [(0, 5, "ORG")]
    assert credited.spans[0].confidence == pytest.approx(1.0)
    # a gap longer than max_gap gets no credit
    short = project_candidates(src, [ent], tgt, lk, soft_weight=0.0, gap_credit=1.0, max_gap=1)
    assert keys(short.spans) == [(0, 2, "ORG")]


def test_soft_alignment_sees_the_second_half_of_a_one_to_many_translation():
    src, tgt = sent("the UK voted"), sent("el Reino Unido votó")
    ent = make_span(src, 1, 2, "LOC")
    hard = links((0, 0), (2, 3))  # the hard aligner found no counterpart for UK
    cos = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.8, 0.8, 0.1], [0.1, 0.1, 0.1, 0.9]])
    soft = soft_from_similarity(cos, tau=0.05)
    alone = project_candidates(src, [ent], tgt, hard, soft_weight=0.0)
    assert alone.spans == [] and [u.reason for u in alone.unprojected] == ["no_links"]
    fused = project_candidates(src, [ent], tgt, hard, soft=soft, soft_weight=1.0)
    assert keys(fused.spans) == [(1, 3, "LOC")]


def test_soft_from_similarity_rows_and_columns_are_distributions():
    cos = np.array([[0.9, 0.2, 0.1], [0.3, 0.8, 0.7]])
    soft = soft_from_similarity(cos, tau=0.1, min_prob=0.0)
    fwd, rev = soft.matrices(2, 3)
    assert fwd.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert rev.sum(axis=0) == pytest.approx([1.0, 1.0, 1.0])
    assert np.allclose(SoftAlignment.from_dict(json.loads(json.dumps(soft.to_dict()))).matrices(2, 3)[0], fwd)
    with pytest.raises(ValueError):
        soft_from_similarity(cos, tau=0.0)


def test_word_similarity_matrix_takes_the_best_subword_pair():
    sim = np.array([[1.0, 0.5, 0.5], [0.5, 0.6, 0.9]])  # (cos+1)/2 scale: 2 src subwords, 3 tgt subwords
    out = word_similarity_matrix(sim, np.array([0, 0]), np.array([0, 1, 1]), 1, 2)
    assert out[0].tolist() == pytest.approx([1.0, 0.8])


def test_string_similarity_for_names_and_numbers():
    assert word_similarity("Prodi", "Prodi") == 1.0
    assert word_similarity("Comisión", "comision") == 1.0  # case and accents
    assert word_similarity("1999", "1998") == 0.0  # numbers match exactly or not at all
    assert 0.3 < word_similarity("Kommission", "Commission") < 1.0
    src, tgt = sent("Mr Ari Vatanen ,"), sent("Herr Ari Vatanen ,")
    ent = make_span(src, 1, 3, "PER")
    cands = [Candidate(1, 3), Candidate(0, 3), Candidate(1, 4, None)]
    scores = score_candidates(src, [ent], tgt, [], cands, align_weight=0.0, soft_weight=0.0, string_weight=1.0)
    assert scores[0].tolist() == pytest.approx([1.0, 4 / 5, 1.0])  # "Herr" uncovered; "," ignored


def test_string_evidence_breaks_a_tie_between_two_aligned_places():
    src, tgt = sent("Prodi and Monti"), sent("Monti y Prodi")
    ent = make_span(src, 0, 1, "PER")
    lk = links((0, 0), (0, 2))  # the aligner cannot decide
    res = project_candidates(src, [ent], tgt, lk, soft_weight=0.0, string_weight=1.0)
    assert keys(res.spans) == [(2, 3, "PER")]


def test_external_candidates_with_model_probability():
    src, tgt = sent("Prodi spoke"), sent("el presidente Prodi habló")
    ent = make_span(src, 0, 1, "PER")
    lk = links((0, 1), (0, 2), (1, 3))
    cands = [Candidate(1, 2, 0.1), Candidate(2, 3, 0.9)]
    res = project_candidates(src, [ent], tgt, lk, candidates=cands, soft_weight=0.0, model_weight=1.0)
    assert keys(res.spans) == [(2, 3, "PER")]
    with pytest.raises(ValueError, match="outside"):
        project_candidates(src, [ent], tgt, lk, candidates=[Candidate(3, 9)], soft_weight=0.0)


def test_threshold_reports_below_threshold():
    src, tgt = sent("European Parliament"), sent("Parlamento de hoy")
    ent = make_span(src, 0, 2, "ORG")
    res = project_candidates(src, [ent], tgt, links((1, 0)), soft_weight=0.0, threshold=0.9)
    assert res.spans == [] and [u.reason for u in res.unprojected] == ["below_threshold"]
    res = project_candidates(src, [ent], tgt, [], soft_weight=0.0)
    assert [u.reason for u in res.unprojected] == ["no_links"]


# ----------------------------------------------------------------------------- assignment


def test_ilp_beats_greedy_on_a_conflict():
    scores = np.array([[0.9, 0.8, 0.0], [0.0, 0.0, 0.7]])
    spans = [(0, 2), (0, 1), (1, 2)]
    greedy = assign_greedy(scores, spans)
    ilp = assign_ilp(scores, spans)
    assert greedy == [(0, 0)]  # takes 0.9, then entity 1's only candidate overlaps
    assert ilp == [(0, 1), (1, 2)]
    assert total_score(scores, ilp) == pytest.approx(1.5)
    assert total_score(scores, greedy) == pytest.approx(0.9)


def test_ilp_and_greedy_agree_without_conflicts():
    scores = np.array([[0.9, 0.2, 0.0, 0.1], [0.1, 0.0, 0.6, 0.3]])
    spans = [(0, 2), (1, 3), (3, 4), (4, 6)]
    assert assign_ilp(scores, spans) == assign_greedy(scores, spans) == [(0, 0), (1, 2)]


def test_threshold_margin_stops_the_ilp_from_splitting_a_span():
    src, tgt = sent("Sri Lanka and Sri Lanka"), sent("Sri Lanka")
    a, b = make_span(src, 0, 2, "LOC"), make_span(src, 3, 5, "LOC")
    lk = links((0, 0), (1, 1), (3, 0), (4, 1))
    # at threshold 0 two halves (2/3 each) outweigh one whole match (1.0) ...
    split = project_candidates(src, [a, b], tgt, lk, soft_weight=0.0, solver="ilp")
    assert keys(split.spans) == [(0, 1, "LOC"), (1, 2, "LOC")]
    # ... counted by their margin over 0.5 they do not (1/6 + 1/6 < 1/2)
    for solver in ("ilp", "greedy"):
        res = project_candidates(src, [a, b], tgt, lk, soft_weight=0.0, solver=solver, threshold=0.5)
        assert keys(res.spans) == [(0, 2, "LOC")]
        assert [u.reason for u in res.unprojected] == ["conflict"]


# ----------------------------------------------------------------------------- presets and batch API


def test_presets_and_defaults():
    assert DEFAULT_METHOD in METHODS and DEFAULT_ALIGNER.startswith("simalign")
    src, tgt = sent("the European Parliament"), sent("el Parlamento Europeo")
    ent = make_span(src, 1, 3, "ORG")
    lk = links((0, 0), (1, 2), (2, 1))
    for method in METHODS:
        res = project_sentence(src, [ent], tgt, lk, method)
        assert keys(res.spans) == [(1, 3, "ORG")], method
        assert res.spans[0].source == f"projection:{method}"
        assert 0.0 <= res.spans[0].confidence <= 1.0
    with pytest.raises(ValueError, match="unknown projection method"):
        project_sentence(src, [ent], tgt, lk, "magic")
    with pytest.raises(ValueError, match="no option"):
        project_sentence(src, [ent], tgt, lk, "heuristic", threshold=0.5)


def test_project_items_fills_targets_and_reports_unprojected():
    src1, tgt1 = sent("Mr Hicks met Prodi"), sent("Herr Hicks traf Prodi")
    src2, tgt2 = sent("Texas"), sent("Hola")
    items = [
        Item("a", src1, [make_span(src1, 1, 2, "PER"), make_span(src1, 3, 4, "PER")], tgt1,
             alignment=links((0, 0), (1, 1), (2, 2))),
        Item("b", src2, [make_span(src2, 0, 1, "LOC")], tgt2, alignment=[]),
    ]
    out = project_items(items, "ilp")
    assert keys(out[0].target_spans) == [(1, 2, "PER")]
    assert out[0].meta["unprojected"] == [
        {"start": 3, "end": 4, "label": "PER", "char_start": 13, "char_end": 18, "text": "Prodi",
         "source": "gold", "confidence": None, "reason": "no_links"}
    ]
    assert out[1].target_spans == [] and out[1].meta["unprojected"][0]["reason"] == "no_links"
    assert items[0].target_spans == [] and "unprojected" not in items[0].meta  # inputs untouched
    for it in out:
        it.validate()


def test_join_touching_makes_one_entity_of_pieces_of_one_label():
    tgt = sent("el Inter de Milán y el Parma jugaron en Milán Roma")
    spans = [make_span(tgt, 3, 4, "ORG", "p", 0.9), make_span(tgt, 1, 3, "ORG", "p", 0.6),  # "Inter de" + "Milán", unordered
             make_span(tgt, 6, 7, "ORG", "p", 0.8),  # "Parma": a word away from "Milán", stays apart
             make_span(tgt, 9, 10, "LOC", "p", None), make_span(tgt, 10, 11, "PER", "p", 0.7)]  # touching, another label
    joined = join_touching(tgt, spans)
    assert keys(joined) == [(1, 4, "ORG"), (6, 7, "ORG"), (9, 10, "LOC"), (10, 11, "PER")]
    assert joined[0].confidence == 0.6 and joined[0].source == "p"
    assert (joined[0].char_start, joined[0].char_end) == (3, 17) and tgt.text[3:17] == "Inter de Milán"
    assert join_touching(tgt, []) == []
    three = [make_span(tgt, 1, 2, "ORG", "p", None), make_span(tgt, 2, 3, "ORG", "p", None), make_span(tgt, 3, 4, "ORG", "p", None)]
    (one,) = join_touching(tgt, three)
    assert one.key() == (1, 4, "ORG") and one.confidence is None


def test_a_name_projected_onto_one_lower_case_word_is_labelled_as_derived():
    from core.projection.common import projected_label

    src = sent("aid from the Community and the Member States of Eastern Europe")
    community, states, europe = make_span(src, 3, 4, "ORG"), make_span(src, 6, 8, "ORG"), make_span(src, 9, 11, "LOC")
    tgt = sent("ayudas comunitarias y de los estados miembros de Europa oriental")
    assert projected_label(src, community, tgt, 1, 2, "MISC") == "MISC"  # an adjective of a name
    assert projected_label(src, community, tgt, 1, 2, None) == "ORG"  # the rule off
    assert projected_label(src, states, tgt, 5, 7, "MISC") == "ORG"  # several lower-case words: a noun phrase
    assert projected_label(src, europe, tgt, 8, 9, "MISC") == "LOC"  # capitalised: still a name
    assert projected_label(src, make_span(src, 0, 1, "MISC"), tgt, 1, 2, "MISC") == "MISC"
    lower = sent("aid from the community")
    assert projected_label(lower, make_span(lower, 3, 4, "ORG"), tgt, 1, 2, "MISC") == "ORG"  # not a name in the source
    caseless = sent("援助 共同体")
    assert projected_label(src, community, caseless, 1, 2, "MISC") == "ORG"  # no case, no evidence
    numbers = sent("2001 年")
    assert projected_label(src, community, numbers, 0, 1, "MISC") == "ORG"
    # every method applies it through its option; the fused presets (the default) have it on
    one = Item("d", src, [community], tgt, alignment=links((3, 1)))
    assert keys(project_items([one], "heuristic", derived_label="MISC")[0].target_spans) == [(1, 2, "MISC")]
    assert keys(project_items([one], "heuristic")[0].target_spans) == [(1, 2, "ORG")]
    assert keys(project_items([one], "greedy", derived_label="MISC")[0].target_spans) == [(1, 2, "MISC")]
    assert METHODS[DEFAULT_METHOD][1]["derived_label"] == "MISC"


def test_project_items_uses_a_stored_soft_alignment_without_the_encoder():
    src, tgt = sent("the UK voted"), sent("el Reino Unido votó")
    cos = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.8, 0.8, 0.1], [0.1, 0.1, 0.1, 0.9]])
    item = Item("u", src, [make_span(src, 1, 2, "LOC")], tgt, alignment=links((0, 0), (2, 3)),
                meta={"soft_alignment": soft_from_similarity(cos).to_dict()})
    (out,) = project_items([item], "ilp-fused", encoder="/nonexistent/never/loaded")
    assert keys(out.target_spans) == [(1, 3, "LOC")]
    assert out.target_spans[0].source == "projection:ilp-fused"


def test_project_items_errors_name_the_item():
    src = sent("Texas")
    with pytest.raises(ValueError, match="item x"):
        project_items([Item("x", src, [make_span(src, 0, 1, "LOC")])], "ilp")
    tgt = sent("Tejas")
    bad = Item("y", src, [make_span(src, 0, 1, "LOC")], tgt, alignment=links((0, 5)))
    with pytest.raises(ValueError, match="item y"):
        project_items([bad], "heuristic")


def test_fused_method_without_an_encoder_says_what_to_do(tmp_path):
    src, tgt = sent("Texas"), sent("Tejas")
    item = Item("t", src, [make_span(src, 0, 1, "LOC")], tgt, alignment=links((0, 0)))
    with pytest.raises(RuntimeError, match="needs the encoder"):
        project_items([item], "ilp-fused", encoder=str(tmp_path / "no-such-encoder"))
    # the same item projects with the hard links alone
    assert keys(project_items([item], "ilp")[0].target_spans) == [(0, 1, "LOC")]


def test_project_items_reads_external_candidates_from_meta():
    src, tgt = sent("Prodi spoke"), sent("el presidente Prodi habló")
    lk = links((0, 1), (0, 2), (1, 3))
    cands = [{"start": 1, "end": 2, "probability": 0.1}, {"start": 2, "end": 3, "probability": 0.9}]
    item = Item("c", src, [make_span(src, 0, 1, "PER")], tgt, alignment=lk, meta={"candidates": cands})
    (out,) = project_items([item], "ilp", model_weight=1.0)
    assert keys(out.target_spans) == [(2, 3, "PER")]
    bad = Item("d", src, [make_span(src, 0, 1, "PER")], tgt, alignment=lk, meta={"candidates": [{"start": 1}]})
    with pytest.raises(ValueError, match="item d: candidate 0"):
        project_items([bad], "ilp")


def test_model_candidates_are_fused_with_the_ngrams_and_never_lose_a_missed_entity():
    from core.projection import MODEL_CANDIDATES, with_model_candidates

    # "Prodi" is linked to both "presidente" and "Prodi": the alignment alone cannot choose
    src, tgt = sent("Prodi met Rosa"), sent("el presidente Prodi vio a Rosa")
    lk = links((0, 1), (0, 2), (1, 3), (2, 5))
    ents = [make_span(src, 0, 1, "PER"), make_span(src, 2, 3, "PER")]
    plain = project_candidates(src, ents, tgt, lk, soft_weight=0.0)
    model = [Candidate(2, 3, 0.9, "PER")]  # the target model found "Prodi" only, not "Rosa"
    fused = project_candidates(src, ents, tgt, lk, model_candidates=model, soft_weight=0.0, model_weight=1.0)
    assert (1, 2, "PER") in keys(plain.spans) or (1, 3, "PER") in keys(plain.spans)  # ambiguous without the model
    assert keys(fused.spans) == [(2, 3, "PER"), (5, 6, "PER")]  # the model decides, the missed "Rosa" still projects

    def predict(sentences):
        return [[make_span(s, 2, 3, "PER", "student:x", 0.9)] for s in sentences]

    (item,) = with_model_candidates([Item("m", src, ents, tgt, alignment=lk)], predict)
    assert item.meta[MODEL_CANDIDATES] == [{"start": 2, "end": 3, "probability": 0.9, "label": "PER"}]
    (out,) = project_items([item], "greedy", model_weight=1.0)
    assert keys(out.target_spans) == [(2, 3, "PER"), (5, 6, "PER")]
    with pytest.raises(ValueError, match="item n: no target sentence"):
        with_model_candidates([Item("n", src, ents)], predict)


def test_a_model_candidate_only_raises_its_own_label_and_leaves_the_rest_unchanged():
    src, tgt = sent("Anna met Bob"), sent("Anna traf Bob")
    lk = links((0, 0), (1, 1), (2, 2))
    ents = [make_span(src, 0, 1, "PER"), make_span(src, 2, 3, "PER")]
    for method_opts in ({"solver": "ilp", "soft_weight": 0.0}, {"solver": "greedy", "soft_weight": 0.0}):
        plain = {sp.key(): sp.confidence for sp in project_candidates(src, ents, tgt, lk, **method_opts).spans}
        fused = project_candidates(src, ents, tgt, lk, model_candidates=[Candidate(0, 1, 0.9, "PER")], model_weight=1.0, **method_opts)
        got = {sp.key(): sp.confidence for sp in fused.spans}
        assert set(got) == set(plain) and got[(2, 3, "PER")] == plain[(2, 3, "PER")]  # "Bob", not proposed: as before
        assert got[(0, 1, "PER")] >= plain[(0, 1, "PER")]
    # a model span of another label gives a PER entity nothing; one without any alignment evidence attracts nothing
    src2, tgt2 = sent("Prodi spoke"), sent("el presidente Prodi habló")
    lk2 = links((0, 1), (0, 2), (1, 3))
    ent = [make_span(src2, 0, 1, "PER")]
    base = project_candidates(src2, ent, tgt2, lk2, soft_weight=0.0)
    other = project_candidates(src2, ent, tgt2, lk2, soft_weight=0.0, model_candidates=[Candidate(2, 3, 0.99, "ORG")], model_weight=1.0)
    assert keys(other.spans) == keys(base.spans) and [sp.confidence for sp in other.spans] == [sp.confidence for sp in base.spans]
    far = project_candidates(src2, ent, tgt2, links((0, 1)), soft_weight=0.0, model_candidates=[Candidate(3, 4, 0.99, "PER")], model_weight=1.0)
    assert keys(far.spans) != [(3, 4, "PER")]
