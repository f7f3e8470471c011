"""The ledger: the one answer to "what are this item's labels, and whose".

Review, export, training, agreement and the queue statistics all call these functions;
nothing else decides. Inputs are the plain records of core.annotations.records.

* **A person's version** of one side is the replay of *their own* rows of the edit log
  (``replay``): edit/accept/reject set the spans, undo/redo move along their own history.
  Nobody can undo someone else's work.
* **The suggestion** of a side (``suggestion``) is what a person sees before they have a
  version: the span set the project names (setting ``suggestion_source``), else imported
  ``gold``, else the newest imported ``human:*`` set, else the newest ``projection:*`` set,
  else the newest other machine set (a teacher). Student predictions (``student:*``) are
  shown for comparison and order the queue; they are never the suggestion, so one
  "Accept" cannot turn a model's own output into gold.
* **The labels** of a side for export, training and statistics (``labels``): the newest
  adjudication of that side, else the version of the person who accepted the item (the
  newest "reviewed" state), else the suggestion.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from core.annotations.queue import ItemStatsValues, compute_item_stats, student_uncertainty
from core.annotations.records import (
    SPAN_ACTIONS,
    AdjudicationRecord,
    EditEvent,
    ItemAnnotations,
    ItemRecord,
    SpanSetRecord,
    StatusChange,
    Version,
)
from core.data import Item, Sentence, Span

__all__ = [
    "ADJUDICATED_SOURCE",
    "GOLD_SOURCE",
    "HUMAN_PREFIX",
    "PROJECTION_PREFIX",
    "STUDENT_PREFIX",
    "LABEL_KINDS",
    "Labels",
    "Stream",
    "ReviewView",
    "TrainingLabels",
    "source_training_labels",
    "is_machine",
    "as_decision",
    "replay",
    "streams",
    "suggestion",
    "acceptor",
    "labels",
    "item_status",
    "user_view",
    "export_item",
    "training_labels",
    "queue_stats",
    "has_human_labels",
]

GOLD_SOURCE = "gold"
HUMAN_PREFIX = "human:"
PROJECTION_PREFIX = "projection:"
STUDENT_PREFIX = "student:"
ADJUDICATED_SOURCE = "adjudicated"
# What decided a side's labels, strongest first. "gold" = imported gold or imported human
# labels; "suggestion" = machine labels nobody accepted yet; "none" = nothing stored.
LABEL_KINDS = ("adjudicated", "reviewed", "gold", "suggestion", "none")


def is_machine(source: str | None) -> bool:
    """A machine span set (teacher, projection, student, ...): not gold, not a person's."""
    return bool(source) and source != GOLD_SOURCE and source != ADJUDICATED_SOURCE and not source.startswith(HUMAN_PREFIX)


def as_decision(spans: Iterable[Span], source: str | None = None) -> list[Span]:
    """Spans a person decided on carry no machine confidence (a relabelled projected span
    is the person's, not the projection's); ``source`` replaces their provenance when given."""
    out = []
    for sp in spans:
        if source is not None:
            out.append(replace(sp, source=source, confidence=None))
        elif not is_machine(sp.source):
            out.append(replace(sp, confidence=None) if sp.confidence is not None else sp)
        else:
            out.append(sp)
    return out


# --------------------------------------------------------------------------- one person's stream


@dataclass(slots=True)
class Stream:
    """One person's version of one side, replayed from their rows of the edit log."""

    version: Version | None = None  # None: no version of their own
    undo: list[tuple[Version | None, int]] = field(default_factory=list)  # (state before, edit id)
    redo: list[tuple[Version | None, int]] = field(default_factory=list)


def replay(events: Iterable[EditEvent]) -> Stream:
    """Undo/redo stacks from one person's events of one side: an edit pushes the old state
    and clears redo; undo and redo move one state between the stacks (the log stays
    append-only, so this works after reloads and on another device)."""
    st = Stream()
    for e in events:
        if e.action in SPAN_ACTIONS:
            st.undo.append((st.version, e.id))
            st.version = e.after if isinstance(e.after, Version) else Version()
            st.redo.clear()
        elif e.action == "undo" and st.undo:
            previous, _ = st.undo.pop()
            st.redo.append((st.version, e.id))
            st.version = previous
        elif e.action == "redo" and st.redo:
            following, _ = st.redo.pop()
            st.undo.append((st.version, e.id))
            st.version = following
    return st


def streams(annotations: ItemAnnotations) -> dict[tuple[str, str], Stream]:
    """(user, side) -> that person's stream of that side."""
    by_user_side: dict[tuple[str, str], list[EditEvent]] = defaultdict(list)
    for e in annotations.events:
        if e.side is not None:
            by_user_side[(e.user, e.side)].append(e)
    return {key: replay(events) for key, events in by_user_side.items()}


# --------------------------------------------------------------------------- suggestion and labels


def _newest(sets: Sequence[SpanSetRecord]) -> SpanSetRecord | None:
    return max(sets, key=lambda r: (r.created_at, r.id)) if sets else None


def suggestion(span_sets: Iterable[SpanSetRecord], side: str, preferred: str | None = None) -> SpanSetRecord | None:
    """The suggestion of one side (module docstring); None when there is nothing to suggest."""
    sets = [r for r in span_sets if r.side == side]
    if preferred:
        named = [r for r in sets if r.source == preferred]
        if named:
            return _newest(named)
    for rank in (
        lambda src: src == GOLD_SOURCE,
        lambda src: src.startswith(HUMAN_PREFIX),
        lambda src: src.startswith(PROJECTION_PREFIX),
        lambda src: is_machine(src) and not src.startswith(STUDENT_PREFIX),
    ):
        found = _newest([r for r in sets if rank(r.source)])
        if found is not None:
            return found
    return None


def acceptor(annotations: ItemAnnotations) -> str | None:
    """The person whose version counts: the newest to mark the item reviewed."""
    reviewed = [st for st in annotations.states if st.status == "reviewed"]
    return max(reviewed, key=lambda st: (st.updated_at, st.user)).user if reviewed else None


def _newest_adjudication(annotations: ItemAnnotations, side: str) -> AdjudicationRecord | None:
    found = [a for a in annotations.adjudications if a.side == side]
    return max(found, key=lambda a: a.id) if found else None


@dataclass(frozen=True, slots=True)
class Labels:
    """The labels of one side and what decided them."""

    spans: tuple[Span, ...]
    source: str | None  # "adjudicated", "human:<user>", "gold", "projection:x", ... (None: nothing)
    kind: str  # one of LABEL_KINDS
    user: str | None = None  # the adjudicator or the accepting person

    @property
    def decided(self) -> bool:
        """People or gold data decided them (training takes them as gold)."""
        return self.kind in ("adjudicated", "reviewed", "gold")


def labels(annotations: ItemAnnotations, side: str, preferred: str | None = None) -> Labels:
    """The labels of ``side`` for export, training and statistics (module docstring)."""
    adj = _newest_adjudication(annotations, side)
    if adj is not None:
        return Labels(tuple(adj.spans), ADJUDICATED_SOURCE, "adjudicated", adj.user)
    person = acceptor(annotations)
    if person is not None:
        stream = replay(e for e in annotations.events if e.user == person and e.side == side)
        if stream.version is not None:
            return Labels(tuple(stream.version.spans), f"{HUMAN_PREFIX}{person}", "reviewed", person)
    chosen = suggestion(annotations.span_sets, side, preferred)
    if chosen is None:
        return Labels((), None, "none")
    kind = "suggestion" if is_machine(chosen.source) else "gold"
    return Labels(tuple(chosen.spans), chosen.source, kind)


def item_status(annotations: ItemAnnotations) -> StatusChange:
    """The item's shared status: reviewed once anyone accepted it or it was adjudicated,
    else the newest status anyone set (skipped, flagged), else new."""
    if annotations.adjudications or acceptor(annotations) is not None:
        return StatusChange("reviewed")
    if not annotations.states:
        return StatusChange("new")
    newest = max(annotations.states, key=lambda st: (st.updated_at, st.user))
    return StatusChange(newest.status, newest.flag_comment if newest.status == "flagged" else None)


def has_human_labels(annotations: ItemAnnotations, side: str) -> bool:
    """People or gold data labelled this side (its sentence must then not be replaced)."""
    if any(e.side == side for e in annotations.events):
        return True
    if any(a.side == side for a in annotations.adjudications):
        return True
    return any(r.side == side and not is_machine(r.source) for r in annotations.span_sets)


def export_item(record: ItemRecord, preferred: str | None = None) -> Item:
    """The item as export writes it: each side with its ``labels``."""
    ann = record.annotations
    sides = ["source"] + (["target"] if record.target is not None else [])
    found = {side: labels(ann, side, preferred) for side in sides}
    item = record.as_item(list(found["source"].spans), list(found["target"].spans) if "target" in found else [])
    decided = {side: lb.source or GOLD_SOURCE for side, lb in found.items() if lb.decided}
    return item.with_(labelled_by=decided) if decided else item


@dataclass(frozen=True, slots=True)
class TrainingLabels:
    spans: list[Span]
    source: str  # adjudicated, gold, human:<user>, projection:<method>
    gold: bool  # False: silver (machine labels, low-confidence spans may be masked)


def training_labels(record: ItemRecord, preferred: str | None = None) -> TrainingLabels | None:
    """What a target-language student learns from this item, or None (nothing to learn).

    Decided labels are gold (their spans carry the decision's source and no confidence, so
    an accepted projected span is never masked as doubtful silver); a machine suggestion is
    silver with its confidences; an item without a translation or labels is left out.
    """
    if record.target is None:
        return None
    found = labels(record.annotations, "target", preferred)
    if found.decided:
        return TrainingLabels(as_decision(found.spans, found.source), found.source or GOLD_SOURCE, True)
    if found.kind == "suggestion" and found.source is not None:
        return TrainingLabels(list(found.spans), found.source, False)
    return None


def source_training_labels(record: ItemRecord) -> TrainingLabels | None:
    """The source side as extra gold for a target-language student ("both": the source gold
    beside the projected target), or None: only labels people or gold data decided count,
    never a teacher's suggestion (a translate-test project's pivot is machine-labelled)."""
    found = labels(record.annotations, "source")
    if not found.decided or not len(record.source):
        return None
    return TrainingLabels(as_decision(found.spans, found.source), found.source or GOLD_SOURCE, True)


# --------------------------------------------------------------------------- one person's view


@dataclass(frozen=True, slots=True)
class ReviewView:
    """One item as one person sees it in the workbench."""

    record: ItemRecord
    user: str
    spans: dict[str, list[Span]]  # side -> this person's version, else the suggestion
    pending: dict[str, frozenset[tuple[int, int, str]]]  # side -> keys of suggestions not yet accepted
    own: dict[str, bool]  # side -> this person has a version of it
    suggestion_source: dict[str, str | None]  # side -> where the suggestion comes from
    undo_side: str | None  # the side "undo" would change (None: nothing to undo)
    redo_side: str | None
    head: int  # id of this person's newest edit of the item (0: none): the base of the next write
    status: str  # this person's status
    flag_comment: str | None
    others: dict[str, dict[str, list[Span]]]  # other people -> side -> their version
    other_status: dict[str, str]
    adjudicated: dict[str, AdjudicationRecord]  # side -> newest adjudication

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def item(self) -> Item:
        """The item with this person's spans."""
        return self.record.as_item(self.spans.get("source"), self.spans.get("target"))

    def sentence(self, side: str) -> Sentence | None:
        return self.record.sentence(side)

    def stream(self, side: str) -> Stream:
        return replay(e for e in self.record.annotations.events if e.user == self.user and e.side == side)


def user_view(record: ItemRecord, user: str, preferred: str | None = None) -> ReviewView:
    """``record`` as ``user`` sees it: their version or the suggestion, their undo/redo,
    their status, the other people's versions and the newest adjudications."""
    ann = record.annotations
    all_streams = streams(ann)
    head = max((e.id for e in ann.events if e.user == user), default=0)
    spans: dict[str, list[Span]] = {}
    pending: dict[str, frozenset[tuple[int, int, str]]] = {}
    own: dict[str, bool] = {}
    suggestion_source: dict[str, str | None] = {}
    undo_top: dict[str, int] = {}
    redo_top: dict[str, int] = {}
    for side in record.sides:
        chosen = suggestion(ann.span_sets, side, preferred)
        suggestion_source[side] = chosen.source if chosen is not None else None
        stream = all_streams.get((user, side))
        if stream is not None and stream.version is not None:
            spans[side] = list(stream.version.spans)
            pending[side] = stream.version.pending
            own[side] = True
        else:
            spans[side] = list(chosen.spans) if chosen is not None else []
            pending[side] = frozenset(s.key() for s in spans[side]) if chosen is not None and is_machine(chosen.source) else frozenset()
            own[side] = False
        if stream is not None and stream.undo:
            undo_top[side] = stream.undo[-1][1]
        if stream is not None and stream.redo:
            redo_top[side] = stream.redo[-1][1]
    others: dict[str, dict[str, list[Span]]] = defaultdict(dict)
    for (name, side), stream in all_streams.items():
        if name != user and side in record.sides and stream.version is not None:
            others[name][side] = list(stream.version.spans)
    mine = next((st for st in ann.states if st.user == user), None)
    other_status = {st.user: st.status for st in ann.states if st.user != user}
    for name in other_status:
        others.setdefault(name, {})
    adjudicated = {side: a for side in record.sides if (a := _newest_adjudication(ann, side)) is not None}
    return ReviewView(
        record=record,
        user=user,
        spans=spans,
        pending=pending,
        own=own,
        suggestion_source=suggestion_source,
        undo_side=max(undo_top, key=undo_top.__getitem__) if undo_top else None,
        redo_side=max(redo_top, key=redo_top.__getitem__) if redo_top else None,
        head=head,
        status=mine.status if mine is not None else "new",
        flag_comment=mine.flag_comment if mine is not None else None,
        others=dict(others),
        other_status=other_status,
        adjudicated=adjudicated,
    )


# --------------------------------------------------------------------------- queue numbers


def queue_stats(annotations: ItemAnnotations, preferred: str | None = None) -> ItemStatsValues:
    """The numbers the review queue orders and filters one item by: the suggestion's lowest
    confidence, the disagreement among the target's span sets and people's versions, the
    newest student's uncertainty and stored soft disagreement, and every label present."""
    target_sets = [r for r in annotations.span_sets if r.side == "target"]
    chosen = suggestion(target_sets, "target", preferred)
    suggested = list(chosen.spans) if chosen is not None else None
    unprojected = list(chosen.unprojected or ()) if chosen is not None else []
    compare: dict[str, list[Span]] = {r.source: list(r.spans) for r in target_sets}
    all_spans: list[Span] = [sp for r in annotations.span_sets for sp in r.spans]
    for (name, side), stream in streams(annotations).items():
        if stream.version is None:
            continue
        all_spans.extend(stream.version.spans)
        if side == "target":
            compare[f"{HUMAN_PREFIX}{name}"] = list(stream.version.spans)
    students = sorted((r for r in target_sets if r.source.startswith(STUDENT_PREFIX)), key=lambda r: (r.created_at, r.id))
    newest = students[-1] if students else None
    uncertainty = student_uncertainty(list(newest.spans), newest.settings) if newest is not None else None
    stored = (newest.settings or {}).get("disagreement") if newest is not None else None
    soft = float(stored) if isinstance(stored, (int, float)) else None
    return compute_item_stats(suggested, unprojected, compare, uncertainty, all_spans, soft)
