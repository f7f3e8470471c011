"""The review workbench pages driven headless with AppTest: the Review page's queue
(order, filters, jump, progress), the Agreement and Adjudicate pages, and the login with
roles (LABELBRIDGE_AUTH=on)."""

from __future__ import annotations

import pytest

from core.data import Item, Link, Sentence, make_span
from db import items as db_items
from db import projects, users
from services import review
from tests.apptest_support import open_app

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

LABELS = ["PER", "ORG", "LOC", "MISC"]


def _items() -> list[Item]:
    out = []
    for i, (name, place, conf) in enumerate([("Anna", "Berlin", 0.9), ("Berta", "Paris", 0.2), ("Carla", "Rome", 0.6), ("Dora", "Berlin", 0.4)]):
        src = Sentence.from_words([name, "lives", "in", place, "."], "en")
        tgt = Sentence.from_words([name, "vive", "en", place, "."], "es")
        out.append(
            Item(f"s{i}", src, [make_span(src, 0, 1, "PER"), make_span(src, 3, 4, "LOC")], tgt,
                 [make_span(tgt, 0, 1, "PER", "projection:heuristic", conf)], alignment=[Link(k, k) for k in range(5)])
        )  # fmt: skip
    return out


@pytest.fixture()
def project(lb_env):
    from db.engine import init_db, session_scope

    init_db()
    with session_scope() as s:
        pid = projects.create_project(s, "Queue", "en", "es", LABELS).id
        db_items.import_items(s, pid, _items(), target_span_source=None)
        ids = db_items.item_ids(s, pid)
    return pid, ids


def start(page: str | None = None, project: int | None = None, item: int | None = None) -> AppTest:
    return open_app(page, project=project, item=item)


def shown(at: AppTest) -> int:
    return at.session_state["item_id"]


def frame(at: AppTest, *columns: str):
    """The first dataframe shown with these columns."""
    for d in at.dataframe:
        if set(columns) <= set(d.value.columns):
            return d.value
    raise AssertionError(f"no dataframe with columns {columns}: {[list(d.value.columns) for d in at.dataframe]}")


def progress_text(at: AppTest) -> str:
    return "\n".join(p.proto.text for p in at.get("progress"))


def accept(item_id: int, user: str, spans=None) -> None:
    from db.engine import session_scope

    with session_scope() as s:
        v = review.load_view(s, item_id, user)
        review.accept_item(s, item_id, user, v.head, spans)


def test_review_queue_order_filters_jump_and_progress(project) -> None:
    from db.engine import session_scope

    pid, ids = project
    at = start("pages/review.py", project=pid)
    assert shown(at) == ids[1]  # lowest confidence first (0.2)
    assert "Your progress: 0 / 4 reviewed" in progress_text(at)

    at.sidebar.selectbox(key="q_order").set_value("original").run()
    assert shown(at) == ids[0]
    at.sidebar.text_input(key="q_text").input("Rome").run()
    assert shown(at) == ids[2]
    at.sidebar.text_input(key="q_text").input("").run()

    accept(ids[0], "reviewer")
    with session_scope() as s:
        review.set_status(s, ids[3], "reviewer", "flagged", "check the name")
    at.sidebar.multiselect(key="q_status").set_value(["flagged"]).run()
    assert shown(at) == ids[3]
    assert any("You flagged this item: check the name" in w.value for w in at.warning)
    at.sidebar.multiselect(key="q_status").set_value(["new"]).run()
    assert shown(at) in (ids[1], ids[2])
    at.sidebar.slider(key="q_conf").set_value((0.5, 1.0)).run()
    assert shown(at) == ids[2]  # the only new item with confidence in [0.5, 1]

    at.sidebar.text_input(key="q_jump").input("s3").run()
    assert shown(at) == ids[3]
    at.sidebar.text_input(key="q_jump").input("#1").run()
    assert shown(at) == ids[0]
    at.sidebar.text_input(key="q_jump").input("nope").run()
    assert shown(at) == ids[0]
    assert not at.exception, [e.message for e in at.exception]
    assert at.query_params["item"] == str(ids[0])
    assert "Your progress: 1 / 4 reviewed" in progress_text(at)
    at.toggle(key="history_on").set_value(True).run()
    assert frame(at, "Who", "What")["Action"].tolist() == ["accept"]
    at.toggle(key="cmp_on").set_value(True).run()
    assert any("projection:heuristic · 1 span(s) · exact F1 vs yours 1.00" in c.value.replace("\\", "") for c in at.caption)  # escaped for Markdown


def test_review_label_filter_and_annotator_filter(project) -> None:
    from db.engine import session_scope

    pid, ids = project
    with session_scope() as s:
        v = review.load_view(s, ids[2], "bob")
        review.save_edit(s, ids[2], "target", [*v.spans["target"], make_span(v.item.target, 1, 2, "MISC", "human:bob")], "bob", v.head)
    at = start("pages/review.py", project=pid)
    at.sidebar.multiselect(key="q_labels").set_value(["MISC"]).run()
    assert shown(at) == ids[2]
    at.sidebar.multiselect(key="q_labels").set_value([]).run()
    at.sidebar.selectbox(key="q_annot").set_value("bob").run()
    assert shown(at) == ids[2]
    assert any("bob (new)" in c.value for c in at.caption)
    at.sidebar.slider(key="q_dis").set_value(0.3).run()
    assert shown(at) == ids[2]  # bob's version disagrees with the projection
    assert not at.exception


def test_agreement_page_shows_exact_and_partial_f1(project) -> None:
    from db.engine import session_scope

    pid, ids = project
    with session_scope() as s:
        tgt = review.load_view(s, ids[0], "ann").item.target
    accept(ids[0], "ann", {"target": [make_span(tgt, 0, 1, "PER"), make_span(tgt, 3, 4, "LOC")]})
    accept(ids[0], "bob", {"target": [make_span(tgt, 0, 1, "PER"), make_span(tgt, 2, 4, "LOC")]})
    at = start("pages/agreement.py", project=pid)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Exact F1 (mean over pairs)"] == "0.500"
    assert metrics["Partial F1 (mean over pairs)"] == "1.000"
    assert metrics["Items compared"] == "1"
    pairs = frame(at, "A", "B", "Items")
    assert pairs.iloc[0].to_dict() == {"A": "ann", "B": "bob", "Items": 1, "Exact F1": 0.5, "Partial F1": 1.0}
    labels = frame(at, "Label", "Spans A").set_index("Label")
    assert labels.loc["LOC", "Exact F1"] == 0.0 and labels.loc["LOC", "Partial F1"] == 1.0 and labels.loc["PER", "Exact F1"] == 1.0
    per_item = frame(at, "Item", "Annotators")
    assert per_item.iloc[0]["Item"] == "s0"


def test_adjudicate_page_starts_from_the_majority(project) -> None:
    from db.engine import session_scope

    pid, ids = project
    with session_scope() as s:
        tgt = review.load_view(s, ids[0], "ann").item.target
    accept(ids[0], "ann", {"target": [make_span(tgt, 0, 1, "PER"), make_span(tgt, 3, 4, "LOC")]})
    accept(ids[0], "bob", {"target": [make_span(tgt, 0, 1, "PER")]})
    accept(ids[0], "cy", {"target": [make_span(tgt, 0, 1, "PER"), make_span(tgt, 3, 4, "LOC")]})
    at = start("pages/adjudicate.py", project=pid)
    assert not at.exception, [e.message for e in at.exception]
    draft = at.session_state["adj_draft"]
    assert draft["item"] == ids[0] and draft["from"]["target"] == ["ann", "bob", "cy"]
    assert [(d["start"], d["end"], d["label"]) for d in draft["spans"]["target"]] == [(0, 1, "PER"), (3, 4, "LOC")]
    table = frame(at, "Annotator", "Exact F1 vs draft").set_index("Annotator")
    assert table.loc["bob", "Exact F1 vs draft"] == pytest.approx(2 / 3, abs=1e-3)


def test_login_roles_and_pages(project, monkeypatch) -> None:
    from core.auth import hash_password
    from db.engine import session_scope

    pid, ids = project
    monkeypatch.setenv("LABELBRIDGE_AUTH", "on")
    with session_scope() as s:
        users.create_user(s, "ann", "annotator", hash_password("ann-password"))
        users.create_user(s, "root", "admin", hash_password("root-password"))
    at = start(project=pid)
    assert [t.value for t in at.title] == ["Log in to LabelBridge"]
    at.text_input(key="login_name").input("ann")
    at.text_input(key="login_password").input("wrong")
    at.button[0].click().run()
    assert any("wrong password" in e.value for e in at.error)
    at.text_input(key="login_name").input("ann")
    at.text_input(key="login_password").input("ann-password")
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == ["Review"]
    assert any("Logged in as **ann** (annotator)" in m.value for m in at.sidebar.markdown)
    assert "q_annot" not in at.session_state  # annotators see only their own work
    for page in ("pages/users.py", "pages/projects.py", "pages/agreement.py", "pages/adjudicate.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in an annotator's navigation
            at.switch_page(page)

    admin = start(project=pid)
    admin.text_input(key="login_name").input("root")
    admin.text_input(key="login_password").input("root-password")
    admin.button[0].click().run()
    admin.switch_page("pages/users.py").run()
    assert not admin.exception, [e.message for e in admin.exception]
    assert set(admin.dataframe[0].value["User"]) == {"ann", "root"}
    admin.text_input(key="new_user_name").input("rita")
    admin.text_input(key="new_user_password").input("rita-password")
    admin.selectbox(key="new_user_role").set_value("reviewer")
    admin.button(key="FormSubmitter:add_user-Add user").click().run()
    assert any("Added rita (reviewer)" in s_.value for s_ in admin.success)


def test_single_user_mode_needs_no_login(project, monkeypatch) -> None:
    monkeypatch.delenv("LABELBRIDGE_AUTH", raising=False)
    pid, ids = project
    at = start("pages/users.py", project=pid)
    assert any("Single-user mode" in i.value for i in at.info)


def test_review_offers_a_correction_for_the_other_occurrences(project) -> None:
    from db.engine import session_scope
    from services.editor import Correction

    pid, ids = project
    at = start("pages/review.py", project=pid, item=ids[0])
    at.session_state["review_correction"] = Correction("target", ("Berlin",), "LOC", ids[0])
    at.run()
    assert any("You marked ‘Berlin’ as **LOC**" in m.value for m in at.markdown)
    at.button(key="occ_find").click().run()
    assert any("occurs in **1** other item(s)" in m.value for m in at.markdown)
    at.button(key="occ_apply").click().run()
    assert not at.exception, [e.message for e in at.exception]
    with session_scope() as s:
        spans = review.load_view(s, ids[3], "reviewer").spans["target"]
    assert (3, 4, "LOC") in {x.key() for x in spans}  # "Dora vive en Berlin": the other Berlin
    assert "review_correction" not in at.session_state


def test_review_conflict_panel_applies_my_change_on_top(project) -> None:
    from db.engine import session_scope
    from services.editor import ConflictInfo

    pid, ids = project
    with session_scope() as s:
        v = review.load_view(s, ids[0], "reviewer")
        tgt = v.item.target
        stored = review.save_edit(s, ids[0], "target", [*v.spans["target"], make_span(tgt, 3, 4, "LOC", "human:reviewer")], "reviewer", v.head)
    base = list(v.spans["target"])
    mine = [*base, make_span(tgt, 1, 2, "MISC", "human:reviewer")]
    at = start("pages/review.py", project=pid, item=ids[0])
    with session_scope() as s:
        theirs = review.load_view(s, ids[0], "reviewer").spans["target"]
    at.session_state["review_conflict"] = ConflictInfo(ids[0], "target", base, mine, frozenset(), theirs, stored.head, [], "edit")
    at.run()
    assert any("not saved" in e.value for e in at.error)
    at.button(key="conflict_mine").click().run()
    assert not at.exception, [e.message for e in at.exception]
    with session_scope() as s:
        now = review.load_view(s, ids[0], "reviewer").spans["target"]
    assert {x.key() for x in now} == {(0, 1, "PER"), (1, 2, "MISC"), (3, 4, "LOC")}


def test_student_uncertainty_order_is_offered_only_with_a_student(project) -> None:
    from db.engine import session_scope
    from db.span_sets import save_span_set

    pid, ids = project
    at = start("pages/review.py", project=pid)
    assert "uncertainty" not in at.sidebar.selectbox(key="q_order").options
    with session_scope() as s:
        tgt = review.load_view(s, ids[0], "ann").record.target
        save_span_set(s, ids[0], "target", "student:1", [make_span(tgt, 0, 1, "PER", "student:1", 0.5)], settings={"uncertainty": 0.5})
    at.run()
    assert "Student uncertainty (highest first)" in at.sidebar.selectbox(key="q_order").options


def test_user_strings_are_shown_literally_not_as_markdown(project, monkeypatch) -> None:
    from core.highlight import escape_markdown
    from services.editor import Correction

    pid, ids = project
    token = "![b](http://127.0.0.1:8998/b.png)"  # an image a browser would fetch if rendered
    at = start("pages/review.py", project=pid, item=ids[0])
    at.session_state["review_correction"] = Correction("target", (token,), "LOC", ids[0])
    at.run()
    shown = "\n".join(m.value for m in at.markdown)
    assert escape_markdown(token) in shown and token not in shown
    monkeypatch.setenv("LABELBRIDGE_AUTH", "off")
    at = start("pages/review.py", project=pid, item=ids[0])
    at.sidebar.text_input(key="user_name").input("**bold** [x](http://evil/)").run()
    assert not at.exception
