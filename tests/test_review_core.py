"""Pure review-workbench logic (core.annotations): queue settings and numbers, editor input,
occurrences, projection links, merges and change descriptions."""

from __future__ import annotations

import pytest

from core.annotations.edits import (
    apply_to_occurrence,
    describe_change,
    find_occurrences,
    merge_three_way,
    span_origins,
    spans_from_payload,
    unprojected_spans,
)
from core.annotations.merge import merge_versions
from core.annotations.queue import QueueFilter, compute_item_stats, shuffle_key, student_uncertainty
from core.data import Link, Sentence, SpanError, make_span
from core.media import thumbnail_data_uri

SRC = Sentence.from_words(["Anna", "Weber", "lives", "in", "New", "York", "."], "en")
TGT = Sentence.from_text("Anna Weber vive en  Nueva York .", "es")  # two spaces: offsets are not word counts


def test_queue_filter_checks_its_values() -> None:
    assert QueueFilter().statuses == ("new",)
    with pytest.raises(ValueError, match="queue order"):
        QueueFilter(order="alphabetical")
    with pytest.raises(ValueError, match="status"):
        QueueFilter(statuses=("done",))
    with pytest.raises(ValueError, match="outside"):
        QueueFilter(min_confidence=1.5)
    with pytest.raises(ValueError, match="empty"):
        QueueFilter(min_confidence=0.8, max_confidence=0.2)


def test_item_stats_confidence_disagreement_labels() -> None:
    proj = [make_span(TGT, 0, 2, "PER", "projection:a", 0.9), make_span(TGT, 4, 6, "LOC", "projection:a", 0.4)]
    other = [make_span(TGT, 0, 2, "PER", "projection:b", 0.8)]
    v = compute_item_stats(proj, [], {"projection:a": proj, "projection:b": other}, 0.3, [*proj, *other, make_span(SRC, 4, 6, "MISC")])
    assert v.min_confidence == 0.4
    assert v.disagreement == pytest.approx(1 - 2 * 1 / 3)
    assert v.labels == ("LOC", "MISC", "PER") and v.label_text == "|LOC|MISC|PER|"
    assert (v.confidence_key, v.disagreement_key, v.uncertainty_key) == (0.4, -v.disagreement, -0.3)
    # an unprojected entity counts as confidence 0; unknown values sort last
    w = compute_item_stats([], [make_span(SRC, 0, 2, "PER")], {"x": []}, None, [])
    assert w.min_confidence == 0.0 and w.disagreement is None
    assert (w.disagreement_key, w.uncertainty_key) == (0.0, 1.0)
    assert compute_item_stats(None, [], {}, None, []).confidence_key == 2.0


def test_student_soft_disagreement_replaces_its_hard_f1() -> None:
    proj = [make_span(TGT, 0, 2, "PER", "projection:a", 0.9)]
    student = [make_span(TGT, 0, 2, "PER", "student:3", 0.6)]  # same spans: hard F1 would say 0
    sets = {"projection:a": proj, "student:3": student}
    assert compute_item_stats(proj, [], sets, 0.2, proj).disagreement == 0.0
    assert compute_item_stats(proj, [], sets, 0.2, proj, 0.7).disagreement == pytest.approx(0.7)
    # people who disagree still count when the student is confident
    human = [make_span(TGT, 0, 1, "PER", "human:ann", None)]
    v = compute_item_stats(proj, [], {**sets, "human:ann": human}, 0.2, proj, 0.05)
    assert v.disagreement == pytest.approx(1.0) and v.disagreement_key == pytest.approx(-1.0)


def test_student_uncertainty_prefers_the_stored_value() -> None:
    spans = [make_span(TGT, 0, 2, "PER", "student", 0.7)]
    assert student_uncertainty(spans, {"uncertainty": 0.12}) == 0.12
    assert student_uncertainty(spans, None) == pytest.approx(0.3)
    assert student_uncertainty([], {}) is None


def test_shuffle_key_is_seeded_and_stable() -> None:
    a = [shuffle_key(1, i) for i in range(50)]
    assert a == [shuffle_key(1, i) for i in range(50)]
    assert a != [shuffle_key(2, i) for i in range(50)]
    assert sorted(a) != a


def test_spans_from_payload_snaps_to_tokens_and_refuses_overlaps() -> None:
    spans = spans_from_payload(TGT, [{"start": 4, "end": 6, "label": "LOC", "char_start": 0, "char_end": 1}], ["LOC", "PER"], "human:ann")
    assert (spans[0].char_start, spans[0].char_end) == (TGT.tokens[4].start, TGT.tokens[5].end)
    assert spans[0].text(TGT) == "Nueva York" and spans[0].source == "human:ann"
    with pytest.raises(SpanError, match="overlap"):
        spans_from_payload(TGT, [{"start": 0, "end": 2, "label": "PER"}, {"start": 1, "end": 3, "label": "LOC"}], None, "h")
    with pytest.raises(SpanError, match="not one of the project's labels"):
        spans_from_payload(TGT, [{"start": 0, "end": 2, "label": "DATE"}], ["PER"], "h")
    with pytest.raises(SpanError, match="outside"):
        spans_from_payload(TGT, [{"start": 5, "end": 9, "label": "PER"}], None, "h")
    with pytest.raises(SpanError, match="malformed"):
        spans_from_payload(TGT, [{"start": "x", "end": 2, "label": "PER"}], None, "h")


def test_occurrences_relabel_add_remove_and_refuse_partial_overlaps() -> None:
    s = Sentence.from_words("New York and New York City and York".split())
    assert find_occurrences(s, ["New", "York"]) == [0, 3]
    assert find_occurrences(s, ["new", "york"], ignore_case=True) == [0, 3]
    spans = [make_span(s, 0, 2, "ORG", "projection:x"), make_span(s, 3, 6, "LOC")]
    out = apply_to_occurrence(s, spans, ["New", "York"], "LOC", "human:ann")
    assert out.changed == 1 and out.refused == 1  # the second one is inside "New York City"
    assert [(x.start, x.end, x.label, x.source) for x in out.spans] == [(0, 2, "LOC", "human:ann"), (3, 6, "LOC", "gold")]
    removed = apply_to_occurrence(s, out.spans, ["New", "York"], None, "human:ann")
    assert removed.changed == 1 and [(x.start, x.end) for x in removed.spans] == [(3, 6)]
    added = apply_to_occurrence(s, [], ["York"], "LOC", "human:ann")
    assert added.changed == 3
    unchanged = apply_to_occurrence(s, added.spans, ["York"], "LOC", "human:ann")
    assert unchanged.changed == 0


def test_span_origins_follow_word_links_and_list_unprojected() -> None:
    src = [make_span(SRC, 0, 2, "PER"), make_span(SRC, 4, 6, "LOC")]
    tgt = [make_span(TGT, 4, 6, "LOC"), make_span(TGT, 2, 3, "MISC")]
    links = [Link(0, 0), Link(1, 1), Link(4, 4), Link(5, 5)]
    origins = span_origins(src, tgt, links)
    assert origins == [1, None]
    assert unprojected_spans(src, origins) == [src[0]]
    # without links, same-label spans pair in reading order
    assert span_origins(src, [make_span(TGT, 0, 2, "PER")], []) == [0]


def test_merge_versions_majority_and_overlaps() -> None:
    a = [make_span(SRC, 0, 2, "PER"), make_span(SRC, 4, 6, "LOC")]
    b = [make_span(SRC, 0, 2, "PER"), make_span(SRC, 5, 6, "LOC")]
    c = [make_span(SRC, 0, 1, "PER"), make_span(SRC, 4, 6, "LOC")]
    merged = merge_versions(SRC, {"a": a, "b": b, "c": c})
    assert [x.key() for x in merged.spans] == [(0, 2, "PER"), (4, 6, "LOC")]
    assert all(x.source == "adjudicated" for x in merged.spans)
    votes = {c.span.key(): c.supporters for c in merged.candidates}
    assert votes[(0, 2, "PER")] == ("a", "b") and votes[(5, 6, "LOC")] == ("b",)
    assert merged.contested == 2
    tie = merge_versions(SRC, {"a": [make_span(SRC, 0, 2, "PER")], "b": [make_span(SRC, 0, 2, "ORG")]})
    assert tie.spans == [] and tie.contested == 2


def test_merge_three_way_keeps_theirs_and_refuses_overlapping_additions() -> None:
    base = [make_span(SRC, 0, 2, "PER")]
    theirs = [make_span(SRC, 0, 2, "PER"), make_span(SRC, 4, 6, "LOC")]
    mine = [make_span(SRC, 0, 2, "PER"), make_span(SRC, 2, 3, "MISC")]
    merged, refused = merge_three_way(base, mine, theirs)
    assert [x.key() for x in merged] == [(0, 2, "PER"), (2, 3, "MISC"), (4, 6, "LOC")] and refused == []
    removed, _ = merge_three_way(base, [], theirs)
    assert [x.key() for x in removed] == [(4, 6, "LOC")]
    clash, refused = merge_three_way(base, [*base, make_span(SRC, 5, 6, "ORG")], theirs)
    assert [x.key() for x in refused] == [(5, 6, "ORG")] and [x.key() for x in clash] == [(0, 2, "PER"), (4, 6, "LOC")]


def test_describe_change_reads_like_a_log() -> None:
    before = [make_span(SRC, 0, 2, "PER"), make_span(SRC, 4, 6, "ORG")]
    after = [make_span(SRC, 4, 6, "LOC"), make_span(SRC, 2, 3, "MISC")]
    text = describe_change(before, after, SRC)
    assert "relabelled ORG 'New York' as LOC" in text
    assert "added MISC 'lives'" in text and "removed PER 'Anna Weber'" in text
    assert describe_change(before, before) == "no change to the spans"


def test_thumbnail_is_a_small_jpeg_data_uri(tmp_path) -> None:
    from PIL import Image

    path = tmp_path / "big.png"
    Image.new("RGB", (1600, 900), (200, 30, 30)).save(path)
    uri = thumbnail_data_uri(path, 320)
    assert uri and uri.startswith("data:image/jpeg;base64,")
    import base64
    import io

    img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert max(img.size) == 320
    assert thumbnail_data_uri(tmp_path / "missing.png") is None and thumbnail_data_uri(None) is None
