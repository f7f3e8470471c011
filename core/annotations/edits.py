"""Span edits as pure functions: spans coming from the editor, "apply to all occurrences",
the links between a source entity and its projected span, three-way merges after a
conflict and readable change descriptions."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from core.data import Link, Sentence, Span, SpanError, check_spans, make_span

__all__ = [
    "spans_from_payload",
    "find_occurrences",
    "OccurrenceEdit",
    "apply_to_occurrence",
    "span_origins",
    "unprojected_spans",
    "merge_three_way",
    "describe_change",
]


# --------------------------------------------------------------------------- editor input


def spans_from_payload(
    sentence: Sentence,
    payload: Iterable[Mapping[str, Any]],
    labels: Sequence[str] | None,
    default_source: str,
    where: str = "spans",
) -> list[Span]:
    """Spans sent by the editor ({start, end, label, source?, confidence?}) as checked Spans.

    Token indices are the only positions taken from the browser (character offsets are
    recomputed), so a span always snaps to whole tokens. Raises SpanError for a span outside
    the sentence, an unknown label or two overlapping spans (naming both).
    """
    out: list[Span] = []
    for i, d in enumerate(payload):
        try:
            start, end, label = int(d["start"]), int(d["end"]), str(d["label"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SpanError(f"{where}: span {i} is malformed: {d!r}") from exc
        if labels and label not in labels:
            raise SpanError(f"{where}: label {label!r} is not one of the project's labels ({', '.join(labels)})")
        source = str(d.get("source") or default_source)
        confidence = d.get("confidence")
        if source.startswith("human:"):
            confidence = None  # a person's span has no machine confidence
        elif confidence is not None:
            confidence = min(1.0, max(0.0, float(confidence)))
        out.append(make_span(sentence, start, end, label, source, confidence))
    return check_spans(sentence, out, where)


# --------------------------------------------------------------------------- occurrences


def find_occurrences(sentence: Sentence, words: Sequence[str], *, ignore_case: bool = False) -> list[int]:
    """Start token indices where ``words`` appears as a run of whole tokens."""
    n = len(words)
    if n == 0:
        return []
    norm = (lambda w: w.casefold()) if ignore_case else (lambda w: w)  # noqa: E731
    target = [norm(w) for w in words]
    toks = [norm(t.text) for t in sentence.tokens]
    return [i for i in range(len(toks) - n + 1) if toks[i : i + n] == target]


@dataclass(frozen=True, slots=True)
class OccurrenceEdit:
    """What "apply to all occurrences" would do to one sentence."""

    spans: list[Span]  # the new spans of that side
    changed: int  # occurrences changed
    refused: int  # occurrences left alone because another span overlaps them partly


def apply_to_occurrence(
    sentence: Sentence,
    spans: Sequence[Span],
    words: Sequence[str],
    label: str | None,
    source: str,
) -> OccurrenceEdit:
    """Give every whole-token occurrence of ``words`` the label ``label`` (None: remove it).

    A span covering exactly the occurrence is relabelled (or removed); an occurrence that a
    different span overlaps only partly is refused (counted), never cut, so no one's span
    is silently damaged.
    """
    current = sorted(spans, key=lambda s: s.start)
    changed = refused = 0
    for start in find_occurrences(sentence, words):
        end = start + len(words)
        exact = [s for s in current if (s.start, s.end) == (start, end)]
        partial = [s for s in current if s.start < end and start < s.end and (s.start, s.end) != (start, end)]
        if partial:
            refused += 1
            continue
        if label is None:
            if exact:
                current = [s for s in current if s not in exact]
                changed += 1
            continue
        if exact and exact[0].label == label:
            continue
        current = [s for s in current if s not in exact]
        current.append(make_span(sentence, start, end, label, source))
        changed += 1
    return OccurrenceEdit(check_spans(sentence, current), changed, refused)


# --------------------------------------------------------------------------- projection links


def span_origins(
    source_spans: Sequence[Span], target_spans: Sequence[Span], links: Sequence[Link]
) -> list[int | None]:
    """For each target span, the index of the source span it was projected from.

    The source span with the most word links into the target span wins, preferring the same
    label; without links, same-label spans are paired in reading order.
    """
    out: list[int | None] = []
    by_tgt: dict[int, list[int]] = defaultdict(list)
    for ln in links:
        by_tgt[ln.tgt].append(ln.src)
    src_of_token = {}
    for i, s in enumerate(source_spans):
        for t in range(s.start, s.end):
            src_of_token[t] = i
    used_order: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(source_spans):
        used_order[s.label].append(i)
    for tspan in target_spans:
        votes: Counter[int] = Counter()
        for t in range(tspan.start, tspan.end):
            for src_tok in by_tgt.get(t, ()):
                if src_tok in src_of_token:
                    votes[src_of_token[src_tok]] += 1
        if votes:
            best = max(votes, key=lambda i: (source_spans[i].label == tspan.label, votes[i], -i))
            out.append(best)
        elif not links and used_order.get(tspan.label):
            out.append(used_order[tspan.label].pop(0))
        else:
            out.append(None)
    return out


def unprojected_spans(source_spans: Sequence[Span], origins: Sequence[int | None]) -> list[Span]:
    """Source entities that no target span came from."""
    used = {o for o in origins if o is not None}
    return [s for i, s in enumerate(source_spans) if i not in used]


def merge_three_way(
    base: Sequence[Span], mine: Sequence[Span], theirs: Sequence[Span]
) -> tuple[list[Span], list[Span]]:
    """Put my change (``base`` -> ``mine``) on top of what is stored now (``theirs``).

    Spans I removed are removed from theirs, spans I added are added unless they overlap a
    span of theirs (those are returned as the second list, refused, so nothing is merged
    into an invalid state and nothing of theirs is overwritten).
    """
    base_keys = {s.key() for s in base}
    mine_keys = {s.key() for s in mine}
    removed = base_keys - mine_keys
    result = [s for s in theirs if s.key() not in removed]
    refused: list[Span] = []
    have = {s.key() for s in result}
    for s in sorted(mine, key=lambda x: x.start):
        if s.key() in base_keys or s.key() in have:
            continue
        if any(s.overlaps(r) for r in result):
            refused.append(s)
            continue
        result.append(s)
        have.add(s.key())
    return sorted(result, key=lambda x: x.start), refused


# --------------------------------------------------------------------------- descriptions


def _span_text(sentence: Sentence | None, s: Span) -> str:
    return f"{s.label} '{s.text(sentence)}'" if sentence is not None else f"{s.label} [{s.start}, {s.end})"


def describe_change(before: Sequence[Span] | None, after: Sequence[Span] | None, sentence: Sentence | None = None) -> str:
    """A short readable diff of two span lists ("added PER 'Anna'; removed LOC 'Bonn'")."""
    b = {s.key(): s for s in (before or [])}
    a = {s.key(): s for s in (after or [])}
    parts: list[str] = []
    by_range_b = {(s.start, s.end): s for s in b.values()}
    relabelled = set()
    for key, s in a.items():
        if key in b:
            continue
        old = by_range_b.get((s.start, s.end))
        if old is not None and old.key() not in a:
            parts.append(f"relabelled {_span_text(sentence, old)} as {s.label}")
            relabelled.add(old.key())
        else:
            parts.append(f"added {_span_text(sentence, s)}")
    for key, s in b.items():
        if key not in a and key not in relabelled:
            parts.append(f"removed {_span_text(sentence, s)}")
    return "; ".join(parts) if parts else "no change to the spans"


