"""Agreement (reviewers): span-level exact and partial F1 between annotators, per pair,
per label and per item, on the items both annotators finished."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.annotations.agreement import agreement
from core.config import settings
from core.highlight import escape_markdown
from db.engine import session_scope
from db.projects import get_project
from db.review_state import annotators, progress
from pages._auth import project_or_info, require_role
from pages._common import ensure_navigation
from services.adjudication import agreement_data

URL = settings().db_url


def _open_in_adjudication(item_id: int) -> None:
    st.session_state.adjudicate_item = item_id


def main() -> None:
    st.title("Agreement")
    user = require_role("reviewer", URL)
    project_id = project_or_info(user)
    if project_id is None:
        return
    with session_scope(URL) as s:
        project = get_project(s, project_id)
        people = annotators(s, project_id)
        per_person = progress(s, project_id, people)
    if len(people) < 2:
        st.info(f"Agreement needs at least two annotators; {len(people)} worked on {escape_markdown(project.name)} so far.")
        return
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect("Annotators", people, default=people, key="agreement_people")
    side = c2.radio("Side", ["target", "source"], format_func={"target": "Translation", "source": "Source"}.__getitem__, horizontal=True, key="agreement_side")
    st.dataframe(
        pd.DataFrame(
            [{"Annotator": n, "Reviewed": p.counts.get("reviewed", 0), "Skipped": p.counts.get("skipped", 0), "Flagged": p.counts.get("flagged", 0), "Items": p.total} for n, p in per_person.items()]
        ),
        hide_index=True,
    )
    if len(chosen) < 2:
        st.info("Pick at least two annotators.")
        return
    with session_scope(URL) as s:
        annotations, lengths, external = agreement_data(s, project_id, side, chosen)
    result = agreement(annotations, lengths, chosen)
    if result.exact_f1 is None:
        st.info("No item was finished by two of these annotators yet.")
        return
    m1, m2, m3 = st.columns(3)
    m1.metric("Exact F1 (mean over pairs)", f"{result.exact_f1:.3f}")
    m2.metric("Partial F1 (mean over pairs)", f"{result.partial_f1:.3f}")
    m3.metric("Items compared", len(result.items))
    st.caption("Exact: same tokens and label. Partial: same label and at least one shared token, each span paired once.")

    st.subheader("Pairs")
    st.dataframe(
        pd.DataFrame(
            [{"A": p.a, "B": p.b, "Items": p.n_items, "Exact F1": round(p.exact_f1, 3), "Partial F1": round(p.partial_f1, 3)} for p in result.pairs]
        ),
        hide_index=True,
        key="agreement_pairs",
    )
    st.subheader("Per label")
    st.dataframe(
        pd.DataFrame(
            [
                {"A": p.a, "B": p.b, "Label": lab, "Exact F1": round(la.exact_f1, 3), "Partial F1": round(la.partial_f1, 3), "Spans A": la.n_a, "Spans B": la.n_b}
                for p in result.pairs
                for lab, la in p.per_label.items()
            ]
        ),
        hide_index=True,
        key="agreement_labels",
    )
    st.subheader("Per item (lowest agreement first)")
    rows = [
        {"Item": external[it.item], "Annotators": ", ".join(it.annotators), "Exact F1": round(it.exact_f1, 3), "Partial F1": round(it.partial_f1, 3)}
        for it in result.items
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="agreement_items")
    worst = [it.item for it in result.items if it.exact_f1 < 1.0]
    if worst:
        c1, c2 = st.columns([3, 1])
        pick = c1.selectbox("Adjudicate an item", worst, format_func=lambda i: external[i], key="agreement_pick")
        if c2.button("Open in Adjudicate", on_click=_open_in_adjudication, args=(pick,)):
            st.switch_page("pages/adjudicate.py")


ensure_navigation()
main()
