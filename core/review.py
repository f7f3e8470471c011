"""Review workbench logic as pure functions: queue settings, per-item queue numbers, span
edits coming from the editor, "apply to all occurrences", links between a source entity
and its projected span, adjudication merges and readable change descriptions.

No Streamlit and no database here: db.review stores what these functions compute and
the pages only show it, so every rule is unit-tested on plain spans.
"""

from __future__ import annotations

import base64
import io
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from core.data import Link, Sentence, Span, SpanError, check_spans, make_span

__all__ = [
    "ORDERINGS",
    "STATUSES",
    "QueueFilter",
    "ItemStatsValues",
    "compute_item_stats",
    "shuffle_key",
    "spans_from_payload",
    "find_occurrences",
    "apply_to_occurrence",
    "OccurrenceEdit",
    "span_origins",
    "unprojected_spans",
    "MergeCandidate",
    "MergeProposal",
    "merge_versions",
    "merge_three_way",
    "student_uncertainty",
    "describe_change",
    "thumbnail_data_uri",
]

STATUSES = ("new", "reviewed", "skipped", "flagged")

# Queue orderings: name -> what the person sees in the select box.
ORDERINGS: dict[str, str] = {
    "confidence": "Lowest confidence first",
    "disagreement": "Most disagreement first",
    "uncertainty": "Student uncertainty (highest first)",
    "random": "Random (seeded)",
    "original": "Original order",
}


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the queue shows and in which order. Statuses are the person's own statuses."""

    statuses: tuple[str, ...] = ("new",)
    labels: tuple[str, ...] = ()  # items with an entity of any of these labels
    min_confidence: float | None = None
    max_confidence: float | None = None
    min_disagreement: float | None = None  # 0..1
    annotator: str | None = None  # items this person has worked on
    text: str | None = None  # substring of the id, source or translation
    order: str = "confidence"
    seed: int = 0  # for order="random"

    def __post_init__(self) -> None:
        if self.order not in ORDERINGS:
            raise ValueError(f"unknown queue order {self.order!r}; expected one of {', '.join(ORDERINGS)}")
        for st in self.statuses:
            if st not in STATUSES:
                raise ValueError(f"unknown status {st!r}; expected one of {', '.join(STATUSES)}")
        for name in ("min_confidence", "max_confidence", "min_disagreement"):
            value = getattr(self, name)
            if value is not None and not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} {value} outside [0, 1]")
        if self.min_confidence is not None and self.max_confidence is not None and self.min_confidence > self.max_confidence:
            raise ValueError(f"confidence range [{self.min_confidence}, {self.max_confidence}] is empty")


# --------------------------------------------------------------------------- queue numbers


@dataclass(frozen=True, slots=True)
class ItemStatsValues:
    min_confidence: float | None  # lowest confidence among the suggested target spans (0 for an unprojected entity)
    disagreement: float | None  # 1 - mean pairwise span F1 between span sets, or the student's soft disagreement if larger
    uncertainty: float | None  # the student's uncertainty about this item
    n_spans: int
    labels: tuple[str, ...]

    @property
    def label_text(self) -> str:
        """"|LOC|PER|": one SQL ``LIKE '%|LOC|%'`` finds items with a label."""
        return "|" + "".join(f"{lab}|" for lab in self.labels)

    @property
    def confidence_key(self) -> float:
        return 2.0 if self.min_confidence is None else self.min_confidence

    @property
    def disagreement_key(self) -> float:
        return 0.0 if self.disagreement is None else -self.disagreement

    @property
    def uncertainty_key(self) -> float:
        return 1.0 if self.uncertainty is None else -self.uncertainty


def _pair_f1(a: Sequence[Span], b: Sequence[Span]) -> float:
    ka, kb = {s.key() for s in a}, {s.key() for s in b}
    if not ka and not kb:
        return 1.0
    return 2 * len(ka & kb) / (len(ka) + len(kb))


def compute_item_stats(
    suggested_target: Sequence[Span] | None,
    unprojected: Sequence[Span],
    target_sets: Mapping[str, Sequence[Span]],
    student_uncertainty: float | None,
    all_spans: Iterable[Span],
    student_disagreement: float | None = None,
) -> ItemStatsValues:
    """Queue numbers of one item.

    * ``suggested_target``: the target spans a reviewer is shown first (their confidences);
      each entity that could not be projected (``unprojected``) counts as confidence 0, so
      "lowest confidence first" brings those items up early.
    * ``target_sets``: every span set of the target side worth comparing (methods, the
      student, each annotator's version): disagreement = 1 - mean pairwise exact F1.
    * ``all_spans``: every span of the item (both sides, all sets) for the label filter.
    * ``student_disagreement``: the active student's soft disagreement with the projection
      (``core.student.disagreement``, stored with its span set). When given, the student's
      set is left out of the pairwise F1 (a hard 0/1 comparison) and the item's
      disagreement is the larger of the two, so the queue surfaces items where people or
      methods disagree as well as items where the student doubts the projection.
    """
    confidences = [s.confidence for s in (suggested_target or []) if s.confidence is not None]
    if unprojected:
        confidences.append(0.0)
    if student_disagreement is not None:
        sets = [spans for name, spans in target_sets.items() if not name.startswith("student")]
    else:
        sets = list(target_sets.values())
    disagreement = None
    if len(sets) >= 2:
        pairs = list(combinations(sets, 2))
        disagreement = 1.0 - sum(_pair_f1(a, b) for a, b in pairs) / len(pairs)
    if student_disagreement is not None:
        disagreement = max(float(student_disagreement), disagreement or 0.0)
    labels = tuple(sorted({s.label for s in all_spans}))
    return ItemStatsValues(
        min(confidences) if confidences else None,
        disagreement,
        student_uncertainty,
        len(suggested_target or []),
        labels,
    )


def student_uncertainty(spans: Sequence[Span], settings: Mapping[str, Any] | None) -> float | None:
    """The uncertainty a student stored with its span set (``settings["uncertainty"]``), else
    1 - its lowest span confidence, else None."""
    if settings and isinstance(settings.get("uncertainty"), (int, float)):
        return float(settings["uncertainty"])
    conf = [s.confidence for s in spans if s.confidence is not None]
    return 1.0 - min(conf) if conf else None


def shuffle_key(seed: int, item_id: int) -> int:
    """A seeded pseudo-random position for the "random" order (stable for a seed)."""
    return zlib.crc32(f"{seed}:{item_id}".encode()) & 0x7FFFFFFF


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
        confidence = d.get("confidence")
        if confidence is not None:
            confidence = min(1.0, max(0.0, float(confidence)))
        source = str(d.get("source") or default_source)
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


# --------------------------------------------------------------------------- adjudication


@dataclass(frozen=True, slots=True)
class MergeCandidate:
    span: Span
    supporters: tuple[str, ...]  # annotators who have exactly this span
    chosen: bool  # in the proposed merge


@dataclass(frozen=True, slots=True)
class MergeProposal:
    spans: list[Span]  # the proposed gold spans (non-overlapping)
    candidates: list[MergeCandidate]  # every distinct span any annotator made
    contested: int  # candidates without a majority or that lost an overlap


def merge_versions(sentence: Sentence, versions: Mapping[str, Sequence[Span]], source: str = "adjudicated") -> MergeProposal:
    """Majority merge of several annotators' spans of one side.

    A span is proposed when more than half of the annotators made exactly it (token range
    and label); of overlapping proposals the one with more supporters (then the longer,
    then the earlier) wins, so the result is always a valid, non-overlapping span list the
    reviewer then corrects.
    """
    n = len(versions)
    support: dict[tuple[int, int, str], list[str]] = defaultdict(list)
    for name, spans in versions.items():
        for s in {sp.key() for sp in spans}:
            support[s].append(name)
    ranked = sorted(support.items(), key=lambda kv: (-len(kv[1]), -(kv[0][1] - kv[0][0]), kv[0][0], kv[0][2]))
    chosen: list[tuple[int, int, str]] = []
    for key, names in ranked:
        if n and len(names) * 2 <= n:
            continue
        if any(key[0] < c[1] and c[0] < key[1] for c in chosen):
            continue
        chosen.append(key)
    chosen_set = set(chosen)
    candidates = [
        MergeCandidate(make_span(sentence, k[0], k[1], k[2], source), tuple(sorted(names)), k in chosen_set)
        for k, names in sorted(support.items())
    ]
    spans = check_spans(sentence, [make_span(sentence, k[0], k[1], k[2], source) for k in chosen])
    return MergeProposal(spans, candidates, sum(1 for c in candidates if not c.chosen))


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


# --------------------------------------------------------------------------- images


@lru_cache(maxsize=256)
def _thumbnail(path: str, mtime: float, max_side: int) -> str:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_data_uri(path: str | Path | None, max_side: int = 720) -> str | None:
    """A JPEG data URI of the image (at most ``max_side`` px), cached by path and mtime;
    None when there is no image or it cannot be read (the page says so)."""
    if not path:
        return None
    p = Path(path)
    try:
        return _thumbnail(str(p), p.stat().st_mtime, max_side)
    except (OSError, ValueError):
        return None
