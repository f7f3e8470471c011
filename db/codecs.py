"""How core records are stored: spans, versions, tokens and links as JSON, timestamps in
UTC, and the chunking of long ``IN (...)`` lists. Shared by every db module."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

from core.annotations.records import Version
from core.data import Link, Sentence, Span, Token

__all__ = [
    "CHUNK",
    "utc",
    "chunks",
    "columns",
    "span_json",
    "span_from_json",
    "spans_json",
    "spans_from_json",
    "version_json",
    "version_from_json",
    "tokens_json",
    "sentence_from_json",
    "links_json",
    "links_from_json",
    "batched",
]

CHUNK = 500  # ids per IN (...) query: well below every database's parameter limit


def utc(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every timestamp is written in UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def chunks(seq: Sequence[Any], n: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    """Lists of ``n`` items from any iterable (the last shorter): itertools.batched of 3.12."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def columns(model: type) -> list[Any]:
    """All mapped columns of a model, for selecting plain rows with attribute access."""
    return [getattr(model, c.key) for c in model.__table__.columns]  # type: ignore[attr-defined]


def span_json(span: Span, with_source: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "start": span.start,
        "end": span.end,
        "label": span.label,
        "char_start": span.char_start,
        "char_end": span.char_end,
        "confidence": span.confidence,
    }
    if with_source:
        d["source"] = span.source
    return d


def span_from_json(d: Mapping[str, Any], default_source: str) -> Span:
    return Span(
        int(d["start"]),
        int(d["end"]),
        str(d["label"]),
        int(d["char_start"]),
        int(d["char_end"]),
        str(d.get("source") or default_source),
        None if d.get("confidence") is None else float(d["confidence"]),
    )


def spans_json(spans: Iterable[Span], with_source: bool) -> list[dict[str, Any]]:
    return [span_json(s, with_source) for s in spans]


def spans_from_json(data: Iterable[Mapping[str, Any]] | None, default_source: str) -> list[Span]:
    return [span_from_json(d, default_source) for d in (data or [])]


def version_json(version: Version) -> list[dict[str, Any]]:
    """A person's version as stored in the edit log: spans with their source, and
    ``"pending": true`` on suggestions not accepted yet."""
    out = []
    for sp in version.spans:
        d = span_json(sp, True)
        if sp.key() in version.pending:
            d["pending"] = True
        out.append(d)
    return out


def version_from_json(data: Iterable[Mapping[str, Any]] | None, default_source: str) -> Version:
    rows = list(data or [])
    pending = frozenset((int(d["start"]), int(d["end"]), str(d["label"])) for d in rows if d.get("pending"))
    return Version(tuple(span_from_json(d, default_source) for d in rows), pending)


def tokens_json(sentence: Sentence) -> list[list[Any]]:
    return [[t.text, t.start, t.end] for t in sentence.tokens]


def sentence_from_json(text: str, tokens: Iterable[Sequence[Any]], lang: str | None) -> Sentence:
    return Sentence(text, [Token(str(t[0]), int(t[1]), int(t[2])) for t in tokens], lang)


def links_json(links: Iterable[Link]) -> list[list[Any]]:
    return [[ln.src, ln.tgt, ln.score] for ln in links]


def links_from_json(data: Iterable[Sequence[Any]]) -> list[Link]:
    return [Link(int(a), int(b), float(c)) for a, b, c in data]
