"""Review: the workbench people spend their day in.

One item at a time in the span editor (pages/components/span_editor): the source with its
entities, the translation with the projected spans (confidence and provenance), the lines
between them, the image; keyboard editing on both sides. The editor holds the next items of
the queue in the browser, so Enter shows the next sentence at once; every action goes to the
database in the background (services.editor) and is acknowledged once stored. The editor
and the panels about its item run in an ``st.fragment``: an editor event reruns only them.
The sidebar holds the queue: progress, filters, order, jump to an item, and the fast modes.
"""

from __future__ import annotations

import streamlit as st

from core.annotations.agreement import f1, matches
from core.annotations.editor import editor_data, side_names
from core.annotations.ledger import ReviewView
from core.annotations.queue import ORDERINGS, STATUSES, QueueFilter
from core.config import settings
from core.highlight import escape_markdown, label_colours, spans_html
from core.media import thumbnail_data_uri
from db.engine import session_scope
from db.items import find_item, item_project
from db.projects import ProjectInfo, get_project
from db.queue import queue_count, queue_next, queue_position, queue_rows
from db.review_state import Progress, annotators, progress
from db.stats import reshuffle
from db.students import student_prediction_counts
from pages._auth import project_or_info, require_role
from pages._common import ensure_navigation
from pages.components.span_editor import pending_event, span_editor
from services.bulk import accept_confident, count_confident, undo_bulk
from services.editor import apply_correction, find_correction_items, handle_event, resolve_conflict
from services.queue import ensure_stats
from services.review import item_history, load_views

URL = settings().db_url
EDITOR = "span_editor"
ANYONE = "(anyone)"
PREFETCH = 8  # items after the shown one that the browser holds (Enter shows the next at once)
IMAGES_AHEAD = 3  # items whose picture is sent with them (the rest arrive when they come closer)


def md(text: object) -> str:
    """A user-supplied string shown literally inside Markdown."""
    return escape_markdown(str(text))


# --------------------------------------------------------------------------- queue settings


def _queue_changed() -> None:
    st.session_state.rv_queue_changed = True


def current_filter() -> QueueFilter:
    """The queue settings from the sidebar widgets (also read inside callbacks)."""
    ss = st.session_state
    low, high = ss.get("q_conf", (0.0, 1.0))
    annotator = ss.get("q_annot")
    binary = ss.get("q_binary")
    labels = tuple(ss.get("q_labels") or ())
    return QueueFilter(
        statuses=tuple(ss.get("q_status") or STATUSES),
        labels=(binary,) if binary else labels,
        min_confidence=low if low > 0.0 else None,
        max_confidence=high if high < 1.0 else None,
        min_disagreement=ss.get("q_dis") or None,
        annotator=annotator if annotator and annotator != ANYONE else None,
        text=(ss.get("q_text") or "").strip() or None,
        order=ss.get("q_order") or "confidence",
        seed=int(ss.get("q_seed") or 0),
    )


def queue_sidebar(project: ProjectInfo, user_name: str, can_see_others: bool) -> QueueFilter:
    """Progress, queue settings, "jump to item" and the fast modes in the sidebar."""
    ss = st.session_state
    ss.setdefault("q_status", ["new"])
    ss.setdefault("q_order", "confidence")
    with session_scope(URL) as s:
        people = annotators(s, project.id) if can_see_others else [user_name]
        per_person = progress(s, project.id, sorted({*people, user_name}) if can_see_others else [user_name])
        has_student = bool(student_prediction_counts(s, project.id))
    orders = [o for o in ORDERINGS if o != "uncertainty" or has_student]  # without a student it would equal another order
    if ss.q_order not in orders:
        ss.q_order = "confidence"
    mine = per_person.get(user_name) or Progress(0, {})
    sb = st.sidebar
    sb.progress(mine.done / mine.total if mine.total else 0.0, text=f"Your progress: {mine.done} / {mine.total} reviewed")
    sb.caption(" · ".join(f"{st_}: {mine.counts.get(st_, 0)}" for st_ in ("skipped", "flagged")))
    if can_see_others and len(per_person) > 1:
        with sb.expander("Progress per annotator"):
            st.dataframe(
                [{"Annotator": n, "Done": p.done, "Skipped": p.counts.get("skipped", 0), "Flagged": p.counts.get("flagged", 0), "Total": p.total} for n, p in per_person.items()],
                hide_index=True,
            )
    with sb.expander("Queue", expanded=True):
        st.multiselect("Status", STATUSES, key="q_status", on_change=_queue_changed, help="Your own status of each item.")
        st.selectbox("Order", orders, format_func=ORDERINGS.__getitem__, key="q_order", on_change=_queue_changed,
                     help=None if has_student else "Student uncertainty appears once a student version has predicted this project.")  # fmt: skip
        if ss.q_order == "random":
            st.number_input("Seed", min_value=0, step=1, key="q_seed", on_change=_queue_changed, help="The same seed gives the same order (for everyone in this project).")
        st.multiselect("Label", list(project.labels), key="q_labels", on_change=_queue_changed)
        st.slider("Confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, key="q_conf", on_change=_queue_changed, help="Lowest span confidence of the item.")
        st.slider("Disagreement at least", 0.0, 1.0, 0.0, step=0.05, key="q_dis", on_change=_queue_changed, help="Between the item's span sets (methods, student, annotators).")
        if can_see_others:
            st.selectbox("Annotator", [ANYONE, *people], key="q_annot", on_change=_queue_changed, help="Items this person worked on.")
        st.text_input("Text search", key="q_text", on_change=_queue_changed, placeholder="id or words")
    sb.text_input("Jump to item", key="q_jump", on_change=_jump, args=(project.id,), placeholder="item id or #number")
    filt = current_filter()
    fast_modes(project, user_name, filt)
    return filt


def _jump(project_id: int) -> None:
    ref = (st.session_state.get("q_jump") or "").strip()
    if not ref:
        return
    with session_scope(URL) as s:
        found = find_item(s, project_id, ref)
    if found is None:
        st.session_state.rv_message = ("warning", f"No item {ref!r} in this project.")
    else:
        _show(found)
    st.session_state.q_jump = ""


def _show(item_id: int | None) -> None:
    """Make ``item_id`` the item shown, and tell the editor to start there."""
    ss = st.session_state
    if item_id is not None and item_id != ss.get("item_id"):
        for key in ("review_conflict", "review_correction", "rv_occurrences"):
            ss.pop(key, None)
    ss.item_id = item_id
    ss.rv_reset = ss.get("rv_reset", 0) + 1


# --------------------------------------------------------------------------- fast modes


def _bulk_accept(project_id: int, user: str, threshold: float) -> None:
    with session_scope(URL) as s:
        report = accept_confident(s, project_id, user, current_filter(), threshold)
    st.session_state.rv_bulk = report.batch if report.item_ids else None
    st.session_state.pop("rv_bulk_confirm", None)
    text = f"Accepted {len(report.item_ids)} item(s) with confidence ≥ {threshold:.2f}."
    if report.conflicts:
        text += f" {report.conflicts} item(s) changed meanwhile and were left alone."
    st.session_state.rv_message = ("info", text)
    _show(None)


def _undo_bulk(project_id: int, user: str) -> None:
    batch = st.session_state.pop("rv_bulk", None)
    if not batch:
        return
    with session_scope(URL) as s:
        n = undo_bulk(s, project_id, user, batch)
    st.session_state.rv_message = ("info", f"Took back the bulk accept of {n} item(s).")
    _show(None)


def fast_modes(project: ProjectInfo, user: str, filt: QueueFilter) -> None:
    """Accept every confident item of the queue at once; a yes/no pass over one label."""
    ss = st.session_state
    with st.sidebar.expander("Fast modes"):
        st.selectbox("Yes/no for one label", [None, *project.labels], format_func=lambda x: "off" if x is None else x, key="q_binary",
                     on_change=_queue_changed, help="Shows the items with a suggested span of this label and asks about each: A yes, R no.")  # fmt: skip
        threshold = st.slider("Accept all with confidence at least", 0.5, 1.0, 0.9, step=0.01, key="q_bulk_threshold")
        if ss.get("rv_bulk_confirm") != threshold:
            st.button("Count them", key="bulk_count", on_click=lambda: ss.update(rv_bulk_confirm=threshold))
        else:
            with session_scope(URL) as s:
                n = count_confident(s, project.id, user, filt, threshold)
            st.caption(f"{n} item(s) of this queue have every suggested span at ≥ {threshold:.2f}.")
            st.button(f"Accept {n} item(s)", type="primary", key="bulk_go", disabled=n == 0, on_click=_bulk_accept, args=(project.id, user, threshold))
        if ss.get("rv_bulk"):
            st.button("Undo the last bulk accept", key="bulk_undo", on_click=_undo_bulk, args=(project.id, user))


# --------------------------------------------------------------------------- editor events


def _on_editor_event() -> None:
    """Runs before the fragment: store the event, answer it (once stored), set what to show."""
    ss = st.session_state
    event = pending_event(EDITOR)
    ctx = ss.get("rv_ctx")
    if not event or not ctx:
        return
    with session_scope(URL) as s:
        outcome = handle_event(s, ctx["user"], ctx["project_id"], event, current_filter(), ctx["labels"])
    # committed: only now is the event acknowledged
    ok = outcome.message is None or outcome.message[0] != "error"
    message = {"kind": outcome.message[0], "text": outcome.message[1]} if outcome.message else None
    ss.rv_ack = {"client": event.get("client"), "seq": event.get("seq"), "ok": ok, "item": outcome.edited_item or event.get("item"),
                 "head": outcome.head, "status": outcome.status, "message": message}  # fmt: skip
    ss.rv_saved = outcome.saved or ss.get("rv_saved")
    if outcome.conflict is not None:
        ss.review_conflict = outcome.conflict
    if outcome.correction is not None:
        ss.review_correction = outcome.correction
        ss.pop("rv_occurrences", None)
    queued, total = ss.get("rv_total", (None, 0))
    if outcome.status and outcome.edited_item and event.get("action") in ("accept_all", "skip", "flag") and queued is not None and outcome.status not in queued.statuses:
        ss.rv_total = (queued, max(0, total - 1))  # it left this queue
    shown = event.get("current")
    if event.get("action") in ("next", "prev") or not isinstance(shown, int):
        _show(outcome.item_id)  # the browser had no item of its own to go to
    elif shown != ss.get("item_id"):
        ss.item_id = shown
        for key in ("review_correction", "rv_occurrences"):
            if getattr(ss.get(key), "item_id", shown) != shown:
                ss.pop(key, None)


def _resolve(mode: str) -> None:
    ss = st.session_state
    conflict = ss.pop("review_conflict", None)
    ctx = ss.get("rv_ctx")
    if conflict is None or ctx is None:
        return
    if mode == "theirs":
        ss.rv_message = ("info", "Kept the stored version; your change was dropped.")
    else:
        with session_scope(URL) as s:
            outcome = resolve_conflict(s, ctx["user"], conflict, prefer_mine=mode == "mine-labels")
        ss.rv_saved = outcome.saved or ss.get("rv_saved")
        ss.rv_message = outcome.message
    _show(conflict.item_id)  # reload the item as stored now


def show_conflict(view: ReviewView, colours: dict[str, str]) -> None:
    conflict = st.session_state.get("review_conflict")
    if conflict is None or conflict.item_id != view.id:
        return
    with st.container(border=True):
        st.error("Your last change was not saved: this item changed since you opened it.")
        for when, who, what in conflict.changes:
            st.markdown(f"- {when:%H:%M:%S} **{md(who)}**: {md(what)}")
        if conflict.side is not None and conflict.theirs is not None:
            sentence = view.sentence(conflict.side)
            c1, c2 = st.columns(2)
            c1.caption("Your change (not saved)")
            c1.html(spans_html(sentence, conflict.mine, colours))
            c2.caption("Stored now")
            c2.html(spans_html(sentence, conflict.theirs, colours))
            b1, b2, b3 = st.columns(3)
            b1.button("Apply my change on top of it", type="primary", on_click=_resolve, args=("mine",), key="conflict_mine",
                      help="Your additions and removals on top of the stored spans; an addition that overlaps a stored span is left out.")  # fmt: skip
            b2.button("Use my labels where they overlap", on_click=_resolve, args=("mine-labels",), key="conflict_mine_labels",
                      help="Like the first, but your span replaces a stored span it overlaps (e.g. your relabel).")  # fmt: skip
            b3.button("Keep the stored version", on_click=_resolve, args=("theirs",), key="conflict_theirs")
        else:
            st.button("Show the stored version", on_click=_resolve, args=("theirs",), key="conflict_theirs")


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
    st.session_state.rv_reset = st.session_state.get("rv_reset", 0) + 1  # the prefetched items changed


def _dismiss_correction() -> None:
    st.session_state.pop("review_correction", None)
    st.session_state.pop("rv_occurrences", None)


def show_correction(project_id: int, item_id: int) -> None:
    correction = st.session_state.get("review_correction")
    if correction is None or correction.item_id != item_id:
        return
    what = f"as **{md(correction.label)}**" if correction.label else "as **no entity**"
    text = md(correction.text)
    with st.container(border=True):
        found = st.session_state.get("rv_occurrences")
        if found is None:
            c1, c2, c3 = st.columns([5, 2, 1])
            c1.markdown(f"You marked ‘{text}’ {what} ({'translation' if correction.side == 'target' else 'source'}). The same string may occur in other items.")
            c2.button("Find other occurrences", on_click=_find_occurrences, args=(project_id,), key="occ_find")
            c3.button("Dismiss", on_click=_dismiss_correction, key="occ_dismiss")
        elif not found:
            c1, c3 = st.columns([7, 1])
            c1.markdown(f"No other item contains ‘{text}’.")
            c3.button("Dismiss", on_click=_dismiss_correction, key="occ_dismiss")
        else:
            c1, c2, c3 = st.columns([5, 2, 1])
            c1.markdown(f"‘{text}’ occurs in **{len(found)}** other item(s){' (first 500)' if len(found) >= 500 else ''}.")
            c2.button(f"Apply to all {len(found)}", type="primary", on_click=_apply_occurrences, args=(project_id,), key="occ_apply")
            c3.button("Dismiss", on_click=_dismiss_correction, key="occ_dismiss")


# --------------------------------------------------------------------------- the item and the next ones


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
            _show(first)
        wanted = ss.get("item_id")
        if wanted is None:
            try:
                wanted = int(st.query_params.get("item", ""))
            except ValueError:
                wanted = None
        if wanted is not None and item_project(s, wanted) == project_id:
            return wanted
        return queue_next(s, project_id, user, filt) or queue_next(s, project_id, user, QueueFilter(statuses=STATUSES, order="original"))


def next_ids(s, project_id: int, user: str, filt: QueueFilter, anchor: int) -> list[int]:  # noqa: ANN001
    """The items of the queue after ``anchor`` (wrapping to its start), for the browser."""
    ids = [r.id for r in queue_rows(s, project_id, user, filt, limit=PREFETCH, after_item_id=anchor) if r.id != anchor]
    if len(ids) < PREFETCH:
        ids += [r.id for r in queue_rows(s, project_id, user, filt, limit=PREFETCH) if r.id != anchor and r.id not in ids][: PREFETCH - len(ids)]
    return ids


def compare_sets(view: ReviewView, colours: dict[str, str], direction: str = "translate-train") -> None:
    """Several span sets of one side side by side: methods, student, other annotators
    (built only when asked for: nothing extra to compute on every keystroke)."""
    if not st.toggle("Compare span sets", key="cmp_on"):
        return
    with st.container(border=True):
        sides = [s for s in ("target", "source") if s in view.spans]
        side = st.radio("Side", sides, format_func=side_names(direction).__getitem__, horizontal=True, key="cmp_side")
        sentence = view.sentence(side)
        options: dict[str, list] = {"you": view.spans[side]}
        for record in sorted(view.record.annotations.span_sets, key=lambda r: r.source):
            if record.side == side:
                options[record.source] = list(record.spans)
        for name, sides_ in sorted(view.others.items()):
            if side in sides_:
                options[f"annotator {name}"] = sides_[side]
        if side in view.adjudicated:
            options["adjudicated gold"] = list(view.adjudicated[side].spans)
        chosen = st.multiselect("Span sets", list(options), default=list(options)[:3], key="cmp_sets")
        mine = view.spans[side]
        for name in chosen:
            spans = options[name]
            score = f1(matches(spans, mine), len(spans), len(mine))
            st.caption(f"{md(name)} · {len(spans)} span(s) · exact F1 vs yours {score:.2f}")
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


@st.fragment
def workbench(project: ProjectInfo, user_name: str, can_see_others: bool, filt: QueueFilter) -> None:
    """The editor (the shown item and the next ones) and the panels about the shown item;
    an editor event reruns only this."""
    ss = st.session_state
    anchor = ss.get("item_id")
    with session_scope(URL) as s:
        ids = [anchor, *next_ids(s, project.id, user_name, filt, anchor)]
        views = load_views(s, ids, user_name)
        place = queue_position(s, project.id, user_name, filt, anchor)
    total = ss.get("rv_total", (None, 0))[1]
    if not views:
        st.info("This item is gone; pick another one in the sidebar.")
        return
    view = views[0]
    st.query_params["item"] = str(view.id)
    labels = list(project.labels)
    ss.rv_ctx = {"user": user_name, "project_id": project.id, "labels": labels}
    images = {v.id: thumbnail_data_uri(v.record.image_path) for v in views[:IMAGES_AHEAD]}
    message = ss.pop("rv_message", None)
    data = editor_data(
        views, labels, ack=ss.get("rv_ack"), saved=ss.get("rv_saved"), message=message, images=images,
        queue={"index": place, "total": total} if place is not None else None, reset=ss.setdefault("rv_reset", 0),
        binary=ss.get("q_binary"), direction=project.direction,
    )  # fmt: skip
    span_editor(data, key=EDITOR, on_event=_on_editor_event)
    if view.record.image_path is not None and images.get(view.id) is None:
        st.warning(f"The image of this item cannot be read: {md(view.record.image_path.name)}")
    colours = label_colours([*labels, *(s.label for spans in view.spans.values() for s in spans)])
    show_conflict(view, colours)
    show_correction(project.id, view.id)
    if view.status == "flagged" and view.flag_comment:
        st.warning(f"You flagged this item: {md(view.flag_comment)}")
    if view.other_status and can_see_others:
        st.caption("Other annotators: " + ", ".join(f"{md(n)} ({s})" for n, s in sorted(view.other_status.items())))
    compare_sets(view, colours, project.direction)
    show_history(view)


def main() -> None:
    st.title("Review")
    user = require_role("annotator", URL)
    project_id = project_or_info(user)
    if project_id is None:
        return
    with session_scope(URL) as s:
        project = get_project(s, project_id)
    _ensure_stats(project_id)
    filt = queue_sidebar(project, user.name, user.can("reviewer"))
    item_id = current_item(project_id, user.name, filt)
    if item_id is None:
        st.info(f"Project {md(project.name)} has no items yet: import a file on the Projects page.")
        return
    st.session_state.item_id = item_id
    with session_scope(URL) as s:  # counted on a full run only: on 100,000 items it costs a few 100 ms
        st.session_state.rv_total = (filt, queue_count(s, project_id, user.name, filt))
    workbench(project, user.name, user.can("reviewer"), filt)


ensure_navigation()
main()
