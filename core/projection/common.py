"""Pieces shared by the projection methods: the result type, link indexing, punctuation.

Every method reads a source sentence, its spans, a target sentence and word alignment links,
and returns target spans plus the source spans it could not project, each with a reason, so
that nothing disappears silently.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from core.data import Link, Sentence, Span, make_span
from core.errors import LabelBridgeError

__all__ = [
    "ProjectionError",
    "ProjectionResult",
    "Unprojected",
    "is_punct",
    "links_by_source",
    "check_links",
    "span_dict",
    "join_touching",
    "projected_label",
]


class ProjectionError(LabelBridgeError):
    """A projection method or option that cannot run on the given input."""


@dataclass(frozen=True, slots=True)
class Unprojected:
    """A source span that has no target counterpart, and why."""

    span: Span
    reason: str  # no_links | below_threshold | too_short | conflict | no_candidate


@dataclass(slots=True)
class ProjectionResult:
    spans: list[Span] = field(default_factory=list)  # target spans, sorted, never overlapping
    unprojected: list[Unprojected] = field(default_factory=list)


def is_punct(word: str) -> bool:
    """True for tokens made only of punctuation or symbols (",", "«", "--", "€")."""
    return all(unicodedata.category(ch)[0] in "PS" for ch in word)


def check_links(source: Sentence, target: Sentence, links: Iterable[Link], where: str = "item") -> list[Link]:
    """Links as a list, raising ValueError when one points outside the sentences."""
    out = list(links)
    n_src, n_tgt = len(source), len(target)
    for ln in out:
        if not (0 <= ln.src < n_src and 0 <= ln.tgt < n_tgt):
            raise ProjectionError(f"{where}: alignment link {ln.src}-{ln.tgt} outside the sentences ({n_src} source, {n_tgt} target tokens)")
    return out


def links_by_source(links: Sequence[Link], n_source: int) -> list[dict[int, float]]:
    """For each source token, its aligned target tokens with the best link score.

    Duplicate links (the same pair from two aligners) keep their highest score, so a pair is
    counted once in the Dice overlap.
    """
    out: list[dict[int, float]] = [dict() for _ in range(n_source)]
    for ln in links:
        row = out[ln.src]
        if ln.score > row.get(ln.tgt, -1.0):
            row[ln.tgt] = float(ln.score)
    return out


def span_dict(span: Span, sentence: Sentence, reason: str | None = None) -> dict[str, Any]:
    """A JSON-ready description of a span (for item.meta["unprojected"])."""
    out: dict[str, Any] = {
        "start": span.start,
        "end": span.end,
        "label": span.label,
        "char_start": span.char_start,
        "char_end": span.char_end,
        "text": span.text(sentence),
        "source": span.source,
        "confidence": span.confidence,
    }
    if reason is not None:
        out["reason"] = reason
    return out


def join_touching(sentence: Sentence, spans: Sequence[Span]) -> list[Span]:
    """Spans of one label that touch (no word between them) joined into one.

    For translate-test: the teacher reads a machine pivot, where a name often comes out in
    pieces ("Inter of Milan" tagged ``Inter of`` + ``Milan``; Apertium splits "Jean-Marc"
    into three tokens), and each piece projects back onto the original on its own, side by
    side. Two entities of one label with no word between them are rare in written text
    (27 of 3,894 in the CoNLL-2002 Spanish dev gold), so touching pieces are one entity. The
    joined span keeps the first piece's source and the lowest confidence of its pieces.
    """
    out: list[Span] = []
    for sp in sorted(spans, key=lambda s: (s.start, s.end)):
        last = out[-1] if out else None
        if last is not None and last.end == sp.start and last.label == sp.label:
            confs = [c for c in (last.confidence, sp.confidence) if c is not None]
            out[-1] = make_span(sentence, last.start, sp.end, sp.label, last.source, min(confs) if confs else None)
        else:
            out.append(sp)
    return out


def _lowercase_word(word: str) -> bool:
    """A word of a cased script written in lower case ("europäischen", "comunitaria");
    False for caseless scripts, numbers and punctuation."""
    return word != word.upper() and word == word.lower()


def projected_label(source: Sentence, entity: Span, target: Sentence, start: int, end: int, derived_label: str | None) -> str:
    """The label a projected span carries: the source entity's, except where a name came out
    of the translation as one lower-case word: ``derived_label`` then.

    Why: "Europe"/LOC becomes "europäischen", "Community"/ORG "comunitaria". Cased languages
    capitalise names, so a lower-case word is an adjective or a derivation, and CoNLL-style
    guidelines (Europarl-NER, CoNLL-2002/2003) label those MISC. In Europarl-NER most
    label errors of the projection were these (bench/RESULTS.md). Only a source entity with a
    capitalised word counts (a name), only one target word (several lower-case words are a
    noun phrase, "gobierno alemán", which keeps its label), and nothing changes in caseless
    scripts or with ``derived_label`` None."""
    if derived_label is None or entity.label == derived_label or end - start != 1:
        return entity.label
    if not _lowercase_word(target.words[start]):
        return entity.label
    if not any(w[:1].isupper() for w in source.words[entity.start : entity.end]):
        return entity.label
    return derived_label
