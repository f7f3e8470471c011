"""The one data model of LabelBridge: plain typed dataclasses, no I/O, no Streamlit.

A sentence is its text plus tokens with character offsets into that text. A span is a
token range ``[start, end)`` with a label, the matching character offsets, where it came
from (``gold``, ``teacher``, ``projection:<method>``, ``student:<version>``,
``human:<user>``) and an optional confidence. An item pairs a source sentence with its
target (translated) sentence, an optional image, metadata and word alignment links.

Every pipeline stage takes a batch (``list[Item]``) and returns a batch, so the same code
runs in a loop, in ``datasets.map`` or on Ray.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from core.errors import LabelBridgeError

__all__ = [
    "Token",
    "Sentence",
    "Span",
    "Link",
    "Item",
    "SpanError",
    "tokenize_whitespace",
    "check_spans",
    "make_span",
    "snap_char_span",
]


class SpanError(LabelBridgeError):
    """A span that does not fit its sentence (out of bounds, empty, overlapping)."""


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int  # character offset of the first character in Sentence.text
    end: int  # character offset one past the last character


@dataclass(slots=True)
class Sentence:
    text: str
    tokens: list[Token]
    lang: str | None = None

    @classmethod
    def from_words(cls, words: Sequence[str], lang: str | None = None) -> "Sentence":
        """Build a sentence from pre-tokenized words, joined by single spaces."""
        tokens: list[Token] = []
        pos = 0
        for w in words:
            if w == "" or any(ch.isspace() for ch in w) and w.strip() == "":
                raise SpanError(f"empty or whitespace-only token {w!r} at position {len(tokens)}")
            tokens.append(Token(w, pos, pos + len(w)))
            pos += len(w) + 1
        return cls(" ".join(words), tokens, lang)

    @classmethod
    def from_text(cls, text: str, lang: str | None = None) -> "Sentence":
        """Whitespace tokenization with offsets (language-aware tokenizers live in core.tokenize)."""
        return cls(text, tokenize_whitespace(text), lang)

    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]

    def __len__(self) -> int:
        return len(self.tokens)

    def validate(self, where: str = "sentence") -> None:
        """Raise SpanError when token offsets do not match the text."""
        prev_end = 0
        for i, t in enumerate(self.tokens):
            if not (0 <= t.start < t.end <= len(self.text)):
                raise SpanError(f"{where}: token {i} offsets [{t.start}, {t.end}) outside the text (length {len(self.text)})")
            if t.start < prev_end:
                raise SpanError(f"{where}: token {i} overlaps the previous token")
            if self.text[t.start:t.end] != t.text:
                raise SpanError(
                    f"{where}: token {i} {t.text!r} does not match text[{t.start}:{t.end}] = {self.text[t.start:t.end]!r}"
                )
            prev_end = t.end


_WS = re.compile(r"\S+")


def tokenize_whitespace(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end()) for m in _WS.finditer(text)]


@dataclass(frozen=True, slots=True)
class Span:
    start: int  # first token
    end: int  # one past the last token
    label: str
    char_start: int
    char_end: int
    source: str = "gold"
    confidence: float | None = None

    def __len__(self) -> int:
        return self.end - self.start

    def overlaps(self, other: "Span") -> bool:
        return self.start < other.end and other.start < self.end

    def text(self, sentence: Sentence) -> str:
        return sentence.text[self.char_start:self.char_end]

    def key(self) -> tuple[int, int, str]:
        """Identity for comparison and metrics: token range and label only."""
        return (self.start, self.end, self.label)


def make_span(
    sentence: Sentence,
    start: int,
    end: int,
    label: str,
    source: str = "gold",
    confidence: float | None = None,
) -> Span:
    """A span over tokens [start, end) with character offsets taken from the sentence."""
    if not (0 <= start < end <= len(sentence.tokens)):
        raise SpanError(f"span [{start}, {end}) is outside the sentence of {len(sentence.tokens)} tokens")
    if not label:
        raise SpanError(f"span [{start}, {end}) has an empty label")
    if confidence is not None and not (0.0 <= confidence <= 1.0):
        raise SpanError(f"span [{start}, {end}) has confidence {confidence} outside [0, 1]")
    return Span(
        start,
        end,
        label,
        sentence.tokens[start].start,
        sentence.tokens[end - 1].end,
        source,
        confidence,
    )


def snap_char_span(sentence: Sentence, char_start: int, char_end: int) -> tuple[int, int]:
    """Token range covering the characters [char_start, char_end).

    Spans always snap outward to whole tokens: a selection that cuts a token in half takes
    the whole token. Raises SpanError when the offsets are outside the text or cover no token.
    """
    if not (0 <= char_start < char_end <= len(sentence.text)):
        raise SpanError(f"character offsets [{char_start}, {char_end}) outside the text (length {len(sentence.text)})")
    covered = [i for i, t in enumerate(sentence.tokens) if t.start < char_end and char_start < t.end]
    if not covered:
        raise SpanError(f"character offsets [{char_start}, {char_end}) cover no token")
    return covered[0], covered[-1] + 1


def check_spans(sentence: Sentence, spans: Iterable[Span], where: str = "item") -> list[Span]:
    """Validate spans against a sentence; return them sorted. Raise SpanError naming the problem."""
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    n = len(sentence.tokens)
    for s in ordered:
        if not (0 <= s.start < s.end <= n):
            raise SpanError(f"{where}: span [{s.start}, {s.end}) {s.label} outside the sentence of {n} tokens")
        if (s.char_start, s.char_end) != (sentence.tokens[s.start].start, sentence.tokens[s.end - 1].end):
            raise SpanError(
                f"{where}: span [{s.start}, {s.end}) {s.label} has character offsets "
                f"[{s.char_start}, {s.char_end}) that do not match its tokens"
            )
    for a, b in zip(ordered, ordered[1:]):
        if a.overlaps(b):
            raise SpanError(
                f"{where}: spans [{a.start}, {a.end}) {a.label} and [{b.start}, {b.end}) {b.label} overlap"
            )
    return ordered


@dataclass(frozen=True, slots=True)
class Link:
    """A word alignment link between source token ``src`` and target token ``tgt``."""

    src: int
    tgt: int
    score: float = 1.0


@dataclass(slots=True)
class Item:
    id: str
    source: Sentence
    source_spans: list[Span] = field(default_factory=list)
    target: Sentence | None = None
    target_spans: list[Span] = field(default_factory=list)
    image: str | None = None  # a path, URL or content hash; resolved by the caller
    meta: dict[str, Any] = field(default_factory=dict)
    alignment: list[Link] = field(default_factory=list)
    # side ("source"/"target") -> who decided its labels (gold, human:<user>, adjudicated);
    # a side not named is undecided (machine suggestion or unlabelled). Lets a writer tell a
    # reviewed item without entities from one nobody looked at.
    labelled_by: dict[str, str] = field(default_factory=dict)

    def with_(self, **changes: Any) -> "Item":
        """A copy with some fields replaced (stages return new items, never mutate)."""
        return replace(self, **changes)

    def validate(self) -> None:
        where = f"item {self.id}"
        self.source.validate(f"{where} source")
        check_spans(self.source, self.source_spans, f"{where} source")
        if self.target is not None:
            self.target.validate(f"{where} target")
            check_spans(self.target, self.target_spans, f"{where} target")
            for ln in self.alignment:
                if not (0 <= ln.src < len(self.source) and 0 <= ln.tgt < len(self.target)):
                    raise SpanError(f"{where}: alignment link {ln.src}-{ln.tgt} outside the sentences")
        elif self.target_spans:
            raise SpanError(f"{where}: target spans without a target sentence")
        elif self.alignment:
            raise SpanError(f"{where}: alignment links without a target sentence")
