"""Plain records of what is stored about an item, as ``db/`` returns them.

Span sets (machine output, imported gold), the append-only edit log, each person's review
state and the adjudications: the ledger (core.annotations.ledger) decides from these what
an item's labels are. No database code here: these are frozen dataclasses over core.data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from core.data import Item, Link, Sentence, Span

__all__ = [
    "SIDES",
    "STATUSES",
    "SPAN_ACTIONS",
    "EDIT_ACTIONS",
    "Version",
    "StatusChange",
    "SpanSetRecord",
    "EditEvent",
    "ReviewStateRecord",
    "AdjudicationRecord",
    "ItemAnnotations",
    "StageState",
    "ItemRecord",
]

SIDES = ("source", "target")
STATUSES = ("new", "reviewed", "skipped", "flagged")
SPAN_ACTIONS = ("edit", "accept", "reject")  # actions that set the spans of one side
EDIT_ACTIONS = SPAN_ACTIONS + ("undo", "redo", "skip", "flag", "status")


@dataclass(frozen=True, slots=True)
class Version:
    """One person's spans of one side, and which of them are unaccepted suggestions."""

    spans: tuple[Span, ...] = ()
    pending: frozenset[tuple[int, int, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: str
    flag_comment: str | None = None


@dataclass(frozen=True, slots=True)
class SpanSetRecord:
    """The spans of one side of one item from one source (gold, teacher:x, projection:x, ...)."""

    id: int
    side: str
    source: str
    spans: tuple[Span, ...]
    created_at: datetime
    unprojected: tuple[Span, ...] | None = None  # source-side spans this projection could not place
    settings: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EditEvent:
    """One row of the edit log. Span actions carry Versions, status actions StatusChanges;
    undo/redo carry the Version they restore (None: back to "no version of my own")."""

    id: int
    user: str
    side: str | None  # None for status actions
    action: str
    before: Version | StatusChange | None
    after: Version | StatusChange | None
    created_at: datetime
    base_version: int = 0
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewStateRecord:
    """One person's status of one item; ``updated_at`` moves only when the status changes."""

    user: str
    status: str
    flag_comment: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AdjudicationRecord:
    id: int
    side: str
    spans: tuple[Span, ...]
    user: str
    merged_from: tuple[str, ...]
    created_at: datetime
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ItemAnnotations:
    """Everything the ledger reads about one item (events and adjudications oldest first)."""

    span_sets: tuple[SpanSetRecord, ...] = ()
    events: tuple[EditEvent, ...] = ()
    states: tuple[ReviewStateRecord, ...] = ()
    adjudications: tuple[AdjudicationRecord, ...] = ()

    def span_set(self, side: str, source: str) -> SpanSetRecord | None:
        return next((r for r in self.span_sets if r.side == side and r.source == source), None)


@dataclass(frozen=True, slots=True)
class StageState:
    status: str  # done / failed
    error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One stored item: its sentences, image, alignments, stage marks and annotations.

    It carries no "current labels": those are the ledger's answer (``ledger.labels``).
    """

    id: int
    project_id: int
    external_id: str
    position: int
    status: str  # the shared status, kept equal to ledger.item_status on every write
    version: int  # bumped by every human write (optimistic concurrency)
    flag_comment: str | None
    source: Sentence
    target: Sentence | None
    image_path: Path | None
    meta: dict[str, Any]
    alignments: dict[str, list[Link]]  # aligner -> links, oldest first
    stages: dict[str, StageState]
    updated_at: datetime
    annotations: ItemAnnotations = field(default_factory=ItemAnnotations)

    def sentence(self, side: str) -> Sentence | None:
        return self.source if side == "source" else self.target

    @property
    def sides(self) -> tuple[str, ...]:
        return SIDES if self.target is not None else ("source",)

    @property
    def alignment(self) -> list[Link]:
        """The newest alignment (what projection and the editor's link lines use)."""
        return list(next(reversed(self.alignments.values()))) if self.alignments else []

    def spans_of(self, side: str, source: str) -> list[Span]:
        found = self.annotations.span_set(side, source)
        return list(found.spans) if found is not None else []

    def as_item(self, source_spans: list[Span] | None = None, target_spans: list[Span] | None = None) -> Item:
        """A core.data Item of this record with the given spans (image = the stored file)."""
        return Item(
            id=self.external_id,
            source=self.source,
            source_spans=list(source_spans or []),
            target=self.target,
            target_spans=list(target_spans or []) if self.target is not None else [],
            image=str(self.image_path) if self.image_path else None,
            meta=dict(self.meta),
            alignment=self.alignment,
        )
