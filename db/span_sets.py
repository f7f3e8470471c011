"""Machine output: span sets, alignments, target sentences and a pipeline stage's results.

Human decisions never come here: they are rows of the edit log (db.edits). A span set is
keyed by (item, side, source); writing it again replaces it and makes it the newest.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.annotations.ledger import has_human_labels
from core.data import Item, Link, Sentence, Span, SpanError, check_spans
from db import models as orm
from db.codecs import chunks, links_json, sentence_from_json, spans_json, tokens_json
from db.errors import NotFoundError, QueryError, check_choice
from db.items import load_item
from db.stages import mark_stage

__all__ = ["PREVIOUS_TARGETS", "PREVIOUS_PIVOTS", "save_span_set", "save_target", "save_stage_results", "delete_span_sets"]

SIDES = ("source", "target")
PREVIOUS_TARGETS = "previous_targets"  # item meta: the translations a new one replaced, oldest first
PREVIOUS_PIVOTS = "previous_pivots"  # translate-test: the pivot translations a new one replaced


def _item_row(s: Session, item_id: int) -> orm.Item:
    row = s.get(orm.Item, item_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"no item with id {item_id}")
    return row


def _side_sentence(row: orm.Item, side: str) -> Sentence:
    if side == "source":
        return sentence_from_json(row.source_text, row.source_tokens, row.source_lang)
    if row.target_text is None:
        raise QueryError(f"item {row.external_id} has no target sentence yet")
    return sentence_from_json(row.target_text, row.target_tokens or [], row.target_lang)


def _check_machine_source(source: str) -> None:
    if not source or source.startswith("human:"):
        raise QueryError(f"span set source {source!r}: human spans are appended to the edit log, not stored as a span set")


def _upsert(
    s: Session, existing: dict[tuple[int, str, str], orm.SpanSet], item_id: int, side: str, source: str,
    spans: Sequence[Span], unprojected: Sequence[Span] | None, settings: Mapping[str, Any] | None,
) -> None:  # fmt: skip
    now = orm.utcnow()
    row = existing.get((item_id, side, source))
    if row is None:
        row = orm.SpanSet(item_id=item_id, side=side, source=source, created_at=now)
        s.add(row)
        existing[(item_id, side, source)] = row
    row.spans = spans_json(spans, False)
    row.unprojected = spans_json(unprojected, True) if unprojected is not None else None
    row.settings = dict(settings) if settings else None
    row.created_at = now


def save_span_set(
    s: Session,
    item_id: int,
    side: str,
    source: str,
    spans: Sequence[Span],
    *,
    unprojected: Sequence[Span] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> None:
    """Record (or replace) the spans of one side from one machine source for one item."""
    check_choice(side, SIDES, "side")
    _check_machine_source(source)
    row = _item_row(s, item_id)
    ordered = check_spans(_side_sentence(row, side), spans, f"item {row.external_id} {side} {source}")
    existing = {
        (r.item_id, r.side, r.source): r
        for r in s.scalars(select(orm.SpanSet).where(orm.SpanSet.item_id == item_id, orm.SpanSet.side == side, orm.SpanSet.source == source))
    }
    _upsert(s, existing, item_id, side, source, ordered, unprojected, settings)
    s.flush()


def delete_span_sets(s: Session, item_ids: Sequence[int], side: str, source_prefix: str) -> None:
    """Remove the ``side`` span sets whose source starts with ``source_prefix`` (e.g. an
    earlier student's predictions) from these items."""
    for chunk in chunks(list(item_ids)):
        s.execute(
            delete(orm.SpanSet)
            .where(orm.SpanSet.item_id.in_(chunk), orm.SpanSet.side == side, orm.SpanSet.source.startswith(source_prefix, autoescape=True))
            .execution_options(synchronize_session=False)
        )


def _check_links(row: orm.Item, links: Sequence[Link]) -> None:
    if row.target_text is None:
        raise QueryError(f"item {row.external_id}: alignment without a target sentence")
    n_src, n_tgt = len(row.source_tokens), len(row.target_tokens or [])
    for ln in links:
        if not (0 <= ln.src < n_src and 0 <= ln.tgt < n_tgt):
            raise SpanError(f"item {row.external_id}: alignment link {ln.src}-{ln.tgt} outside the sentences")


def _replace_sentence(s: Session, row: orm.Item, side: str, sentence: Sentence, translator_key: str, versions_key: str) -> bool:
    """Store a (new) sentence on ``side``; True when it changed.

    A changed sentence invalidates the side's machine spans and the alignments (deleted; the
    pipeline recomputes them); the old sentence is appended to ``meta[versions_key]``, never
    lost. It is refused when people or gold data labelled the old one
    (ledger.has_human_labels): their work would silently stop matching the text.
    """
    sentence.validate(f"item {row.external_id} {side}")
    tokens = tokens_json(sentence)
    text, old_tokens, lang = getattr(row, f"{side}_text"), getattr(row, f"{side}_tokens"), getattr(row, f"{side}_lang")
    if text == sentence.text and old_tokens == tokens:
        return False
    if text or old_tokens:
        if has_human_labels(load_item(s, row.id).annotations, side):
            what = "target sentence" if side == "target" else "pivot sentence"
            raise QueryError(f"item {row.external_id}: the {what} has human or gold labels; it cannot be replaced")
        for r in s.scalars(select(orm.SpanSet).where(orm.SpanSet.item_id == row.id, orm.SpanSet.side == side)):
            s.delete(r)
        for r in s.scalars(select(orm.Alignment).where(orm.Alignment.item_id == row.id)):
            s.delete(r)
        s.flush()
        meta = dict(row.meta or {})
        previous = {"text": text, "tokens": old_tokens, "lang": lang, "translator": meta.get(translator_key, "imported"),
                    "replaced_at": orm.utcnow().isoformat()}  # fmt: skip
        meta[versions_key] = [*meta.get(versions_key, []), previous]
        row.meta = meta
    setattr(row, f"{side}_text", sentence.text)
    setattr(row, f"{side}_tokens", tokens)
    setattr(row, f"{side}_lang", sentence.lang or lang)
    row.updated_at = orm.utcnow()
    return True


def _set_target(s: Session, row: orm.Item, target: Sentence) -> bool:
    """A (new) translation on the target side (see _replace_sentence)."""
    return _replace_sentence(s, row, "target", target, "translator", PREVIOUS_TARGETS)


def _set_source(s: Session, row: orm.Item, source: Sentence) -> bool:
    """Translate-test: a (new) pivot translation on the source side (see _replace_sentence)."""
    return _replace_sentence(s, row, "source", source, "pivot_translator", PREVIOUS_PIVOTS)


def save_target(s: Session, item_id: int, target: Sentence) -> bool:
    """Store the target (translated) sentence of an item; see _set_target for the rules."""
    row = _item_row(s, item_id)
    if target.lang is None:
        target = Sentence(target.text, target.tokens, s.scalar(select(orm.Project.tgt_lang).where(orm.Project.id == row.project_id)))
    changed = _set_target(s, row, target)
    s.flush()
    return changed


def save_stage_results(
    s: Session,
    project_id: int,
    stage: str,
    items: Sequence[Item],
    *,
    outputs: Mapping[str, str] | None = None,
    aligner: str | None = None,
    unprojected: Mapping[str, Sequence[Span]] | None = None,
    settings: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    pivots: bool = False,
) -> int:
    """Store what one pipeline stage produced for a batch of items (matched by ``Item.id``).

    * a target sentence on the item is stored (see _set_target for when that is refused);
    * ``pivots``: the item's source sentence is stored too (translate-test, see _set_source);
    * ``outputs`` maps side -> span source this stage writes, e.g. ``{"source": "teacher"}``
      or ``{"target": "projection:heuristic"}``: the item's spans of that side with that
      source become the set (an empty set is recorded too);
    * ``aligner``: the item's ``alignment`` is stored under that name;
    * ``unprojected``: item id -> source spans that could not be projected (stored with
      the target set of this stage);
    * ``errors``: item id -> error text, recorded as a failed stage for those items.

    Every stored item is marked done for ``stage``. Returns the number of items stored.
    """
    outputs = dict(outputs or {})
    for side in outputs:
        check_choice(side, SIDES, "side")
    for src in outputs.values():
        _check_machine_source(src)
    ext_ids = [it.id for it in items] + list((errors or {}).keys())
    rows: dict[str, orm.Item] = {}
    for chunk in chunks(ext_ids):
        for r in s.scalars(
            select(orm.Item).where(orm.Item.project_id == project_id, orm.Item.external_id.in_(chunk)).execution_options(populate_existing=True)
        ):
            rows[r.external_id] = r
    missing = [e for e in ext_ids if e not in rows]
    if missing:
        raise NotFoundError(f"project {project_id} has no item(s) {', '.join(map(repr, missing[:5]))}")
    ids = [rows[it.id].id for it in items]
    existing_sets: dict[tuple[int, str, str], orm.SpanSet] = {}
    existing_aligns: dict[tuple[int, str], orm.Alignment] = {}
    for chunk in chunks(ids):
        for r in s.scalars(select(orm.SpanSet).where(orm.SpanSet.item_id.in_(chunk))):
            existing_sets[(r.item_id, r.side, r.source)] = r
        if aligner:
            for r in s.scalars(select(orm.Alignment).where(orm.Alignment.item_id.in_(chunk), orm.Alignment.aligner == aligner)):
                existing_aligns[(r.item_id, r.aligner)] = r
    tgt_lang = None
    for it in items:
        row = rows[it.id]
        if pivots and _set_source(s, row, it.source):
            existing_sets = {k: v for k, v in existing_sets.items() if not (k[0] == row.id and k[1] == "source")}
            existing_aligns = {k: v for k, v in existing_aligns.items() if k[0] != row.id}
        if it.target is not None:
            if it.target.lang is None and tgt_lang is None:
                tgt_lang = s.scalar(select(orm.Project.tgt_lang).where(orm.Project.id == project_id))
            target = it.target if it.target.lang is not None else Sentence(it.target.text, it.target.tokens, tgt_lang)
            if _set_target(s, row, target):
                existing_sets = {k: v for k, v in existing_sets.items() if not (k[0] == row.id and k[1] == "target")}
                existing_aligns = {k: v for k, v in existing_aligns.items() if k[0] != row.id}
        for side, source in outputs.items():
            spans = [sp for sp in (it.source_spans if side == "source" else it.target_spans) if sp.source == source]
            ordered = check_spans(_side_sentence(row, side), spans, f"item {row.external_id} {side} {source}")
            unproj = (unprojected or {}).get(it.id) if side == "target" else None
            _upsert(s, existing_sets, row.id, side, source, ordered, unproj, settings)
        if aligner and it.alignment:
            _check_links(row, it.alignment)
            a = existing_aligns.get((row.id, aligner))
            if a is None:
                s.add(orm.Alignment(item_id=row.id, aligner=aligner, links=links_json(it.alignment), created_at=orm.utcnow()))
            else:
                a.links, a.created_at = links_json(it.alignment), orm.utcnow()
    s.flush()
    mark_stage(s, ids, stage)
    for ext_id, message in (errors or {}).items():
        mark_stage(s, [rows[ext_id].id], stage, error=message or "failed")
    return len(ids)
