"""Agreement data and adjudication: comparing the annotators' finished versions, and
storing a reviewer's merge of them as the gold of a side."""

from __future__ import annotations

from typing import Sequence

from sqlalchemy.orm import Session

from core.annotations.ledger import ADJUDICATED_SOURCE, item_status, user_view
from core.annotations.records import SIDES
from core.data import Span, check_spans
from db.adjudications import add_adjudication
from db.codecs import chunks
from db.errors import QueryError, check_choice, check_user
from db.items import bump_item, load_item, load_items
from db.projects import get_project
from db.review_state import reviewers
from services.labels import preferred_source
from services.queue import refresh_items

__all__ = ["agreement_data", "save_adjudication"]


def agreement_data(
    s: Session, project_id: int, side: str = "target", users: Sequence[str] | None = None
) -> tuple[dict[int, dict[str, list[Span]]], dict[int, int], dict[int, str]]:
    """For every item at least two people reviewed: person -> their final spans of
    ``side`` (the ledger's view of each); plus each item's token count and external id."""
    check_choice(side, SIDES, "side")
    who = reviewers(s, project_id, users)
    ids = sorted(i for i, names in who.items() if len(names) >= 2)
    preferred = preferred_source(s, project_id)
    annotations: dict[int, dict[str, list[Span]]] = {}
    lengths: dict[int, int] = {}
    external: dict[int, str] = {}
    for chunk in chunks(ids):
        for record in load_items(s, chunk):
            sentence = record.sentence(side)
            if sentence is None:
                continue
            annotations[record.id] = {name: user_view(record, name, preferred).spans[side] for name in sorted(who[record.id])}
            lengths[record.id] = len(sentence)
            external[record.id] = record.external_id
    return annotations, lengths, external


def save_adjudication(
    s: Session, item_id: int, side: str, spans: Sequence[Span], user: str, merged_from: Sequence[str], comment: str | None = None
) -> int:
    """Store a reviewer's merged gold spans for one side (appended; the newest counts);
    the item is then reviewed (ledger.item_status). Returns the adjudication's id."""
    check_choice(side, SIDES, "side")
    user = check_user(user)
    record = load_item(s, item_id)
    sentence = record.sentence(side)
    if sentence is None:
        raise QueryError(f"item {record.external_id} has no translation yet")
    ordered = check_spans(
        sentence, [Span(sp.start, sp.end, sp.label, sp.char_start, sp.char_end, ADJUDICATED_SOURCE, None) for sp in spans], f"item {record.external_id} {side}"
    )
    labels = get_project(s, record.project_id).labels
    unknown = sorted({sp.label for sp in ordered} - set(labels))
    if labels and unknown:
        raise QueryError(f"item {record.external_id} {side}: label(s) {', '.join(unknown)} not in the project's labels")
    row_id = add_adjudication(s, record.project_id, item_id, side, ordered, user, merged_from, comment)
    bump_item(s, item_id, record.version, item_status(load_item(s, item_id).annotations))
    refresh_items(s, [item_id])
    return row_id
