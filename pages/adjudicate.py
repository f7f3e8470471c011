"""Adjudicate (reviewers): merge the annotators' versions of an item into the gold spans.

The editor starts from the majority merge (core.annotations.merge.merge_versions); the reviewer
corrects it with the same keys as on the Review page, and Enter stores the result as the
adjudicated gold of every side (services.adjudication.save_adjudication) and opens the next item.
Changes before Enter are a draft kept in this browser session.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from core.annotations.agreement import f1, matches
from core.annotations.editor import editor_data
from core.annotations.edits import spans_from_payload
from core.annotations.ledger import ReviewView
from core.annotations.merge import merge_versions
from core.config import settings
from core.data import SpanError
from core.highlight import escape_markdown, label_colours, spans_html
from db.adjudications import count_adjudicated
from db.engine import session_scope
from db.errors import QueryError
from db.items import item_project
from db.projects import get_project
from db.queue import adjudication_queue
from pages._auth import project_or_info, require_role
from pages._common import ensure_navigation
from pages.components.span_editor import pending_event, span_editor
from services.adjudication import save_adjudication
from services.review import load_view

URL = settings().db_url
KEY = "adjudication_editor"


def _versions(view: ReviewView, side: str) -> dict[str, list]:
    """Each annotator's spans of one side (the reviewer's own review counts as one too)."""
    out = {name: sides[side] for name, sides in view.others.items() if side in sides and view.other_status.get(name) == "reviewed"}
    if view.status == "reviewed" and view.own.get(side):
        out[view.user] = view.spans[side]
    return out


def _new_draft(view: ReviewView) -> dict:
    draft: dict = {"item": view.id, "spans": {}, "from": {}, "undo": [], "redo": []}
    for side in view.spans:
        versions = _versions(view, side)
        sentence = view.sentence(side)
        if side in view.adjudicated:
            spans = view.adjudicated[side].spans
        elif versions:
            spans = merge_versions(sentence, versions).spans
        else:
            spans = view.spans[side]
        draft["spans"][side] = [dataclasses.asdict(s) for s in spans]
        draft["from"][side] = sorted(versions)
    return draft


def _spans(draft: dict, side: str) -> list:
    from core.data import Span

    return [Span(**d) for d in draft["spans"][side]]


def _move(queue: list[int], item_id: int, step: int) -> int | None:
    if not queue:
        return None
    if item_id not in queue:
        return queue[0]
    i = queue.index(item_id) + step
    return queue[i] if 0 <= i < len(queue) else None


def _on_event() -> None:
    event = pending_event(KEY)
    ctx = st.session_state.get("adj_ctx")
    if not event or not ctx:
        return
    st.session_state.adj_ack = {"client": event.get("client"), "seq": event.get("seq")}
    st.session_state.adj_message = None
    draft = st.session_state.get("adj_draft")
    action = event.get("action")
    if draft is None or event.get("item") != draft["item"]:
        st.session_state.adj_message = ("error", "The item changed meanwhile; nothing was done.")
        return
    sides = ctx["sentences"]
    if action == "edit":
        side = event.get("side")
        try:
            spans = spans_from_payload(sides[side], event.get("spans") or [], ctx["labels"], "adjudicated", f"{side} spans")
        except (SpanError, KeyError) as exc:
            st.session_state.adj_message = ("error", f"Not changed: {exc}")
            return
        draft["undo"].append((side, draft["spans"][side]))
        draft["redo"].clear()
        draft["spans"][side] = [dataclasses.asdict(s) for s in spans]
        st.session_state.adj_saved = "Draft changed · Enter stores it as gold"
    elif action in ("undo", "redo"):
        stack, other = (draft["undo"], draft["redo"]) if action == "undo" else (draft["redo"], draft["undo"])
        if not stack:
            st.session_state.adj_message = ("info", f"Nothing to {action} in this draft.")
            return
        side, spans = stack.pop()
        other.append((side, draft["spans"][side]))
        draft["spans"][side] = spans
    elif action == "accept_all":
        try:
            with session_scope(URL) as s:
                for side in draft["spans"]:
                    save_adjudication(s, draft["item"], side, _spans(draft, side), ctx["user"], draft["from"].get(side, []))
        except (SpanError, QueryError) as exc:
            st.session_state.adj_message = ("error", f"Not stored: {exc}")
            return
        st.session_state.adj_saved = f"Stored the adjudicated gold of item {ctx['external_id']}"
        nxt = _move(ctx["queue"], draft["item"], 1)
        if nxt is not None:
            st.session_state.adjudicate_item = nxt
    elif action in ("next", "prev", "skip"):
        nxt = _move(ctx["queue"], draft["item"], -1 if action == "prev" else 1)
        if nxt is None:
            st.session_state.adj_message = ("info", "No other item in this list.")
        else:
            st.session_state.adjudicate_item = nxt
    else:
        st.session_state.adj_message = ("info", "Flag items on the Review page.")


def main() -> None:
    st.title("Adjudicate")
    user = require_role("reviewer", URL)
    project_id = project_or_info(user)
    if project_id is None:
        return
    show_done = st.toggle("Include items already adjudicated", key="adj_show_done")
    with session_scope(URL) as s:
        project = get_project(s, project_id)
        rows = adjudication_queue(s, project_id, only_open=not show_done)
        n_done = count_adjudicated(s, project_id)
    st.caption(f"{len(rows)} item(s) reviewed by two or more annotators{'' if show_done else ' and not adjudicated yet'} · {n_done} adjudicated in {escape_markdown(project.name)}")
    queue = [r.id for r in rows]
    wanted = st.session_state.get("adjudicate_item")
    if wanted not in queue:
        with session_scope(URL) as s:
            owner = item_project(s, wanted) if wanted is not None else None
        if owner != project_id:
            wanted = queue[0] if queue else None
    if wanted is None:
        st.info("Nothing to adjudicate: an item appears here once at least two annotators reviewed it.")
        return
    labels = {r.id: f"{r.external_id} · disagreement {r.disagreement:.2f}" if r.disagreement is not None else r.external_id for r in rows}
    if wanted in labels:
        st.session_state.adj_pick = wanted
        st.selectbox("Item", queue, format_func=labels.__getitem__, key="adj_pick", on_change=lambda: st.session_state.update(adjudicate_item=st.session_state.adj_pick))
    with session_scope(URL) as s:
        view = load_view(s, wanted, user.name)
    draft = st.session_state.get("adj_draft")
    if draft is None or draft["item"] != view.id:
        draft = st.session_state.adj_draft = _new_draft(view)
        st.session_state.adj_saved = None
    sentences = {side: view.sentence(side) for side in view.spans}
    st.session_state.adj_ctx = {
        "user": user.name, "labels": list(project.labels), "sentences": sentences, "queue": queue,
        "external_id": view.record.external_id,
    }  # fmt: skip
    shown = dataclasses.replace(
        view,
        spans={side: _spans(draft, side) for side in draft["spans"]},
        pending={side: frozenset() for side in draft["spans"]},
        own={side: True for side in draft["spans"]},
        undo_side="draft" if draft["undo"] else None,
        redo_side="draft" if draft["redo"] else None,
        status="adjudicated" if view.adjudicated else "open",
    )
    data = editor_data(
        shown,
        list(project.labels),
        ack=st.session_state.get("adj_ack"),
        saved=st.session_state.get("adj_saved"),
        message=st.session_state.get("adj_message"),
        position=f"{queue.index(view.id) + 1} of {len(queue)}" if view.id in queue else None,
        prefetch=False,
    )
    span_editor(data, key=KEY, on_event=_on_event)

    colours = label_colours(project.labels)
    for side in draft["spans"]:
        versions = _versions(view, side)
        if not versions:
            continue
        merged = _spans(draft, side)
        st.markdown(f"**{'Translation' if side == 'target' else 'Source'}: annotators' versions**")
        table = []
        for name, spans in sorted(versions.items()):
            st.caption(name)
            st.html(spans_html(sentences[side], spans, colours))
            table.append({"Annotator": name, "Spans": len(spans), "Exact F1 vs draft": round(f1(matches(spans, merged), len(spans), len(merged)), 3)})
        st.dataframe(pd.DataFrame(table), hide_index=True, key=f"adj_table_{side}")
        if side in view.adjudicated:
            a = view.adjudicated[side]
            st.caption(f"Adjudicated by {escape_markdown(a.user)} on {a.created_at:%Y-%m-%d %H:%M} from {escape_markdown(', '.join(a.merged_from)) or '—'}")


ensure_navigation()
main()
