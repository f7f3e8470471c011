"""The review queue's settings and per-item numbers, as pure functions.

``QueueFilter`` is what a person's queue shows and in which order; ``compute_item_stats``
gives the numbers the queue is ordered and filtered by (db/ keeps them in indexed columns
so choosing the next of 100,000 items is one index walk).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Iterable, Mapping, Sequence

from core.annotations.records import STATUSES
from core.data import Span
from core.errors import ConfigError

__all__ = [
    "ORDERINGS",
    "STATUSES",
    "QueueFilter",
    "ItemStatsValues",
    "compute_item_stats",
    "student_uncertainty",
    "shuffle_key",
]

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
            raise ConfigError(f"unknown queue order {self.order!r}; expected one of {', '.join(ORDERINGS)}")
        for st in self.statuses:
            if st not in STATUSES:
                raise ConfigError(f"unknown status {st!r}; expected one of {', '.join(STATUSES)}")
        for name in ("min_confidence", "max_confidence", "min_disagreement"):
            value = getattr(self, name)
            if value is not None and not (0.0 <= value <= 1.0):
                raise ConfigError(f"{name} {value} outside [0, 1]")
        if self.min_confidence is not None and self.max_confidence is not None and self.min_confidence > self.max_confidence:
            raise ConfigError(f"confidence range [{self.min_confidence}, {self.max_confidence}] is empty")


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

