"""The one converter between spans and tag sequences (IOB1, IOB2, BIOES).

Repair policy for invalid sequences (the conlleval convention, applied the same way in
every scheme, and always reported as a TagIssue, never silently):

* an ``I-X`` (or ``E-X`` in BIOES) that does not continue an open span of label X starts
  a new span of X (this covers "I- without B-" and "label change inside a span");
* in BIOES, a span opened with ``B-X`` that is not closed by ``E-X`` ends at its last
  ``I-X`` and is reported; ``S-X`` inside an open span closes it first.

A tag that is not ``O`` and not ``<prefix>-<label>`` with a prefix of the scheme raises
TagError: that is an unknown tag scheme, not something to repair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from core.data import Sentence, Span, make_span
from core.errors import LabelBridgeError

SCHEMES = ("IOB1", "IOB2", "BIOES")
_PREFIXES = {"IOB1": "BI", "IOB2": "BI", "BIOES": "BIES"}


class TagError(LabelBridgeError):
    """A tag that no scheme can read (e.g. ``PER`` with no prefix, ``X-LOC``)."""

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


@dataclass(frozen=True, slots=True)
class TagIssue:
    position: int  # token index of the tag that needed repair
    tag: str
    message: str


def _split(tag: str, position: int, scheme: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    if not sep or not label or len(prefix) != 1 or prefix not in _PREFIXES[scheme]:
        raise TagError(f"unknown tag {tag!r} at token {position + 1} for scheme {scheme}", position)
    return prefix, label


class SchemeDetector:
    """``detect_scheme`` fed in parts (a file's sentences as they are read, in bounded memory).

    Feed each sentence's tags followed by ``"O"`` (or the whole flattened file at once)."""

    __slots__ = ("bioes", "prev", "starts_with_i", "b_after_same", "b_seen")

    def __init__(self) -> None:
        self.bioes = False
        self.prev = "O"
        self.starts_with_i = False
        self.b_after_same = True
        self.b_seen = False

    def feed(self, tags: Iterable[str]) -> None:
        prev = self.prev
        for t in tags:
            if t != "O" and t.partition("-")[0] in ("S", "E"):
                self.bioes = True
            if t.startswith("I-") and (prev == "O" or prev[2:] != t[2:]):
                self.starts_with_i = True
            if t.startswith("B-"):
                self.b_seen = True
                if prev == "O" or prev[2:] != t[2:]:
                    self.b_after_same = False
            prev = t
        self.prev = prev

    def scheme(self) -> str:
        if self.bioes:
            return "BIOES"
        if self.starts_with_i and (not self.b_seen or self.b_after_same):
            return "IOB1"
        return "IOB2"


def detect_scheme(tags: Sequence[str]) -> str:
    """Guess the scheme of a tag sequence (or of all tags of a file, flattened).

    BIOES when S- or E- occur; IOB1 when some span starts with I- and B- only ever appears
    right after a span of the same label; IOB2 otherwise (the default, also for all-O).
    """
    detector = SchemeDetector()
    detector.feed(tags)
    return detector.scheme()


def tags_to_spans(
    sentence: Sentence,
    tags: Sequence[str],
    scheme: str = "IOB2",
    source: str = "gold",
) -> tuple[list[Span], list[TagIssue]]:
    """Read spans from one tag per token. Returns (spans, issues); see the module docstring."""
    if scheme not in SCHEMES:
        raise TagError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if len(tags) != len(sentence.tokens):
        raise TagError(f"{len(tags)} tags for {len(sentence.tokens)} tokens")
    spans: list[Span] = []
    issues: list[TagIssue] = []
    open_start: int | None = None
    open_label = ""

    def close(end: int) -> None:
        nonlocal open_start, open_label
        if open_start is not None:
            spans.append(make_span(sentence, open_start, end, open_label, source))
        open_start, open_label = None, ""

    for i, tag in enumerate(tags):
        prefix, label = _split(tag, i, scheme)
        if prefix == "O":
            if scheme == "BIOES" and open_start is not None:
                issues.append(TagIssue(i - 1, tags[i - 1], f"span of {open_label} not closed by E- before token {i + 1}"))
            close(i)
        elif prefix == "B":
            if scheme == "BIOES" and open_start is not None:
                issues.append(TagIssue(i - 1, tags[i - 1], f"span of {open_label} not closed by E- before token {i + 1}"))
            close(i)
            open_start, open_label = i, label
        elif prefix == "S":
            if open_start is not None:
                issues.append(TagIssue(i - 1, tags[i - 1], f"span of {open_label} not closed by E- before token {i + 1}"))
            close(i)
            spans.append(make_span(sentence, i, i + 1, label, source))
        else:  # I or E
            continues = open_start is not None and open_label == label
            if not continues:
                if open_start is not None and scheme == "IOB1":
                    pass  # IOB1 starts a span of another label with I-: valid, nothing to report
                elif open_start is not None:
                    issues.append(TagIssue(i, tag, f"label changes from {open_label} to {label} inside a span at token {i + 1}; started a new span"))
                    if scheme == "BIOES":
                        issues.append(TagIssue(i - 1, tags[i - 1], f"span of {open_label} not closed by E- before token {i + 1}"))
                elif scheme != "IOB1":
                    issues.append(TagIssue(i, tag, f"{tag} at token {i + 1} without a preceding B-{label}; started a new span"))
                close(i)
                open_start, open_label = i, label
            if prefix == "E":
                close(i + 1)
    if open_start is not None and scheme == "BIOES":
        issues.append(TagIssue(len(tags) - 1, tags[-1], f"span of {open_label} not closed by E- at the end of the sentence"))
    close(len(tags))
    return spans, issues


def spans_to_tags(n_tokens: int, spans: Sequence[Span], scheme: str = "IOB2") -> list[str]:
    """Write one tag per token. Spans must not overlap (check_spans first when unsure)."""
    if scheme not in SCHEMES:
        raise TagError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    tags = ["O"] * n_tokens
    prev: Span | None = None
    for s in sorted(spans, key=lambda s: s.start):
        if prev is not None and s.start < prev.end:
            raise TagError(f"spans [{prev.start}, {prev.end}) and [{s.start}, {s.end}) overlap")
        if not (0 <= s.start < s.end <= n_tokens):
            raise TagError(f"span [{s.start}, {s.end}) outside {n_tokens} tokens")
        for i in range(s.start, s.end):
            tags[i] = f"I-{s.label}"
        if scheme == "IOB2":
            tags[s.start] = f"B-{s.label}"
        elif scheme == "IOB1":
            if prev is not None and prev.end == s.start and prev.label == s.label:
                tags[s.start] = f"B-{s.label}"
        else:
            if len(s) == 1:
                tags[s.start] = f"S-{s.label}"
            else:
                tags[s.start] = f"B-{s.label}"
                tags[s.end - 1] = f"E-{s.label}"
        prev = s
    return tags


def convert_tags(tags: Sequence[str], src_scheme: str, dst_scheme: str) -> tuple[list[str], list[TagIssue]]:
    """Re-encode a tag sequence in another scheme (through spans, so repairs are reported)."""
    sentence = Sentence.from_words(["x"] * len(tags))
    spans, issues = tags_to_spans(sentence, tags, src_scheme)
    return spans_to_tags(len(tags), spans, dst_scheme), issues
