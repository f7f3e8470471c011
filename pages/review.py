"""Review: the workbench people spend their day in.

One item at a time in the span editor (pages/components/span_editor): the source with its
entities, the translation with the projected spans (confidence and provenance), the lines
between them, the image; keyboard editing on both sides. Every action is stored at once
as the person's own version (services.review) and the editor shows a "saved" mark; undo/redo
work after reloads; a change made meanwhile in another tab is shown as a conflict for the
person to decide. The sidebar holds the queue: progress, filters, order, jump to an item.
"""

from __future__ import annotations

import streamlit as st

from core.annotations.agreement import f1, matches
from core.annotations.editor import editor_data
from core.annotations.ledger import ReviewView
from core.annotations.queue import ORDERINGS, STATUSES, QueueFilter
from core.config import settings
from core.highlight import label_colours, spans_html
from core.media import thumbnail_data_uri
from db.engine import session_scope
from db.items import find_item, item_project
from db.projects import ProjectInfo, get_project
from db.queue import queue_next
from db.review_state import Progress, annotators, progress
from db.stats import reshuffle
from pages._auth import project_or_info, require_role
from pages._common import ensure_navigation
from pages.components.span_editor import pending_event, span_editor
from services.editor import apply_correction, find_correction_items, handle_event, resolve_conflict
from services.queue import ensure_stats
from services.review import item_history, load_view

URL = settings().db_url
EDITOR = "span_editor"
ANYONE = "(anyone)"


# --------------------------------------------------------------------------- queue settings


def _queue_changed() -> None:
    st.session_state.rv_queue_changed = True


def current_filter() -> QueueFilter:
    """The queue settings from the sidebar widgets (also read inside callbacks)."""
    ss = st.session_state
    low, high = ss.get("q_conf", (0.0, 1.0))
    annotator = ss.get("q_annot")
    return QueueFilter(
        statuses=tuple(ss.get("q_status") or STATUSES),
        labels=tuple(ss.get("q_labels") or ()),
        min_confidence=low if low > 0.0 else None,
        max_confidence=high if high < 1.0 else None,
        min_disagreement=ss.get("q_dis") or None,
        annotator=annotator if annotator and annotator != ANYONE else None,
        text=(ss.get("q_text") or "").strip() or None,
        order=ss.get("q_order") or "confidence",
        seed=int(ss.get("q_seed") or 0),
    )


def queue_sidebar(project: ProjectInfo, user_name: str, can_see_others: bool) -> tuple[QueueFilter, int]:
    """Progress, queue settings and "jump to item" in the sidebar; returns the queue
    settings and the number of items in the project."""
    ss = st.session_state
    ss.setdefault("q_status", ["new"])
    ss.setdefault("q_order", "confidence")
    with session_scope(URL) as s:
        people = annotators(s, project.id) if can_see_others else [user_name]
        per_person = progress(s, project.id, sorted({*people, user_name}) if can_see_others else [user_name])
    mine = per_person.get(user_name) or Progress(0, {})
    sb = st.sidebar
    done = mine.done
    sb.progress(done / mine.total if mine.total else 0.0, text=f"Your progress: {done} / {mine.total} reviewed")
    sb.caption(" · ".join(f"{st_}: {mine.counts.get(st_, 0)}" for st_ in ("skipped", "flagged")))
    if can_see_others and len(per_person) > 1:
        with sb.expander("Progress per annotator"):
            st.dataframe(
                [{"Annotator": n, "Done": p.done, "Skipped": p.counts.get("skipped", 0), "Flagged": p.counts.get("flagged", 0), "Total": p.total} for n, p in per_person.items()],
                hide_index=True,
            )
    with sb.expander("Queue", expanded=True):
        st.multiselect("Status", STATUSES, key="q_status", on_change=_queue_changed, help="Your own status of each item.")
        st.selectbox("Order", list(ORDERINGS), format_func=ORDERINGS.__getitem__, key="q_order", on_change=_queue_changed)
        if ss.q_order == "random":
            st.number_input("Seed", min_value=0, step=1, key="q_seed", on_change=_queue_changed, help="The same seed gives the same order (for everyone in this project).")
        st.multiselect("Label", list(project.labels), key="q_labels", on_change=_queue_changed)
        st.slider("Confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, key="q_conf", on_change=_queue_changed, help="Lowest span confidence of the item.")
        st.slider("Disagreement at least", 0.0, 1.0, 0.0, step=0.05, key="q_dis", on_change=_queue_changed, help="Between the item's span sets (methods, student, annotators).")
        if can_see_others:
            st.selectbox("Annotator", [ANYONE, *people], key="q_annot", on_change=_queue_changed, help="Items this person worked on.")
        st.text_input("Text search", key="q_text", on_change=_queue_changed, placeholder="id or words")
    sb.text_input("Jump to item", key="q_jump", on_change=_jump, args=(project.id,), placeholder="item id or #number")
    return current_filter(), mine.total


def _jump(project_id: int) -> None:
    ref = (st.session_state.get("q_jump") or "").strip()
    if not ref:
        return
    with session_scope(URL) as s:
        found = find_item(s, project_id, ref)
    if found is None:
        st.session_state.rv_message = ("warning", f"No item {ref!r} in this project.")
    else:
        st.session_state.item_id = found
        _clear_item_state()
    st.session_state.q_jump = ""


def _clear_item_state() -> None:
    for key in ("review_conflict", "rv_occurrences"):
        st.session_state.pop(key, None)


# --------------------------------------------------------------------------- editor events


def _on_editor_event() -> None:
    """Runs before the script: store the event at once, then show the next item."""
    event = pending_event(EDITOR)
    ctx = st.session_state.get("rv_ctx")
    if not event or not ctx:
        return
    with session_scope(URL) as s:
        outcome = handle_event(s, ctx["user"], ctx["project_id"], event, current_filter(), ctx["labels"])
    st.session_state.rv_ack = {"client": event.get("client"), "seq": event.get("seq")}
    st.session_state.rv_saved = outcome.saved or st.session_state.get("rv_saved")
    st.session_state.rv_message = outcome.message
    if outcome.conflict is not None:
        st.session_state.review_conflict = outcome.conflict
    if outcome.correction is not None:
        st.session_state.review_correction = outcome.correction
        st.session_state.pop("rv_occurrences", None)
    if outcome.item_id is not None and outcome.item_id != st.session_state.get("item_id"):
        st.session_state.item_id = outcome.item_id
        _clear_item_state()


def _resolve(keep_mine: bool) -> None:
    conflict = st.session_state.pop("review_conflict", None)
    ctx = st.session_state.get("rv_ctx")
    if conflict is None or ctx is None:
        return
    if keep_mine:
        with session_scope(URL) as s:
            outcome = resolve_conflict(s, ctx["user"], conflict)
        st.session_state.rv_saved = outcome.saved or st.session_state.get("rv_saved")
        st.session_state.rv_message = outcome.message
    else:
        st.session_state.rv_message = ("info", "Kept the stored version; your change was dropped.")


def show_conflict(view: ReviewView, colours: dict[str, str]) -> None:
    conflict = st.session_state.get("review_conflict")
    if conflict is None or conflict.item_id != view.id:
        return
    with st.container(border=True):
        st.error("Your last change was not saved: this item changed since you opened it.")
        for when, who, what in conflict.changes:
            st.markdown(f"- {when:%H:%M:%S} **{who}**: {what}")
        if conflict.side is not None and conflict.theirs is not None:
            sentence = view.sentence(conflict.side)
            c1, c2 = st.columns(2)
            c1.caption("Your change (not saved)")
            c1.html(spans_html(sentence, conflict.mine, colours))
            c2.caption("Stored now")
            c2.html(spans_html(sentence, conflict.theirs, colours))
            b1, b2 = st.columns(2)
            b1.button("Apply my change on top of it", type="primary", on_click=_resolve, args=(True,), key="conflict_mine")
            b2.button("Keep the stored version", on_click=_resolve, args=(False,), key="conflict_theirs")
        else:
            st.button("Show the stored version", on_click=_resolve, args=(False,), key="conflict_theirs")


# --------------------------------------------------------------------------- apply to all occurrences


def _find_occurrences(project_id: int) -> None:
    correction = st.session_state.get("review_correction")
    if correction is not None:
        with session_scope(URL) as s:
            st.session_state.rv_occurrences = find_correction_items(s, project_id, correction)


def _apply_occurrences(project_id: int) -> None:
    correction = st.session_state.pop("review_correction", None)
    ids = st.session_state.pop("rv_occurrences", None) or []
    ctx = st.session_state.get("rv_ctx")
    if correction is None or ctx is None:
        return
    with session_scope(URL) as s:
        report = apply_correction(s, ctx["user"], project_id, correction, ids)
    what = f"labelled {correction.label}" if correction.label else "unlabelled"
    text = f"'{correction.text}' {what} in {report.items_changed} more item(s) ({report.occurrences_changed} occurrence(s))."
    if report.refused:
        text += f" {report.refused} occurrence(s) left alone: another span overlaps them partly."
    st.session_state.rv_message = ("info", text)


def _dismiss_correction() -> None:
    st.session_state.pop("review_correction", None)
    st.session_state.pop("rv_occurrences", None)


def show_correction(project_id: int) -> None:
    correction = st.session_state.get("review_correction")
    if correction is None:
        return
    what = f"as **{correction.label}**" if correction.label else "as **no entity**"
    with st.container(border=True):
        found = st.session_state.get("rv_occurrences")
        if found is None:
            c1, c2, c3 = st.columns([5, 2, 1])
            c1.markdown(f"You marked ‘{correction.text}’ {what} ({'translation' if correction.side == 'target' else 'source'}). The same string may occur in other items.")
            c2.button("Find other occurrences", on_click=_find_occurrences, args=(project_id,), key="occ_find")
            c3.button("Dismiss", on_click=_dismiss_correction, key="occ_dismiss")
        elif not found:
            c1, c3 = st.columns([7, 1])
            c1.markdown(f"No other item contains ‘{correction.text}’.")
            c3.button("Dismiss", on_click=_dismiss_correction, key="occ_dismiss")
        else:
            c1, c2, c3 = st.columns([5, 2, 1])
            c1.markdown(f"‘{correction.text}’ occurs in **{len(found)}** other item(s){' (first 500)' if len(found) >= 500 else ''}.")
            c2.button(f"Apply to all {len(found)}", type="primary", on_click=_apply_occurrences, args=(project_id,), key="occ_apply")
            c3.button("Dismiss", on_click=_dismiss_correction, key="occ_dismiss")


# --------------------------------------------------------------------------- item


def _ensure_stats(project_id: int) -> None:
    """Queue numbers for new or re-run items, checked once per session and project."""
    checked = st.session_state.setdefault("rv_stats_checked", set())
    if project_id in checked:
        return
    with session_scope(URL) as s:
        with st.spinner("Updating the queue…"):
            ensure_stats(s, project_id)
    checked.add(project_id)


def current_item(project_id: int, user: str, filt: QueueFilter) -> int | None:
    """Session state, else ``?item=``, else the first item of the queue (after a queue
    change: the first item of the new queue)."""
    ss = st.session_state
    with session_scope(URL) as s:
        if ss.pop("rv_queue_changed", False):
            if filt.order == "random":
                with st.spinner("Shuffling the queue with the new seed…"):
                    reshuffle(s, project_id, filt.seed)  # the seed is kept with the project
            first = queue_next(s, project_id, user, filt)
            if first is None:
                ss.rv_message = ("info", "No item matches these queue settings.")
            else:
                ss.item_id = first
                _clear_item_state()
        wanted = ss.get("item_id")
        if wanted is None:
            try:
                wanted = int(st.query_params.get("item", ""))
            except ValueError:
                wanted = None
        if wanted is not None and item_project(s, wanted) == project_id:
            return wanted
        return queue_next(s, project_id, user, filt) or queue_next(s, project_id, user, QueueFilter(statuses=STATUSES, order="original"))


def compare_sets(view: ReviewView, colours: dict[str, str]) -> None:
    """Several span sets of one side side by side: methods, student, other annotators
    (built only when asked for: nothing extra to compute on every keystroke)."""
    if not st.toggle("Compare span sets", key="cmp_on"):
        return
    with st.container(border=True):
        sides = [s for s in ("target", "source") if s in view.spans]
        side = st.radio("Side", sides, format_func={"target": "Translation", "source": "Source"}.__getitem__, horizontal=True, key="cmp_side")
        sentence = view.sentence(side)
        options: dict[str, list] = {"you": view.spans[side]}
        for record in sorted(view.record.annotations.span_sets, key=lambda r: r.source):
            if record.side == side:
                options[record.source] = list(record.spans)
        for name, sides_ in sorted(view.others.items()):
            if side in sides_:
                options[f"annotator {name}"] = sides_[side]
        if side in view.adjudicated:
            options["adjudicated gold"] = view.adjudicated[side].spans
        chosen = st.multiselect("Span sets", list(options), default=list(options)[:3], key="cmp_sets")
        mine = view.spans[side]
        for name in chosen:
            spans = options[name]
            score = f1(matches(spans, mine), len(spans), len(mine))
            st.caption(f"{name} · {len(spans)} span(s) · exact F1 vs yours {score:.2f}")
            st.html(spans_html(sentence, spans, colours))


def show_history(view: ReviewView) -> None:
    if not st.toggle("History of this item", key="history_on"):
        return
    with st.container(border=True):
        with session_scope(URL) as s:
            entries = item_history(s, view.id)
        if not entries:
            st.caption("Nobody changed this item yet.")
            return
        st.dataframe(
            [{"When": h.when.strftime("%Y-%m-%d %H:%M:%S"), "Who": h.user, "Action": h.action, "Side": h.side or "", "What": h.what} for h in reversed(entries)],
            hide_index=True,
            width="stretch",
        )


def main() -> None:
    st.title("Review")
    user = require_role("annotator", URL)
    project_id = project_or_info(user)
    if project_id is None:
        return
    with session_scope(URL) as s:
        project = get_project(s, project_id)
    _ensure_stats(project_id)
    filt, total = queue_sidebar(project, user.name, user.can("reviewer"))
    item_id = current_item(project_id, user.name, filt)
    if item_id is None:
        st.info(f"Project {project.name} has no items yet: import a file on the Projects page.")
        return
    with session_scope(URL) as s:
        view = load_view(s, item_id, user.name)
    st.session_state.item_id = view.id
    st.query_params["item"] = str(view.id)
    labels = list(project.labels)
    st.session_state.rv_ctx = {"user": user.name, "project_id": project_id, "labels": labels}

    data = editor_data(
        view,
        labels,
        ack=st.session_state.get("rv_ack"),
        saved=st.session_state.get("rv_saved"),
        message=st.session_state.get("rv_message"),
        image_uri=thumbnail_data_uri(view.record.image_path),
        position=f"{view.record.position + 1} of {total}",
    )
    span_editor(data, key=EDITOR, on_event=_on_editor_event)
    if view.record.image_path is not None and data["image"] is None:
        st.warning(f"The image of this item cannot be read: {view.record.image_path}")

    colours = label_colours([*labels, *(s.label for spans in view.spans.values() for s in spans)])
    show_conflict(view, colours)
    show_correction(project_id)
    if view.status == "flagged" and view.flag_comment:
        st.warning(f"You flagged this item: {view.flag_comment}")
    others = {n: st_ for n, st_ in view.other_status.items()}
    if others and user.can("reviewer"):
        st.caption("Other annotators: " + ", ".join(f"{n} ({s})" for n, s in sorted(others.items())))
    compare_sets(view, colours)
    show_history(view)


ensure_navigation()
main()
