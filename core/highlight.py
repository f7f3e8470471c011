"""Sentences with their spans as HTML: one colour per label, every piece of text escaped.

Kept out of the pages so the markup is tested like any other function and every page (and
a later export to HTML) colours labels the same way. All text goes through ``html.escape``;
the only markup is ours.
"""

from __future__ import annotations

import html
import re
import zlib
from typing import Iterable, Sequence

from core.data import Sentence, Span, SpanError

__all__ = ["label_colours", "spans_html", "escape_markdown"]

# Fixed colours for the CoNLL labels (light enough for black text), then a palette for others.
_KNOWN = {"PER": "#ffd8a8", "ORG": "#a5d8ff", "LOC": "#b2f2bb", "MISC": "#eebefa"}
_PALETTE = ("#ffec99", "#fcc2d7", "#99e9f2", "#d0bfff", "#c0eb75", "#ffc9c9", "#96f2d7", "#e9ecef")


def label_colours(labels: Iterable[str]) -> dict[str, str]:
    """A background colour for each label; the same label gets the same colour in every project."""
    out: dict[str, str] = {}
    for label in labels:
        if label in out:
            continue
        out[label] = _KNOWN.get(label.upper()) or _PALETTE[zlib.crc32(label.encode("utf-8")) % len(_PALETTE)]
    return out


def _mark(text: str, label: str, colour: str, title: str) -> str:
    return (
        f'<mark style="background:{colour};padding:0.1em 0.3em;border-radius:0.3em;line-height:2" '
        f'title="{html.escape(title)}">{html.escape(text)}'
        f'<sup style="font-size:0.65em;font-weight:600;margin-left:0.3em;opacity:0.75">{html.escape(label)}</sup></mark>'
    )


def spans_html(sentence: Sentence, spans: Sequence[Span], colours: dict[str, str] | None = None) -> str:
    """The sentence text with each span marked and labelled; spans must not overlap."""
    colours = {**label_colours(s.label for s in spans), **(colours or {})}
    parts: list[str] = []
    pos = 0
    for span in sorted(spans, key=lambda s: s.char_start):
        if span.char_start < pos:
            raise SpanError(f"span {span.start}-{span.end} {span.label} overlaps the previous span")
        parts.append(html.escape(sentence.text[pos : span.char_start]))
        title = f"{span.label} · tokens {span.start}–{span.end - 1} · {span.source}"
        if span.confidence is not None:
            title += f" · confidence {span.confidence:.2f}"
        parts.append(_mark(sentence.text[span.char_start : span.char_end], span.label, colours[span.label], title))
        pos = span.char_end
    parts.append(html.escape(sentence.text[pos:]))
    return f'<div style="font-size:1.15em">{"".join(parts)}</div>'


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """Text shown literally inside Markdown (data such as entity text or item ids)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
