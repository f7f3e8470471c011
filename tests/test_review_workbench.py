"""The workbench's server side (services.editor, core.annotations.editor): editor payloads and editor events end to
end on a real database, as the Review page and ``bench review`` run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.annotations import ledger
from core.annotations.editor import editor_data
from core.annotations.queue import STATUSES, QueueFilter
from core.data import Item, Link, Sentence, make_span
from db import edits, projects
from db import items as db_items
from db import queue as dbqueue
from db.engine import dispose_engine, init_db, session_scope
from services import editor, review
from services import queue as squeue
from services.editor import Correction

LABELS = ["PER", "ORG", "LOC", "MISC"]


@pytest.fixture()
def env(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LABELBRIDGE_DATA", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'wb.db'}"
    init_db(url)
    batch = []
    for i, (name, conf) in enumerate([("Anna", 0.9), ("Berta", 0.3), ("Carla", 0.6)]):
        src = Sentence.from_words([name, "lives", "in", "Berlin", "."], "en")
        tgt = Sentence.from_words([name, "wohnt", "in", "Berlin", "."], "de")
        batch.append(
            Item(f"i{i}", src, [make_span(src, 0, 1, "PER"), make_span(src, 3, 4, "LOC")], tgt,
                 [make_span(tgt, 0, 1, "PER", "projection:heuristic", conf)], alignment=[Link(k, k) for k in range(5)])
        )  # fmt: skip
    with session_scope(url) as s:
        pid = projects.create_project(s, "WB", "en", "de", LABELS).id
        db_items.import_items(s, pid, batch, tmp_path / "media", target_span_source=None)
        ids = db_items.item_ids(s, pid)
        squeue.ensure_stats(s, pid)
    yield url, pid, ids
    dispose_engine(url)


def load(url: str, item_id: int, user: str = "ann") -> ledger.ReviewView:
    with session_scope(url) as s:
        return review.load_view(s, item_id, user)


def in_session(url: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202
    """Run a services.editor function in its own transaction, as the page's callbacks do."""
    with session_scope(url) as s:
        return fn(s, *args, **kwargs)


def payload(spans) -> list[dict]:
    return [{"start": s.start, "end": s.end, "label": s.label, "source": s.source, "confidence": s.confidence, "pending": False} for s in spans]


def test_editor_data_carries_tokens_spans_links_and_unprojected(env) -> None:
    url, pid, ids = env
    data = editor_data([load(url, ids[1]), load(url, ids[2])], LABELS, ack={"client": "c", "seq": 3}, saved="Saved", position="#2 of 3",
                       queue={"index": 1, "total": 3}, reset=4)  # fmt: skip
    json.dumps(data)  # what the component receives must be JSON
    first = data["items"][0]
    assert first["item"]["id"] == ids[1] and first["item"]["head"] == 0 and first["item"]["position"] == "#2 of 3"
    assert [it["item"]["id"] for it in data["items"]] == [ids[1], ids[2]]  # the next item travels with it
    assert data["queue"] == {"index": 1, "total": 3} and data["reset"] == 4 and data["prefetch"] is True
    assert [lab["name"] for lab in data["labels"]] == LABELS and data["labels"][0]["colour"].startswith("#")
    target = first["sides"]["target"]
    assert target["tokens"] == ["Berta", "wohnt", "in", "Berlin", "."] and target["spaces"] == [True, True, True, True, False]
    assert target["spans"] == [{"start": 0, "end": 1, "label": "PER", "source": "projection:heuristic", "confidence": 0.3, "pending": True}]
    assert target["suggestion"] == "projection:heuristic" and not target["own"]
    assert first["origins"] == [0]  # the PER span came from source span 0 over the word links
    assert first["unprojected"] == [{"start": 3, "end": 4, "label": "LOC", "text": "Berlin"}]
    assert first["links"][:2] == [[0, 0], [1, 1]] and data["ack"] == {"client": "c", "seq": 3}


def test_label_then_accept_and_next_follow_the_queue(env) -> None:
    url, pid, ids = env
    filt = QueueFilter()  # new items, lowest confidence first: i1 (0.3), i2 (0.6), i0 (0.9)
    with session_scope(url) as s:
        assert dbqueue.queue_next(s, pid, "ann", filt) == ids[1]
    v = load(url, ids[1])
    tgt = v.item.target
    before = payload(v.spans["target"])
    after = before + [{"start": 3, "end": 4, "label": "LOC", "source": "human:ann", "confidence": None, "pending": False}]
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "edit", "op": "add", "side": "target", "item": ids[1], "head": v.head, "spans": after, "before": before}, filt, LABELS)
    assert out.item_id == ids[1] and out.message is None and out.saved.startswith("Saved") and "added LOC 'Berlin'" in out.saved
    assert out.correction is not None and out.correction.words == ("Berlin",) and out.correction.label == "LOC"
    v = load(url, ids[1])
    assert [s.key() for s in v.spans["target"]] == [(0, 1, "PER"), (3, 4, "LOC")] and v.status == "new"
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "accept_all", "item": ids[1], "head": v.head}, filt, LABELS)
    assert out.item_id == ids[2] and out.saved.endswith("item accepted")
    assert load(url, ids[1]).status == "reviewed"
    # the correction is offered for the other items with the same string
    correction = Correction("target", ("Berlin",), "LOC", ids[1])
    found = in_session(url, editor.find_correction_items, pid, correction)
    assert found == [ids[0], ids[2]]
    report = in_session(url, editor.apply_correction, "ann", pid, correction, found)
    assert report.items_changed == 2 and (3, 4, "LOC") in {s.key() for s in load(url, ids[0]).spans["target"]}
    assert tgt.words[3] == "Berlin"


def test_refused_edits_and_stale_heads_come_back_as_messages(env) -> None:
    url, pid, ids = env
    filt = QueueFilter()
    v = load(url, ids[0])
    overlapping = [{"start": 0, "end": 2, "label": "PER"}, {"start": 1, "end": 3, "label": "LOC"}]
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "edit", "op": "add", "side": "target", "item": ids[0], "head": v.head, "spans": overlapping}, filt, LABELS)
    assert out.message[0] == "error" and "overlap" in out.message[1]
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "edit", "op": "add", "side": "target", "item": ids[0], "head": v.head, "spans": [{"start": 0, "end": 1, "label": "DATE"}]}, filt, LABELS)
    assert out.message[0] == "error" and "DATE" in out.message[1]
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "bogus", "item": ids[0], "head": 0}, filt, LABELS)
    assert out.message[0] == "error"
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "undo", "item": ids[0], "head": v.head}, filt, LABELS)
    assert out.message[0] == "info" and "nothing to undo" in out.message[1]
    with session_scope(url) as s:
        assert edits.history(s, ids[0]) == []


def test_two_tabs_conflict_then_merge_on_top(env) -> None:
    url, pid, ids = env
    filt = QueueFilter(statuses=STATUSES, order="original")
    tab1 = load(url, ids[0])
    tab2 = load(url, ids[0])
    base = payload(tab1.spans["target"])
    one = base + [{"start": 3, "end": 4, "label": "LOC"}]
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "edit", "op": "add", "side": "target", "item": ids[0], "head": tab1.head, "spans": one, "before": base}, filt, LABELS)
    assert out.saved
    two = [{"start": 0, "end": 1, "label": "ORG"}]  # tab 2 relabels PER -> ORG, not knowing about LOC
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "edit", "op": "relabel", "side": "target", "item": ids[0], "head": tab2.head, "spans": two, "before": base}, filt, LABELS)
    assert out.conflict is not None and out.message[0] == "error"
    assert [c[1] for c in out.conflict.changes] == ["ann"] and "added LOC" in out.conflict.changes[0][2]
    assert [s.key() for s in out.conflict.theirs] == [(0, 1, "PER"), (3, 4, "LOC")]
    assert [s.key() for s in load(url, ids[0]).spans["target"]] == [(0, 1, "PER"), (3, 4, "LOC")]  # nothing lost
    merged = in_session(url, editor.resolve_conflict, "ann", out.conflict)
    assert merged.saved and merged.message is None
    assert [s.key() for s in load(url, ids[0]).spans["target"]] == [(0, 1, "ORG"), (3, 4, "LOC")]


def test_skip_flag_and_navigation(env) -> None:
    url, pid, ids = env
    filt = QueueFilter(order="original")
    v = load(url, ids[0])
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "skip", "item": ids[0], "head": v.head}, filt, LABELS)
    assert out.item_id == ids[1] and load(url, ids[0]).status == "skipped"
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "flag", "item": ids[1], "head": 0, "comment": "wrong translation"}, filt, LABELS)
    assert out.item_id == ids[2] and load(url, ids[1]).flag_comment == "wrong translation"
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "flag", "item": ids[2], "head": 0, "comment": ""}, filt, LABELS)
    assert out.message[0] == "error" and out.item_id == ids[2]
    assert in_session(url, editor.handle_event, "ann", pid, {"action": "prev", "item": ids[2], "head": 0}, QueueFilter(statuses=STATUSES, order="original"), LABELS).item_id == ids[1]
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "accept_all", "item": ids[2], "head": 0}, filt, LABELS)
    assert out.queue_empty and out.item_id == ids[2]
    flagged = QueueFilter(statuses=("flagged",), order="original")
    with session_scope(url) as s:
        assert [r.id for r in dbqueue.queue_rows(s, pid, "ann", flagged)] == [ids[1]]


def test_a_repeated_event_is_applied_once_and_answered_the_same(env) -> None:
    url, pid, ids = env
    filt = QueueFilter()
    v = load(url, ids[1])
    spans = payload(v.spans["target"]) + [{"start": 3, "end": 4, "label": "LOC"}]
    event = {"action": "edit", "op": "add", "side": "target", "item": ids[1], "head": v.head, "spans": spans, "client": "tab-1", "seq": 7}
    first = in_session(url, editor.handle_event, "ann", pid, event, filt, LABELS)
    again = in_session(url, editor.handle_event, "ann", pid, event, filt, LABELS)  # a retry after a lost answer
    assert first.edited_item == ids[1] and not first.duplicate and again.duplicate
    assert (again.head, again.status, again.saved) == (first.head, first.status, first.saved)
    accept = {"action": "accept_all", "item": ids[1], "head": first.head, "client": "tab-1", "seq": 8}
    a1 = in_session(url, editor.handle_event, "ann", pid, accept, filt, LABELS)
    a2 = in_session(url, editor.handle_event, "ann", pid, accept, filt, LABELS)
    assert a1.item_id == a2.item_id == ids[2] and a2.duplicate
    with session_scope(url) as s:
        assert [e.action for e in edits.history(s, ids[1])] == ["edit", "accept"]  # once each, however often sent
    other = in_session(url, editor.handle_event, "ann", pid, {**event, "client": "tab-2"}, filt, LABELS)  # another tab, same seq
    assert not other.duplicate and other.message[0] == "error"  # its stale head is a conflict, not a replay


def test_the_conflict_dialog_can_apply_a_relabel(env) -> None:
    url, pid, ids = env
    filt = QueueFilter(statuses=STATUSES, order="original")
    tab1, tab2 = load(url, ids[0]), load(url, ids[0])
    base = payload(tab1.spans["target"])
    in_session(url, editor.handle_event, "ann", pid, {"action": "edit", "op": "add", "side": "target", "item": ids[0], "head": tab1.head,
                                                      "spans": base + [{"start": 3, "end": 4, "label": "LOC"}], "before": base}, filt, LABELS)  # fmt: skip
    # tab 2 turns Anna (PER, stored) into ORG and Berlin into MISC: both overlap stored spans
    mine = [{"start": 0, "end": 1, "label": "ORG"}, {"start": 3, "end": 4, "label": "MISC"}]
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "edit", "op": "relabel", "side": "target", "item": ids[0],
                                                            "head": tab2.head, "spans": mine, "before": base}, filt, LABELS)  # fmt: skip
    plain = in_session(url, editor.resolve_conflict, "ann", out.conflict)
    assert plain.message[0] == "warning" and "MISC [3, 4)" in plain.message[1]  # the overlapping addition was left out
    assert [s.key() for s in load(url, ids[0]).spans["target"]] == [(0, 1, "ORG"), (3, 4, "LOC")]
    again = in_session(url, editor.resolve_conflict, "ann", out.conflict)  # nothing new to apply: never "saved"
    assert again.saved is None and "Nothing was saved" in again.message[1]
    mine_wins = in_session(url, editor.resolve_conflict, "ann", out.conflict, prefer_mine=True)
    assert mine_wins.saved and mine_wins.message is None
    assert [s.key() for s in load(url, ids[0]).spans["target"]] == [(0, 1, "ORG"), (3, 4, "MISC")]


def test_a_relabelled_span_is_the_persons_without_machine_confidence(env) -> None:
    url, pid, ids = env
    v = load(url, ids[1])
    relabel = [{"start": 0, "end": 1, "label": "ORG", "source": "human:ann", "confidence": 0.3, "pending": False}]
    out = in_session(url, editor.handle_event, "ann", pid, {"action": "edit", "op": "relabel", "side": "target", "item": ids[1],
                                                            "head": v.head, "spans": relabel}, QueueFilter(), LABELS)  # fmt: skip
    assert out.saved
    (span,) = load(url, ids[1]).spans["target"]
    assert (span.label, span.source, span.confidence) == ("ORG", "human:ann", None)
    shown = editor_data(load(url, ids[1]), LABELS)["items"][0]["sides"]["target"]["spans"][0]
    assert shown["confidence"] is None
