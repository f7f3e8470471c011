"""core.tags: the one span <-> tag converter (IOB1, IOB2, BIOES) and its repair reports."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data import Sentence, Span, check_spans, make_span
from core.tags import SCHEMES, TagError, TagIssue, convert_tags, detect_scheme, spans_to_tags, tags_to_spans


def sent(n: int) -> Sentence:
    return Sentence.from_words([f"w{i}" for i in range(n)])


def keys(spans: list[Span]) -> list[tuple[int, int, str]]:
    return [s.key() for s in spans]


# One sentence, the same spans, written in each scheme (two adjacent PER spans, an adjacent
# PER/LOC pair and single-token spans: the cases where the schemes differ).
SPANS = [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC"), (5, 7, "ORG")]
TAGS = {
    "IOB2": ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O"],
    "IOB1": ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O"],
    "BIOES": ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "E-ORG", "O"],
}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_known_sequence_round_trips_in_each_scheme(scheme):
    s = sent(8)
    spans = [make_span(s, a, b, lb) for a, b, lb in SPANS]
    assert spans_to_tags(8, spans, scheme) == TAGS[scheme]
    read, issues = tags_to_spans(s, TAGS[scheme], scheme)
    assert keys(read) == SPANS
    assert issues == []
    assert [(x.char_start, x.char_end) for x in read] == [(y.char_start, y.char_end) for y in spans]
    assert detect_scheme(TAGS[scheme]) == scheme


@pytest.mark.parametrize("src", SCHEMES)
@pytest.mark.parametrize("dst", SCHEMES)
def test_convert_tags_between_every_pair_of_schemes(src, dst):
    tags, issues = convert_tags(TAGS[src], src, dst)
    assert tags == TAGS[dst]
    assert issues == []


def test_source_is_kept_on_read_spans():
    spans, _ = tags_to_spans(sent(2), ["B-PER", "I-PER"], "IOB2", source="teacher")
    assert spans[0].source == "teacher"


def test_detect_scheme_defaults_and_hints():
    assert detect_scheme([]) == "IOB2"
    assert detect_scheme(["O", "O"]) == "IOB2"
    assert detect_scheme(["B-PER", "I-PER", "O"]) == "IOB2"
    assert detect_scheme(["I-PER", "O", "I-LOC"]) == "IOB1"
    assert detect_scheme(["I-PER", "B-PER"]) == "IOB1"  # B only between same-label spans
    assert detect_scheme(["S-PER"]) == "BIOES"
    assert detect_scheme(["B-PER", "E-PER"]) == "BIOES"
    # an IOB2 file with one broken span is still IOB2 (B- after O exists)
    assert detect_scheme(["B-PER", "O", "I-LOC"]) == "IOB2"


# --- every repair is reported -------------------------------------------------------------

REPAIRS = [
    # (scheme, tags, expected span keys, expected (position, message fragment) issues)
    ("IOB2", ["I-PER", "O"], [(0, 1, "PER")], [(0, "without a preceding B-PER")]),
    ("IOB2", ["O", "I-PER", "I-PER"], [(1, 3, "PER")], [(1, "without a preceding B-PER")]),
    ("IOB2", ["B-PER", "I-LOC"], [(0, 1, "PER"), (1, 2, "LOC")], [(1, "label changes from PER to LOC")]),
    ("IOB1", ["B-PER", "I-LOC"], [(0, 1, "PER"), (1, 2, "LOC")], []),  # valid IOB1
    ("BIOES", ["I-PER", "E-PER"], [(0, 2, "PER")], [(0, "without a preceding B-PER")]),
    ("BIOES", ["E-PER"], [(0, 1, "PER")], [(0, "without a preceding B-PER")]),
    ("BIOES", ["B-PER", "O"], [(0, 1, "PER")], [(0, "not closed by E-")]),
    ("BIOES", ["B-PER", "I-PER"], [(0, 2, "PER")], [(1, "not closed by E- at the end")]),
    ("BIOES", ["B-PER", "B-LOC", "E-LOC"], [(0, 1, "PER"), (1, 3, "LOC")], [(0, "not closed by E-")]),
    ("BIOES", ["B-PER", "S-LOC"], [(0, 1, "PER"), (1, 2, "LOC")], [(0, "not closed by E-")]),
    (
        "BIOES",
        ["B-PER", "E-LOC"],
        [(0, 1, "PER"), (1, 2, "LOC")],
        [(1, "label changes from PER to LOC"), (0, "not closed by E-")],
    ),
    ("BIOES", ["S-PER", "I-PER", "E-PER"], [(0, 1, "PER"), (1, 3, "PER")], [(1, "without a preceding B-PER")]),
]


@pytest.mark.parametrize("scheme,tags,expected,expected_issues", REPAIRS)
def test_every_repair_is_reported(scheme, tags, expected, expected_issues):
    spans, issues = tags_to_spans(sent(len(tags)), tags, scheme)
    assert keys(spans) == expected
    assert [(i.position, i.tag) for i in issues] == [(p, tags[p]) for p, _ in expected_issues]
    for issue, (_, fragment) in zip(issues, expected_issues):
        assert isinstance(issue, TagIssue)
        assert fragment in issue.message


@pytest.mark.parametrize(
    "tags,scheme",
    [
        (["PER"], "IOB2"),  # no prefix
        (["X-PER"], "IOB2"),  # unknown prefix
        (["B-"], "IOB2"),  # no label
        (["b-per"], "IOB2"),  # lower-case prefix
        (["S-PER"], "IOB2"),  # BIOES prefix in IOB2
        (["E-PER"], "IOB1"),
        (["BB-PER"], "BIOES"),
    ],
)
def test_unknown_tags_raise_with_position(tags, scheme):
    with pytest.raises(TagError) as err:
        tags_to_spans(sent(len(tags) + 1), ["O"] + tags, scheme)
    assert err.value.position == 1
    assert repr(tags[0]) in str(err.value)


def test_unknown_scheme_and_length_mismatch_raise():
    with pytest.raises(TagError, match="unknown tag scheme"):
        tags_to_spans(sent(1), ["O"], "IOE2")
    with pytest.raises(TagError, match="unknown tag scheme"):
        spans_to_tags(1, [], "BILOU")
    with pytest.raises(TagError, match="2 tags for 1 tokens"):
        tags_to_spans(sent(1), ["O", "O"], "IOB2")


def test_spans_to_tags_rejects_overlaps_and_out_of_range():
    s = sent(4)
    with pytest.raises(TagError, match="overlap"):
        spans_to_tags(4, [make_span(s, 0, 2, "A"), make_span(s, 1, 3, "B")], "IOB2")
    with pytest.raises(TagError, match="outside"):
        spans_to_tags(2, [make_span(s, 1, 3, "A")], "IOB2")


# --- properties ---------------------------------------------------------------------------


@st.composite
def sentence_and_spans(draw):
    """A sentence with random non-overlapping spans (adjacent same-label spans included)."""
    n = draw(st.integers(min_value=0, max_value=14))
    s = sent(n)
    spans, i = [], 0
    while i < n:
        if draw(st.booleans()):
            length = draw(st.integers(min_value=1, max_value=min(4, n - i)))
            spans.append(make_span(s, i, i + length, draw(st.sampled_from(["PER", "LOC", "ORG", "MISC-X"]))))
            i += length
        else:
            i += 1
    return s, spans


@settings(max_examples=150, deadline=None)
@given(sentence_and_spans(), st.sampled_from(SCHEMES))
def test_spans_tags_spans_is_identity(data, scheme):
    s, spans = data
    tags = spans_to_tags(len(s), spans, scheme)
    read, issues = tags_to_spans(s, tags, scheme)
    assert read == spans
    assert issues == []
    if spans:
        assert detect_scheme(tags) == scheme
    for other in SCHEMES:
        converted, conv_issues = convert_tags(tags, scheme, other)
        assert converted == spans_to_tags(len(s), spans, other)
        assert conv_issues == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]), max_size=12),
    st.sampled_from(["IOB2", "BIOES"]),
)
def test_any_tag_sequence_reads_to_valid_spans_and_every_change_is_reported(tags, scheme):
    if scheme == "IOB2":
        tags = [t if t[0] in "OBI" else "I" + t[1:] for t in tags]
    s = sent(len(tags))
    spans, issues = tags_to_spans(s, tags, scheme)
    assert check_spans(s, spans) == spans  # valid, sorted, non-overlapping
    if spans_to_tags(len(tags), spans, scheme) != tags:
        assert issues, f"{tags} was changed without a TagIssue"
    else:
        assert issues == []
