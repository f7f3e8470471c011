"""Review workbench storage (services.review over db/): each person's own version, conflicts, undo/redo
across sessions, statuses, the queue's orders and filters in SQL, progress, occurrences,
agreement data, adjudication and the adjudicated-gold export, login sessions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from core.annotations import ledger
from core.annotations.queue import STATUSES, QueueFilter
from core.data import Item, Link, Sentence, SpanError, make_span
from db import adjudications, edits, errors, projects, review_state, span_sets, stats, users
from db import items as db_items
from db import queue as dbqueue
from db.engine import dispose_engine, get_engine, init_db, session_scope
from services import adjudication, export, review
from services import queue as squeue

LABELS = ["PER", "ORG", "LOC", "MISC"]
ALL = QueueFilter(statuses=STATUSES, order="original")


def _item(i: int, conf: float, student_label: str = "PER", name: str = "Anna") -> Item:
    src = Sentence.from_words([name, "Weber", "lives", "in", "Berlin", "."], "en")
    tgt = Sentence.from_words([name, "Weber", "vive", "en", "Berlín", "."], "es")
    return Item(
        f"s{i}",
        src,
        [make_span(src, 0, 2, "PER"), make_span(src, 4, 5, "LOC")],
        tgt,
        [make_span(tgt, 0, 2, "PER", "projection:heuristic", conf)],
        alignment=[Link(k, k) for k in range(6)],
    )


@pytest.fixture()
def env(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'review.db'}"
    init_db(url)
    media = tmp_path / "media"
    confidences = [0.9, 0.2, 0.6, 0.4, 0.8]
    with session_scope(url) as s:
        pid = projects.create_project(s, "Review", "en", "es", LABELS).id
        batch = [_item(i, c, name="Maria" if i == 3 else "Anna") for i, c in enumerate(confidences)]
        db_items.import_items(s, pid, batch, media, target_span_source=None)
        ids = db_items.item_ids(s, pid)
        # a student disagrees on items 1 and 3, with stored uncertainties
        for k, item_id in enumerate(ids):
            tgt = batch[k].target
            label = "ORG" if k in (1, 3) else "PER"
            span_sets.save_span_set(s, item_id, "target", "student:v1", [make_span(tgt, 0, 2, label, "student:v1", 0.7)], settings={"uncertainty": 0.1 * k})
        squeue.ensure_stats(s, pid)
    yield url, pid, ids, media
    dispose_engine(url)


def view(url: str, item_id: int, user: str, media: Path) -> ledger.ReviewView:
    with session_scope(url) as s:
        return review.load_view(s, item_id, user, media)


def test_suggestions_are_pending_until_accepted_and_work_is_kept_apart(env) -> None:
    url, pid, ids, media = env
    v = view(url, ids[0], "ann", media)
    assert v.own == {"source": False, "target": False}
    assert v.suggestion_source == {"source": "gold", "target": "projection:heuristic"}  # never the student
    assert v.pending["target"] == {(0, 2, "PER")} and v.pending["source"] == frozenset()
    tgt = v.item.target
    with session_scope(url) as s:
        r = review.save_edit(s, ids[0], "target", [*v.spans["target"], make_span(tgt, 4, 5, "LOC", "human:ann")], "ann", v.head, pending=v.pending["target"])
    assert r.changed and r.status == "new"  # an edit alone does not finish the item
    mine = view(url, ids[0], "ann", media)
    assert [s.key() for s in mine.spans["target"]] == [(0, 2, "PER"), (4, 5, "LOC")]
    assert mine.pending["target"] == {(0, 2, "PER")} and mine.own["target"] and mine.head == r.head
    other = view(url, ids[0], "bob", media)  # bob still sees the suggestion, and ann's version apart
    assert [s.key() for s in other.spans["target"]] == [(0, 2, "PER")]
    assert [s.key() for s in other.others["ann"]["target"]] == [(0, 2, "PER"), (4, 5, "LOC")]
    with session_scope(url) as s:
        review.save_edit(s, ids[0], "target", [], "bob", other.head)  # bob's change does not touch ann's
        a = review.accept_item(s, ids[0], "ann", mine.head)
    final = view(url, ids[0], "ann", media)
    assert a.status == "reviewed" and final.status == "reviewed" and final.pending["target"] == frozenset()
    assert [s.key() for s in final.spans["target"]] == [(0, 2, "PER"), (4, 5, "LOC")]
    assert [s.key() for s in view(url, ids[0], "bob", media).spans["target"]] == []
    with session_scope(url) as s:
        assert db_items.load_item(s, ids[0]).status == "reviewed"  # the shared status follows


def test_stale_head_is_a_conflict_that_says_what_changed(env) -> None:
    url, pid, ids, media = env
    first_tab = view(url, ids[1], "ann", media)
    second_tab = view(url, ids[1], "ann", media)
    tgt = first_tab.item.target
    with session_scope(url) as s:
        review.save_edit(s, ids[1], "target", [make_span(tgt, 4, 5, "LOC", "human:ann")], "ann", first_tab.head)
    with pytest.raises(review.ReviewConflictError) as err, session_scope(url) as s:
        review.save_edit(s, ids[1], "target", [make_span(tgt, 0, 1, "PER", "human:ann")], "ann", second_tab.head)
    exc = err.value
    assert [c.user for c in exc.changes] == ["ann"] and exc.changes[0].side == "target"
    assert [s.key() for s in exc.current_spans] == [(4, 5, "LOC")]
    assert "nothing was saved" in str(exc)
    # nothing of the refused change was written
    assert [s.key() for s in view(url, ids[1], "ann", media).spans["target"]] == [(4, 5, "LOC")]
    with pytest.raises(review.ReviewConflictError), session_scope(url) as s:
        review.accept_item(s, ids[1], "ann", second_tab.head)


def test_undo_and_redo_replay_after_reload_and_pick_the_side(env) -> None:
    url, pid, ids, media = env
    v = view(url, ids[2], "ann", media)
    src, tgt = v.item.source, v.item.target
    with session_scope(url) as s:
        h1 = review.save_edit(s, ids[2], "target", [make_span(tgt, 4, 5, "LOC", "human:ann")], "ann", v.head).head
        h2 = review.save_edit(s, ids[2], "source", [make_span(src, 0, 2, "ORG", "human:ann")], "ann", h1).head
    dispose_engine(url)  # a "reload": new connections, nothing cached
    v = view(url, ids[2], "ann", media)
    assert v.undo_side == "source" and v.redo_side is None and v.head == h2
    with session_scope(url) as s:
        review.undo(s, ids[2], "ann", v.head)
    v = view(url, ids[2], "ann", media)
    assert [s.key() for s in v.spans["source"]] == [(0, 2, "PER"), (4, 5, "LOC")] and not v.own["source"]
    assert v.undo_side == "target" and v.redo_side == "source"
    with session_scope(url) as s:
        review.undo(s, ids[2], "ann", v.head)
        v = review.load_view(s, ids[2], "ann", media)
        assert v.undo_side is None and [s_.key() for s_ in v.spans["target"]] == [(0, 2, "PER")]
        with pytest.raises(review.NothingToUndoError):
            review.undo(s, ids[2], "ann", v.head)
        review.redo(s, ids[2], "ann", v.head)
    v = view(url, ids[2], "ann", media)
    assert [s.key() for s in v.spans["target"]] == [(4, 5, "LOC")] and v.redo_side == "source"
    with session_scope(url) as s:
        actions = [e.action for e in edits.history(s, ids[2])]
    assert actions == ["edit", "edit", "undo", "undo", "redo"]  # append-only


def test_edits_are_validated_before_anything_is_written(env) -> None:
    url, pid, ids, media = env
    v = view(url, ids[0], "ann", media)
    tgt = v.item.target
    with pytest.raises(SpanError), session_scope(url) as s:
        review.save_edit(s, ids[0], "target", [make_span(tgt, 0, 2, "PER"), make_span(tgt, 1, 3, "LOC")], "ann", v.head)
    with pytest.raises(errors.QueryError, match="not in the project's labels"), session_scope(url) as s:
        review.save_edit(s, ids[0], "target", [make_span(tgt, 0, 2, "DATE")], "ann", v.head)
    with pytest.raises(errors.QueryError, match="comment"), session_scope(url) as s:
        review.set_status(s, ids[0], "ann", "flagged", "  ")
    with session_scope(url) as s:
        assert edits.history(s, ids[0]) == []
        same = review.save_edit(s, ids[0], "target", v.spans["target"], "ann", v.head, pending=v.pending["target"])
        again = review.save_edit(s, ids[0], "target", v.spans["target"], "ann", same.head, pending=v.pending["target"])
        assert same.changed and not again.changed and len(edits.history(s, ids[0])) == 1


def test_queue_orders_and_keyset_navigation(env) -> None:
    url, pid, ids, media = env
    with session_scope(url) as s:
        def walk(filt: QueueFilter) -> list[int]:
            out, cur = [], None
            for _ in range(len(ids)):
                cur = dbqueue.queue_next(s, pid, "ann", filt, cur, wrap=False)
                if cur is None:
                    break
                out.append(cur)
            return out

        # lowest confidence of the suggested (projected) spans: 0.2, 0.4, 0.6, 0.8, 0.9
        by_conf = walk(QueueFilter(order="confidence"))
        assert by_conf == [ids[1], ids[3], ids[2], ids[4], ids[0]]
        assert walk(QueueFilter(order="original")) == ids
        assert walk(QueueFilter(order="uncertainty")) == list(reversed(ids))  # 0.4, 0.3, ... first
        disagreement = walk(QueueFilter(order="disagreement"))
        assert set(disagreement[:2]) == {ids[1], ids[3]}  # student ORG vs projection PER
        rnd = walk(QueueFilter(order="random", seed=0))
        assert sorted(rnd) == sorted(ids) and rnd == walk(QueueFilter(order="random", seed=0))
        # backwards and wrap-around
        assert dbqueue.queue_next(s, pid, "ann", ALL, ids[2], backwards=True) == ids[1]
        assert dbqueue.queue_next(s, pid, "ann", ALL, ids[-1]) == ids[0]
        assert dbqueue.queue_next(s, pid, "ann", ALL, ids[-1], wrap=False) is None
        rows = dbqueue.queue_rows(s, pid, "ann", QueueFilter(order="uncertainty"), limit=2)
        assert [r.id for r in rows] == [ids[4], ids[3]] and rows[0].uncertainty == pytest.approx(0.4)


def test_disagreement_order_uses_the_students_stored_soft_value(env) -> None:
    url, pid, ids, media = env
    with session_scope(url) as s:
        # a newer student agrees with the projection everywhere (hard F1 would be 1) but
        # doubts items 0 and 2: its stored soft disagreement decides the order
        soft = {0: 0.9, 1: 0.1, 2: 0.6, 3: 0.05, 4: 0.2}
        for k, item_id in enumerate(ids):
            tgt = _item(k, 0.5, name="Maria" if k == 3 else "Anna").target
            span_sets.save_span_set(s, item_id, "target", "student:v2", [make_span(tgt, 0, 2, "PER", "student:v2", 0.7)], settings={"uncertainty": 0.1, "disagreement": soft[k]})
        squeue.ensure_stats(s, pid)
        rows = dbqueue.queue_rows(s, pid, "ann", QueueFilter(order="disagreement"), limit=5)
        assert [r.id for r in rows][:3] == [ids[0], ids[2], ids[4]]


def test_random_order_follows_the_seed(env) -> None:
    url, pid, ids, media = env
    with session_scope(url) as s:
        first = [r.id for r in dbqueue.queue_rows(s, pid, "ann", QueueFilter(order="random"), limit=10)]
        stats.reshuffle(s, pid, 12345)
        second = [r.id for r in dbqueue.queue_rows(s, pid, "ann", QueueFilter(order="random"), limit=10)]
        assert sorted(first) == sorted(second) == sorted(ids)
        stats.reshuffle(s, pid, 0)
        assert [r.id for r in dbqueue.queue_rows(s, pid, "ann", QueueFilter(order="random"), limit=10)] == first


def test_queue_filters(env) -> None:
    url, pid, ids, media = env
    with session_scope(url) as s:
        v = review.load_view(s, ids[0], "ann", media)
        review.accept_item(s, ids[0], "ann", v.head)
        review.set_status(s, ids[1], "ann", "flagged", "translation is wrong")
        review.set_status(s, ids[2], "ann", "skipped")
        tgt = v.item.target
        review.save_edit(s, ids[4], "target", [make_span(tgt, 4, 5, "MISC", "human:bob")], "bob", 0)

        def ids_of(**kw) -> set[int]:
            return {r.id for r in dbqueue.queue_rows(s, pid, "ann", QueueFilter(**{"order": "original", **kw}), limit=100)}

        assert ids_of(statuses=("new",)) == {ids[3], ids[4]}
        assert ids_of(statuses=("flagged",)) == {ids[1]}
        assert ids_of(statuses=("reviewed", "skipped")) == {ids[0], ids[2]}
        assert ids_of(statuses=STATUSES, labels=("MISC",)) == {ids[4]}  # bob's version counts
        assert ids_of(statuses=STATUSES, labels=("ORG",)) == {ids[1], ids[3]}  # the student's
        assert ids_of(statuses=STATUSES, annotator="bob") == {ids[4]}
        assert ids_of(statuses=STATUSES, text="Maria") == {ids[3]}
        assert ids_of(statuses=STATUSES, text="s2") == {ids[2]}
        assert ids_of(statuses=STATUSES, min_disagreement=0.5) == {ids[1], ids[3], ids[4]}
        # confidence: the suggestion's (the projection's), never the student's 0.7
        assert ids_of(statuses=STATUSES, max_confidence=0.5) == {ids[1], ids[3]}
        assert ids_of(statuses=STATUSES, min_confidence=0.55, max_confidence=0.85) == {ids[2], ids[4]}
        assert ids_of(statuses=STATUSES, min_confidence=0.65, max_confidence=0.75) == set()
        assert dbqueue.queue_count(s, pid, "ann", QueueFilter(statuses=("new",))) == 2
        assert dbqueue.queue_count(s, pid, "bob", QueueFilter(statuses=("new",))) == 5  # bob's own statuses
        progress = review_state.progress(s, pid)
        assert progress["ann"].done == 1 and progress["ann"].counts == {"reviewed": 1, "skipped": 1, "flagged": 1, "new": 2}
        assert progress["bob"].done == 0 and progress["bob"].total == 5
        assert review_state.annotators(s, pid) == ["ann", "bob"]
        assert db_items.load_item(s, ids[1]).flag_comment == "translation is wrong"
        assert db_items.find_item(s, pid, "s3") == ids[3] and db_items.find_item(s, pid, "#2") == ids[1] and db_items.find_item(s, pid, "x") is None


def test_new_pipeline_output_refreshes_the_queue_numbers(env) -> None:
    url, pid, ids, media = env
    with session_scope(url) as s:
        assert squeue.ensure_stats(s, pid) == 0
        tgt = review.load_view(s, ids[0], "ann", media).item.target
        span_sets.save_span_set(s, ids[0], "target", "projection:new", [make_span(tgt, 0, 2, "PER", "projection:new", 0.05)])
    with session_scope(url) as s:
        assert squeue.ensure_stats(s, pid) == 1
        assert dbqueue.queue_next(s, pid, "ann", QueueFilter(order="confidence")) == ids[0]


def test_apply_to_all_occurrences_appends_edits(env) -> None:
    url, pid, ids, media = env
    with session_scope(url) as s:
        candidates = db_items.occurrence_items(s, pid, "target", "Berlín", exclude_item_id=ids[0])
        assert candidates == ids[1:]
        report = review.apply_occurrences(s, pid, "ann", "target", ["Berlín"], "LOC", candidates)
        assert (report.items_changed, report.occurrences_changed, report.refused) == (4, 4, 0)
        v = review.load_view(s, ids[1], "ann", media)
        assert (4, 5, "LOC") in {x.key() for x in v.spans["target"]} and v.pending["target"] == {(0, 2, "PER")}
        assert edits.history(s, ids[1])[0].comment == "applied to all occurrences of 'Berlín'"
        again = review.apply_occurrences(s, pid, "ann", "target", ["Berlín"], "LOC", candidates)
        assert again.items_changed == 0


def test_agreement_data_adjudication_and_gold_export(env) -> None:
    url, pid, ids, media = env
    with session_scope(url) as s:
        tgt = review.load_view(s, ids[0], "ann", media).item.target
        for user, spans in (("ann", [make_span(tgt, 0, 2, "PER"), make_span(tgt, 4, 5, "LOC")]), ("bob", [make_span(tgt, 0, 2, "PER")])):
            v = review.load_view(s, ids[0], user, media)
            review.accept_item(s, ids[0], user, v.head, {"target": spans})
        v = review.load_view(s, ids[1], "ann", media)
        review.accept_item(s, ids[1], "ann", v.head)  # one annotator only: not compared
        annotations, lengths, external = adjudication.agreement_data(s, pid, "target")
        assert list(annotations) == [ids[0]] and set(annotations[ids[0]]) == {"ann", "bob"}
        assert lengths[ids[0]] == 6 and external[ids[0]] == "s0"
        assert [r.id for r in dbqueue.adjudication_queue(s, pid)] == [ids[0]]
        adjudication.save_adjudication(s, ids[0], "target", [make_span(tgt, 0, 2, "PER"), make_span(tgt, 4, 5, "LOC")], "rita", ["ann", "bob"])
        assert dbqueue.adjudication_queue(s, pid) == [] and adjudications.count_adjudicated(s, pid) == 1
        with pytest.raises(SpanError):
            adjudication.save_adjudication(s, ids[0], "target", [make_span(tgt, 0, 2, "PER"), make_span(tgt, 1, 3, "LOC")], "rita", [])
        gold = export.export_selection(s, pid, "adjudicated", media)
        assert [it.id for it in gold] == ["s0"]
        assert [(x.key(), x.source) for x in gold[0].target_spans] == [((0, 2, "PER"), "adjudicated"), ((4, 5, "LOC"), "adjudicated")]
        assert [x.key() for x in gold[0].source_spans] == [(0, 2, "PER"), (4, 5, "LOC")]
        history = review.item_history(s, ids[0])
        assert history[-1].action == "adjudicate" and history[-1].user == "rita" and "ann, bob" in history[-1].what
        with pytest.raises(Exception, match="append-only"):
            s.execute(text("DELETE FROM adjudications"))


def test_concurrent_writers_on_one_item_lose_nothing(env) -> None:
    """Two annotators save the same item at the same moment: both edits are stored."""
    url, pid, ids, media = env
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(user: str, label: str) -> None:
        try:
            v = view(url, ids[3], user, media)
            barrier.wait()
            with session_scope(url) as s:
                review.save_edit(s, ids[3], "target", [make_span(v.item.target, 4, 5, label, f"human:{user}")], user, v.head)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=("ann", "LOC")), threading.Thread(target=work, args=("bob", "ORG"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [s.key() for s in view(url, ids[3], "ann", media).spans["target"]] == [(4, 5, "LOC")]
    assert [s.key() for s in view(url, ids[3], "bob", media).spans["target"]] == [(4, 5, "ORG")]
    with get_engine(url).connect() as c:
        assert c.execute(text("SELECT count(*) FROM edits WHERE item_id = :i"), {"i": ids[3]}).scalar() == 2


def test_login_sessions(env) -> None:
    url, pid, ids, media = env
    from core.auth import hash_password

    with session_scope(url) as s:
        users.create_user(s, "rita", "reviewer", hash_password("secret-pass"))
        token = users.create_login_session(s, "rita", hours=1)
        assert users.user_for_session(s, token).role == "reviewer"
        assert users.user_for_session(s, token + "x") is None and users.user_for_session(s, None) is None
        stored = s.execute(text("SELECT token_sha256 FROM auth_sessions")).scalar()
        assert token not in stored and len(stored) == 64
        users.end_login_session(s, token)
        assert users.user_for_session(s, token) is None
        expired = users.create_login_session(s, "rita", hours=-1)
        assert users.user_for_session(s, expired) is None
        with pytest.raises(errors.NotFoundError):
            users.create_login_session(s, "nobody")


def test_history_tells_an_undo_as_the_change_it_reversed(env) -> None:
    url, pid, ids, media = env
    v = view(url, ids[0], "ann", media)
    tgt = v.item.target
    with session_scope(url) as s:
        h = review.save_edit(s, ids[0], "target", [*v.spans["target"], make_span(tgt, 4, 5, "LOC", "human:ann")], "ann", v.head).head
        h = review.save_edit(s, ids[0], "target", list(v.spans["target"]), "ann", h).head  # removes LOC again
        h = review.undo(s, ids[0], "ann", h).head  # restores LOC
        review.redo(s, ids[0], "ann", h)
        entries = review.item_history(s, ids[0])
    assert [e.what for e in entries] == [
        "added LOC 'Berlín'", "removed LOC 'Berlín'", "undo: added LOC 'Berlín'", "redo: removed LOC 'Berlín'",
    ]  # fmt: skip


def test_bulk_accept_of_confident_items_is_one_edit_each_and_undoable(env) -> None:
    from services import bulk

    url, pid, ids, media = env
    filt = QueueFilter()  # ann's new items; projection confidences 0.9, 0.2, 0.6, 0.4, 0.8
    with session_scope(url) as s:
        assert bulk.count_confident(s, pid, "ann", filt, 0.7) == 2
        report = bulk.accept_confident(s, pid, "ann", filt, 0.7)
    assert sorted(report.item_ids) == sorted([ids[0], ids[4]]) and report.conflicts == 0
    with session_scope(url) as s:
        assert [(e.action, e.comment) for e in edits.history(s, ids[0])] == [("accept", report.batch)]
        assert review_state.progress(s, pid, ["ann"])["ann"].done == 2
        assert bulk.count_confident(s, pid, "ann", filt, 0.7) == 0  # they left ann's "new" queue
        v = review.load_view(s, ids[4], "ann", media)
        review.save_edit(s, ids[4], "target", [], "ann", v.head)  # ann changes one of them afterwards
        assert bulk.undo_bulk(s, pid, "ann", report.batch) == 1  # only the untouched one is taken back
    assert view(url, ids[0], "ann", media).status == "new" and not view(url, ids[0], "ann", media).own["target"]
    assert view(url, ids[4], "ann", media).status == "reviewed"
    with session_scope(url) as s:
        assert db_items.load_item(s, ids[0]).status == "new"  # the shared status follows the ledger


def test_two_processes_saving_one_item_lose_no_edit_and_raise_nothing(env, tmp_path) -> None:
    """Two worker processes (two people) save 2 x 60 edits on the same item at once: every
    event is stored or answered as a conflict, none raises, none is lost."""
    import json
    import subprocess
    import sys

    from core.config import REPO_ROOT

    url, pid, ids, media = env
    script = """
import json, sys
from core.annotations.queue import QueueFilter
from db.engine import session_scope
from services.editor import handle_event
url, pid, item, user = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
stored = conflicts = 0
head = 0
last = None
for k in range(60):
    label = ["PER", "ORG"][k % 2]
    event = {"action": "edit", "op": "add", "side": "target", "item": item, "head": head,
             "spans": [{"start": 4, "end": 5, "label": label}], "client": user, "seq": k + 1}
    with session_scope(url) as s:
        out = handle_event(s, user, pid, event, QueueFilter(), ["PER", "ORG", "LOC", "MISC"])
    if out.edited_item is not None:
        stored += 1
        head = out.head
        last = label
    elif out.conflict is not None or (out.message and "changed since" in out.message[1]):
        conflicts += 1
    else:
        raise SystemExit(f"unexpected outcome {out}")
print(json.dumps({"stored": stored, "conflicts": conflicts, "last": last}))
"""
    procs = [subprocess.Popen([sys.executable, "-c", script, url, str(pid), str(ids[2]), user], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for user in ("ann", "bob")]  # fmt: skip
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["stored"] + r["conflicts"] == 60 for r in results)
    with session_scope(url) as s:
        rows = edits.history(s, ids[2])
        finals = {user: review.load_view(s, ids[2], user).spans["target"] for user in ("ann", "bob")}
    assert len(rows) <= sum(r["stored"] for r in results)  # a save of an unchanged version writes no row
    for user, r in zip(("ann", "bob"), results):
        assert [sp.label for sp in finals[user]] == [r["last"]]  # what each was told last is what is stored
    assert sum(r["stored"] for r in results) >= 114  # conflicts are the rare exception
