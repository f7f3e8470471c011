"""core.data: sentences, tokens, spans and items keep their offsets consistent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data import (
    Item,
    Link,
    Sentence,
    Span,
    SpanError,
    Token,
    check_spans,
    make_span,
    snap_char_span,
    tokenize_whitespace,
)


def test_from_words_joins_with_single_spaces_and_offsets_match():
    s = Sentence.from_words(["Angela", "Merkel", "."], lang="en")
    assert s.text == "Angela Merkel ."
    assert s.tokens == [Token("Angela", 0, 6), Token("Merkel", 7, 13), Token(".", 14, 15)]
    assert s.words == ["Angela", "Merkel", "."]
    assert len(s) == 3 and s.lang == "en"
    s.validate()


@pytest.mark.parametrize("bad", ["", " ", "\t"])
def test_from_words_rejects_empty_tokens(bad):
    with pytest.raises(SpanError, match="empty or whitespace-only token"):
        Sentence.from_words(["a", bad])


def test_from_text_tokenizes_on_whitespace_keeping_offsets():
    s = Sentence.from_text("  Hello,\tworld !\n")
    assert s.tokens == [Token("Hello,", 2, 8), Token("world", 9, 14), Token("!", 15, 16)]
    assert tokenize_whitespace("") == []
    s.validate()


@pytest.mark.parametrize(
    "tokens,message",
    [
        ([Token("a", 0, 2)], "does not match"),
        ([Token("ab", 0, 2), Token("b", 1, 2)], "overlaps the previous token"),
        ([Token("x", 5, 6)], "outside the text"),
        ([Token("", 1, 1)], "outside the text"),
    ],
)
def test_validate_reports_bad_tokens(tokens, message):
    with pytest.raises(SpanError, match=message):
        Sentence("ab c", tokens).validate("here")


def test_make_span_takes_character_offsets_from_tokens():
    s = Sentence.from_words(["The", "United", "Nations"])
    span = make_span(s, 1, 3, "ORG", source="teacher", confidence=0.5)
    assert (span.char_start, span.char_end) == (4, 18)
    assert span.text(s) == "United Nations"
    assert len(span) == 2 and span.key() == (1, 3, "ORG")
    assert span.source == "teacher" and span.confidence == 0.5


@pytest.mark.parametrize(
    "start,end,label,conf,message",
    [
        (0, 0, "X", None, "outside"),
        (2, 4, "X", None, "outside"),
        (-1, 1, "X", None, "outside"),
        (0, 1, "", None, "empty label"),
        (0, 1, "X", 1.5, "confidence"),
        (0, 1, "X", -0.1, "confidence"),
    ],
)
def test_make_span_rejects_bad_spans(start, end, label, conf, message):
    with pytest.raises(SpanError, match=message):
        make_span(Sentence.from_words(["a", "b", "c"]), start, end, label, confidence=conf)


def test_snap_char_span_snaps_outward_to_whole_tokens():
    s = Sentence.from_text("Visit New York now")
    assert snap_char_span(s, 6, 14) == (1, 3)  # exact
    assert snap_char_span(s, 7, 12) == (1, 3)  # cuts both tokens: takes them whole
    assert snap_char_span(s, 5, 9) == (1, 2)  # leading space ignored
    with pytest.raises(SpanError, match="cover no token"):
        snap_char_span(s, 5, 6)  # only the space
    with pytest.raises(SpanError, match="outside the text"):
        snap_char_span(s, 10, 99)
    with pytest.raises(SpanError, match="outside the text"):
        snap_char_span(s, 3, 3)


def test_check_spans_sorts_and_reports_overlaps_and_bad_offsets():
    s = Sentence.from_words(["a", "b", "c", "d"])
    x, y = make_span(s, 2, 4, "B"), make_span(s, 0, 1, "A")
    assert check_spans(s, [x, y]) == [y, x]
    with pytest.raises(SpanError, match="overlap"):
        check_spans(s, [make_span(s, 0, 2, "A"), make_span(s, 1, 3, "B")], "item 7")
    with pytest.raises(SpanError, match="outside the sentence"):
        check_spans(s, [Span(3, 5, "A", 6, 9)])
    with pytest.raises(SpanError, match="do not match its tokens"):
        check_spans(s, [Span(0, 1, "A", 0, 3)])


def _item() -> Item:
    src = Sentence.from_words(["Merkel", "visited", "Paris"], "en")
    tgt = Sentence.from_words(["Merkel", "besuchte", "Paris"], "de")
    return Item(
        "x1",
        src,
        [make_span(src, 0, 1, "PER")],
        tgt,
        [make_span(tgt, 2, 3, "LOC", "projection:simalign", 0.9)],
        alignment=[Link(0, 0), Link(2, 2, 0.5)],
    )


def test_item_validate_accepts_consistent_items_and_with_copies():
    item = _item()
    item.validate()
    other = item.with_(id="x2")
    assert other.id == "x2" and item.id == "x1" and other.source is item.source


@pytest.mark.parametrize(
    "change,message",
    [
        ({"alignment": [Link(0, 5)]}, "alignment link 0-5 outside"),
        ({"target": None}, "target spans without a target sentence"),
        ({"target": None, "target_spans": []}, "alignment links without a target sentence"),
        ({"source_spans": [Span(0, 9, "PER", 0, 6)]}, "outside the sentence"),
    ],
)
def test_item_validate_names_the_item_and_problem(change, message):
    with pytest.raises(SpanError, match=message) as err:
        _item().with_(**change).validate()
    assert "item x1" in str(err.value)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab.é", min_size=1, max_size=4), min_size=1, max_size=8), st.data())
def test_snapping_a_spans_own_offsets_returns_the_span(words, data):
    s = Sentence.from_words(words)
    start = data.draw(st.integers(0, len(words) - 1))
    end = data.draw(st.integers(start + 1, len(words)))
    span = make_span(s, start, end, "X")
    assert snap_char_span(s, span.char_start, span.char_end) == (start, end)
    assert Sentence.from_text(s.text).tokens == s.tokens
