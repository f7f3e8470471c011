"""The ledger (core.annotations.ledger): one answer to "what are this item's labels".

Pure tests on records, then the reproduced defects of issue 12 end to end on SQLite and
PostgreSQL: export (CoNLL), the training pool and the Review page must agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.annotations import ledger
from core.annotations.records import (
    AdjudicationRecord,
    EditEvent,
    ItemAnnotations,
    ReviewStateRecord,
    SpanSetRecord,
    StatusChange,
    Version,
)
from core.data import Item, Sentence, make_span
from core.formats import write
from db.engine import session_scope
from db.items import import_items, item_ids, load_item
from db.projects import create_project
from db.span_sets import save_span_set
from services import export, review
from services.training import training_pool
from tests.test_db import db_url, pg_server  # noqa: F401  (fixtures: SQLite and PostgreSQL databases)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SRC = Sentence.from_words(["Siemens", "opened", "an", "office", "in", "Munich", "."], "en")
TGT = Sentence.from_words(["Siemens", "eröffnete", "ein", "Büro", "in", "München", "."], "de")


def at(k: int) -> datetime:
    return T0 + timedelta(seconds=k)


def span_set(i: int, source: str, spans, side: str = "target", k: int = 0, settings=None) -> SpanSetRecord:  # noqa: ANN001
    return SpanSetRecord(i, side, source, tuple(spans), at(k), None, settings)


def edit(i: int, user: str, action: str, after: Version | None, side: str = "target") -> EditEvent:
    return EditEvent(i, user, side, action, None, after, at(100 + i))


def version(*spans) -> Version:  # noqa: ANN002
    return Version(tuple(spans))


# --------------------------------------------------------------------------- pure


def test_suggestion_order_never_picks_a_student() -> None:
    proj = span_set(1, "projection:heuristic", [make_span(TGT, 0, 1, "ORG", "projection:heuristic", 0.8)], k=1)
    student = span_set(2, "student:3", [make_span(TGT, 5, 6, "LOC", "student:3", 0.6)], k=5)
    teacher = span_set(3, "teacher:spacy", [], k=9)
    assert ledger.suggestion([student], "target") is None
    assert ledger.suggestion([proj, student, teacher], "target").source == "projection:heuristic"
    assert ledger.suggestion([student, teacher], "target").source == "teacher:spacy"
    gold = span_set(4, "gold", [], k=0)
    assert ledger.suggestion([proj, gold], "target").source == "gold"  # an empty gold set is an answer
    ilp = span_set(5, "projection:ilp", [], k=0)
    assert ledger.suggestion([proj, ilp], "target").source == "projection:heuristic"  # the newest projection
    assert ledger.suggestion([proj, ilp, gold], "target", preferred="projection:ilp").source == "projection:ilp"
    assert ledger.suggestion([proj], "target", preferred="projection:missing").source == "projection:heuristic"


def test_replay_is_per_person_and_undo_cannot_cross_people() -> None:
    org = make_span(TGT, 0, 1, "ORG", "human:A")
    loc = make_span(TGT, 5, 6, "LOC", "human:B")
    events = (edit(1, "A", "edit", version(org)), edit(2, "B", "edit", version(loc)), edit(3, "A", "undo", None))
    streams = ledger.streams(ItemAnnotations(events=events))
    assert streams[("A", "target")].version is None and streams[("A", "target")].redo
    assert streams[("B", "target")].version == version(loc)
    # redo comes back; a new edit drops the redo branch
    again = ledger.replay([*events[::2], edit(4, "A", "redo", version(org))])
    assert again.version == version(org) and not again.redo


def test_labels_adjudication_then_acceptor_then_suggestion() -> None:
    proj = span_set(1, "projection:heuristic", [make_span(TGT, 0, 1, "ORG", "projection:heuristic", 0.8)])
    org = make_span(TGT, 0, 1, "ORG", "human:A")
    loc = make_span(TGT, 5, 6, "LOC", "human:B")
    ann = ItemAnnotations(span_sets=(proj,), events=(edit(1, "A", "edit", version(org)), edit(2, "B", "accept", version(loc))))
    assert ledger.labels(ann, "target").kind == "suggestion"  # nobody accepted: drafts do not count
    states = (ReviewStateRecord("A", "new", None, at(200)), ReviewStateRecord("B", "reviewed", None, at(201)))
    ann = ItemAnnotations((proj,), ann.events, states)
    got = ledger.labels(ann, "target")
    assert (got.kind, got.source, got.user, got.spans) == ("reviewed", "human:B", "B", (loc,))
    assert ledger.item_status(ann) == StatusChange("reviewed")
    # a later acceptance by A wins; an adjudication beats both
    states = (ReviewStateRecord("A", "reviewed", None, at(300)), states[1])
    assert ledger.labels(ItemAnnotations((proj,), ann.events, states), "target").user == "A"
    adj = AdjudicationRecord(1, "target", (make_span(TGT, 5, 6, "LOC", "adjudicated"),), "rev", ("A", "B"), at(400))
    got = ledger.labels(ItemAnnotations((proj,), ann.events, states, (adj,)), "target")
    assert (got.kind, got.source, got.user) == ("adjudicated", "adjudicated", "rev")


def test_item_status_and_human_labels() -> None:
    flagged = ReviewStateRecord("A", "flagged", "odd", at(5))
    skipped = ReviewStateRecord("B", "skipped", None, at(9))
    assert ledger.item_status(ItemAnnotations(states=(flagged, skipped))) == StatusChange("skipped")
    assert ledger.item_status(ItemAnnotations(states=(flagged,))) == StatusChange("flagged", "odd")
    assert ledger.item_status(ItemAnnotations()) == StatusChange("new")
    proj = span_set(1, "projection:x", [])
    assert not ledger.has_human_labels(ItemAnnotations(span_sets=(proj,)), "target")
    assert ledger.has_human_labels(ItemAnnotations(events=(edit(1, "A", "edit", version()),)), "target")
    assert ledger.has_human_labels(ItemAnnotations(span_sets=(span_set(2, "gold", []),)), "target")


def test_decided_spans_carry_no_machine_confidence() -> None:
    relabelled = make_span(TGT, 0, 1, "ORG", "human:A", 0.34)
    accepted = make_span(TGT, 5, 6, "LOC", "projection:heuristic", 0.9)
    out = ledger.as_decision([relabelled, accepted])
    assert out[0].confidence is None and out[1].confidence == 0.9  # an accepted machine span keeps its provenance
    assert [sp.source for sp in ledger.as_decision(out, "human:A")] == ["human:A", "human:A"]


def test_queue_stats_compare_people_and_use_the_newest_student() -> None:
    proj = span_set(1, "projection:heuristic", [make_span(TGT, 0, 1, "ORG", "projection:heuristic", 0.3)])
    old = span_set(2, "student:1", [], k=1, settings={"uncertainty": 0.9, "disagreement": 0.9})
    new = span_set(3, "student:2", [], k=2, settings={"uncertainty": 0.2, "disagreement": 0.1})
    ann = ItemAnnotations((proj, old, new), (edit(1, "A", "edit", version(make_span(TGT, 5, 6, "LOC", "human:A"))),))
    stats = ledger.queue_stats(ann)
    assert stats.min_confidence == 0.3 and stats.uncertainty == 0.2
    assert stats.disagreement == pytest.approx(1.0)  # the person's version shares nothing with the projection
    assert stats.labels == ("LOC", "ORG")


# --------------------------------------------------------------------------- the defects, end to end


LABELS = ["PER", "ORG", "LOC"]


@pytest.fixture()
def scene(db_url: str, tmp_path: Path):  # noqa: F811
    """One item: the projection found only "Siemens" as ORG on the target."""
    with session_scope(db_url) as s:
        pid = create_project(s, "ledger", "en", "de", LABELS).id
        item = Item("s1", SRC, [make_span(SRC, 0, 1, "ORG"), make_span(SRC, 5, 6, "LOC")], TGT,
                    [make_span(TGT, 0, 1, "ORG", "projection:heuristic", 0.7)])  # fmt: skip
        import_items(s, pid, [item], tmp_path / "media")
        (item_id,) = item_ids(s, pid)
    return db_url, pid, item_id, tmp_path


def _agreeing(url: str, pid: int, item_id: int, tmp_path: Path, selection: str, viewer: str) -> set:
    """The target labels as export (CoNLL), the training pool and ``viewer``'s Review page see them."""
    with session_scope(url) as s:
        exported = export.export_selection(s, pid, selection)
        pool = {p.item_id: p for p in training_pool(s, pid)}
        view = review.load_view(s, item_id, viewer)
    out = tmp_path / f"{selection}.conll"
    write(exported, out, "conll", side="target")
    tags = [line.split("\t")[-1] for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    from_conll = {(k, k + 1, tag[2:]) for k, tag in enumerate(tags) if tag != "O"}
    from_pool = {sp.key() for sp in pool[item_id].item.target_spans}
    from_view = {sp.key() for sp in view.spans["target"]}
    assert from_conll == from_pool == from_view, (from_conll, from_pool, from_view)
    return from_conll


def test_an_undone_span_never_becomes_gold(scene) -> None:
    url, pid, item_id, tmp = scene
    org, loc = (0, 1, "ORG"), (5, 6, "LOC")
    with session_scope(url) as s:
        a = review.load_view(s, item_id, "A")
        a_head = review.save_edit(s, item_id, "target", [make_span(TGT, 0, 1, "ORG", "human:A")], "A", a.head).head
        b = review.load_view(s, item_id, "B")
        b_head = review.save_edit(s, item_id, "target", [*b.spans["target"], make_span(TGT, 5, 6, "LOC", "human:B")], "B", b.head, pending=b.pending["target"]).head
        review.undo(s, item_id, "A", a_head)
    # nobody accepted: everyone gets the suggestion (the projection), nobody's draft
    assert _agreeing(url, pid, item_id, tmp, "all", "C") == {org}
    with session_scope(url) as s:
        assert export.export_selection(s, pid, "reviewed") == []
        review.accept_item(s, item_id, "B", b_head)
    assert _agreeing(url, pid, item_id, tmp, "reviewed", "B") == {org, loc}
    with session_scope(url) as s:
        a_after = review.load_view(s, item_id, "A")
        review.redo(s, item_id, "A", a_after.head)  # A's redo is A's own draft: B's accepted version stands
        review.save_edit(s, item_id, "target", [], "A", review.load_view(s, item_id, "A").head)
    assert _agreeing(url, pid, item_id, tmp, "reviewed", "B") == {org, loc}
    with session_scope(url) as s:
        pool = training_pool(s, pid)
    assert [(p.gold, p.source) for p in pool] == [(True, "human:B")]


def test_accepting_the_plain_suggestion_then_an_undo_of_someone_else(scene) -> None:
    url, pid, item_id, tmp = scene
    with session_scope(url) as s:
        a = review.load_view(s, item_id, "A")
        a_head = review.save_edit(s, item_id, "target", [make_span(TGT, 0, 1, "LOC", "human:A")], "A", a.head).head
        review.accept_item(s, item_id, "B", 0)  # B accepts the projection as it is
        review.undo(s, item_id, "A", a_head)
    assert _agreeing(url, pid, item_id, tmp, "reviewed", "B") == {(0, 1, "ORG")}
    with session_scope(url) as s:
        (only,) = export.export_selection(s, pid, "reviewed")
        assert [sp.source for sp in only.target_spans] == ["projection:heuristic"]  # accepted, provenance kept
        assert load_item(s, item_id).status == "reviewed"


def test_the_suggestion_after_predict_is_still_the_projection(scene) -> None:
    url, pid, item_id, tmp = scene
    with session_scope(url) as s:
        save_span_set(s, item_id, "target", "student:1", [make_span(TGT, 5, 6, "LOC", "student:1", 0.8)], settings={"uncertainty": 0.4})
        view = review.load_view(s, item_id, "A")
    assert view.suggestion_source["target"] == "projection:heuristic"
    assert _agreeing(url, pid, item_id, tmp, "all", "A") == {(0, 1, "ORG")}
    with session_scope(url) as s:
        review.accept_item(s, item_id, "A", view.head)
    assert _agreeing(url, pid, item_id, tmp, "reviewed", "A") == {(0, 1, "ORG")}  # the student's LOC was never accepted
