"""Review: one item at a time; the source and its spans, the image, the translation with
its spans, and an editor for the translation's spans (saved with the item's version, so a
concurrent change is shown instead of overwritten)."""

from __future__ import annotations

import streamlit as st

from core.config import settings
from core.data import Span, SpanError, check_spans, make_span
from core.demo import reference_target_spans
from core.highlight import escape_markdown, label_colours, legend_html, spans_html
from db import queries
from db.engine import session_scope
from pages._common import ensure_navigation, selected_project_id

URL = settings().db_url


def go_to(item_id: int | None) -> None:
    if item_id is not None:
        st.session_state.item_id = item_id


def step(project_id: int, position: int, direction: str, status: str | None = None) -> None:
    """Button callback: move to the previous/next item (of a status)."""
    with session_scope(URL) as s:
        if direction == "next":
            target = queries.next_item_id(s, project_id, position, status)
        else:
            target = queries.prev_item_id(s, project_id, position, status)
    if target is None:
        st.session_state.flash_info = "No more items in that direction."
    go_to(target)


def jump(project_id: int) -> None:
    """Number-input callback: open the item at that 1-based index."""
    with session_scope(URL) as s:
        page = queries.list_items(s, project_id, limit=1, offset=st.session_state.item_index - 1)
    if page.rows:
        go_to(page.rows[0].id)


def current_record(project_id: int) -> queries.ItemRecord | None:
    """The item to show: session state, else ``?item=``, else the project's first item."""
    wanted = st.session_state.get("item_id")
    if wanted is None:
        try:
            wanted = int(st.query_params.get("item", ""))
        except ValueError:
            wanted = None
    with session_scope(URL) as s:
        if wanted is not None:
            try:
                record = queries.load_item(s, wanted)
                if record.project_id == project_id:
                    return record
            except queries.NotFoundError:
                pass
        first = queries.next_item_id(s, project_id)
        return queries.load_item(s, first) if first is not None else None


def draft_key(record: queries.ItemRecord) -> str:
    return f"draft:{record.id}:{record.version}"


def draft_spans(record: queries.ItemRecord) -> list[Span]:
    """The translation spans being edited (starts as the item's current target spans)."""
    key = draft_key(record)
    if key not in st.session_state:
        st.session_state[key] = list(record.item.target_spans)
    return st.session_state[key]


def add_span(record: queries.ItemRecord) -> None:
    tokens = sorted(st.session_state.get(f"add_tokens:{record.id}") or [])
    label = st.session_state.get(f"add_label:{record.id}")
    if not tokens or not label:
        st.session_state.editor_error = "Pick one or more tokens and a label first."
        return
    user = st.session_state.get("user_name") or "reviewer"
    new = make_span(record.item.target, tokens[0], tokens[-1] + 1, label, f"human:{user}")
    try:
        st.session_state[draft_key(record)] = check_spans(record.item.target, [*draft_spans(record), new], "translation")
    except SpanError as exc:
        st.session_state.editor_error = f"Not added: {exc}"
        return
    st.session_state[f"add_tokens:{record.id}"] = []


def remove_span(record: queries.ItemRecord, index: int) -> None:
    spans = list(draft_spans(record))
    del spans[index]
    st.session_state[draft_key(record)] = spans


def save(record: queries.ItemRecord, then_next: bool) -> None:
    spans = draft_spans(record)
    unchanged = [s.key() for s in spans] == [s.key() for s in record.item.target_spans]
    user = st.session_state.get("user_name") or "reviewer"
    try:
        with session_scope(URL) as s:
            version = queries.save_edit(
                s, record.id, "target", spans, user, record.version, action="accept" if unchanged else "edit"
            )
            following = queries.next_item_id(s, record.project_id, record.position) if then_next else None
    except queries.ConflictError as exc:
        st.session_state.conflict = {
            "item": record.id,
            "message": str(exc),
            "mine": spans,
            "theirs": exc.current_spans,
            "version": exc.current_version,
        }
        return
    except (queries.QueryError, SpanError) as exc:
        st.session_state.editor_error = f"Not saved: {exc}"
        return
    st.session_state.pop(draft_key(record), None)
    st.session_state.flash = f"Saved item {record.external_id} (version {version}, status reviewed)."
    if following is not None:
        go_to(following)


def show_conflict(record: queries.ItemRecord, colours: dict[str, str]) -> None:
    conflict = st.session_state.get("conflict")
    if not conflict or conflict["item"] != record.id:
        return
    st.error(f"Not saved: {conflict['message']}")
    c1, c2 = st.columns(2)
    with c1:
        st.caption("Your spans (not saved)")
        st.html(spans_html(record.item.target, conflict["mine"], colours))
    with c2:
        st.caption(f"Spans now stored (version {conflict['version']})")
        if conflict["theirs"] is not None:
            st.html(spans_html(record.item.target, conflict["theirs"], colours))
    if st.button("Load the current version", key="reload_after_conflict"):
        st.session_state.pop("conflict", None)
        st.rerun()


def navigation(record: queries.ItemRecord, total: int) -> None:
    cols = st.columns([1, 1, 1.4, 1.4, 3])
    pid, pos = record.project_id, record.position
    cols[0].button("← Prev", on_click=step, args=(pid, pos, "prev"), width="stretch")
    cols[1].button("Next →", on_click=step, args=(pid, pos, "next"), width="stretch")
    cols[2].button("Next unreviewed", on_click=step, args=(pid, pos, "next", "new"), width="stretch")
    st.session_state.item_index = min(pos + 1, total)
    cols[3].number_input(
        "Item #", min_value=1, max_value=max(total, 1), key="item_index", on_change=jump, args=(pid,),
        label_visibility="collapsed",
    )
    cols[4].markdown(
        f"Item **{pos + 1}** of **{total}** · id {escape_markdown(record.external_id)} · status **{record.status}**"
        f" · version {record.version}"
    )


def editor(record: queries.ItemRecord, labels: list[str], colours: dict[str, str]) -> None:
    target = record.item.target
    spans = draft_spans(record)
    st.markdown("**Edit the translation's spans**")
    if error := st.session_state.pop("editor_error", None):
        st.warning(error)
    st.caption("Draft: what Save stores")
    st.html(spans_html(target, spans, colours))
    if not spans:
        st.caption("No spans: saving records that this translation has no entities.")
    for i, span in enumerate(spans):
        c1, c2 = st.columns([6, 1])
        confidence = f" · confidence {span.confidence:.2f}" if span.confidence is not None else ""
        c1.markdown(
            f"**{escape_markdown(span.label)}** {escape_markdown(span.text(target))} · tokens {span.start}–{span.end - 1}"
            f" · _{escape_markdown(span.source)}_{confidence}"
        )
        c2.button("Remove", key=f"remove:{record.id}:{i}", on_click=remove_span, args=(record, i))
    c1, c2, c3 = st.columns([4, 1.5, 1])
    c1.multiselect(
        "Tokens", list(range(len(target))), format_func=lambda i: f"{i} · {target.tokens[i].text}",
        key=f"add_tokens:{record.id}", help="The span covers the first to the last token picked.",
    )
    c2.selectbox("Label", labels, key=f"add_label:{record.id}")
    c3.markdown("<div style='height:1.75rem'></div>", unsafe_allow_html=True)
    c3.button("Add span", on_click=add_span, args=(record,), width="stretch")
    b1, b2, b3 = st.columns([1, 1, 4])
    b1.button("Save", type="primary", on_click=save, args=(record, False), width="stretch")
    b2.button("Save & next", on_click=save, args=(record, True), width="stretch")


def main() -> None:
    st.title("Review")
    project_id = selected_project_id()
    if project_id is None:
        return
    with session_scope(URL) as s:
        project = queries.get_project(s, project_id)
        total = queries.project_counts(s, project_id)["total"]
    record = current_record(project_id)
    if record is None:
        st.info(f"Project {project.name} has no items yet: import a file on the Projects page.")
        return
    st.session_state.item_id = record.id
    st.query_params["item"] = str(record.id)

    if flash := st.session_state.pop("flash", None):
        st.success(flash)
    if info := st.session_state.pop("flash_info", None):
        st.info(info)
    navigation(record, total)

    item = record.item
    labels = list(project.labels) or sorted({s.label for s in item.source_spans})
    colours = label_colours([*labels, *(s.label for s in item.source_spans), *(s.label for s in item.target_spans)])
    st.html(legend_html(colours))

    text_col, image_col = st.columns([3, 1]) if record.image_path else (st.container(), None)
    with text_col:
        st.caption(f"Source ({item.source.lang or project.src_lang}) · spans: {record.current_source.get('source') or 'none'}")
        st.html(spans_html(item.source, item.source_spans, colours))
        if item.target is None:
            st.info("This item has no translation yet.")
        else:
            st.caption(f"Translation ({item.target.lang or project.tgt_lang}) · spans: {record.current_source.get('target') or 'none yet'}")
            st.html(spans_html(item.target, item.target_spans, colours))
            reference = reference_target_spans(item)
            if reference is not None:
                st.caption("Reference spans (hand-made gold, for comparison)")
                st.html(spans_html(item.target, reference, colours))
    if image_col is not None:
        with image_col:
            st.image(str(record.image_path), width="stretch")

    if item.target is not None:
        st.divider()
        show_conflict(record, colours)
        editor(record, labels, colours)


ensure_navigation()
main()
