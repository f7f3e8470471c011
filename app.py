"""LabelBridge web app: ``streamlit run app.py``.

This file is the shell only: page set-up, the database (created or upgraded once per
process), the navigation and the sidebar project selector. The selected project and item
live in ``st.session_state`` and in the URL (``?project=ID&item=ID``), so a link or a
reload opens the same place. Pages call services/ (use cases), db/ read functions and
core/; they hold no SQL and no ORM code.

Who may open which page comes from pages/_auth.py: with ``LABELBRIDGE_AUTH=on`` people log
in (roles annotator, reviewer, admin); otherwise the app runs in single-user mode with
every page and the name typed in the sidebar.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.config import settings
from db.engine import get_engine, init_db, session_scope
from db.projects import list_projects
from pages._auth import CurrentUser, cookie_writer, current_user, login_screen, sidebar_user

st.set_page_config(layout="wide", page_title="LabelBridge", page_icon=":material/translate:")


@st.cache_resource(show_spinner="Preparing the database…")
def database(url: str) -> Engine:
    """Create or upgrade the schema once per process and URL; the engine is shared by all sessions."""
    init_db(url)
    return get_engine(url)


def _query_int(name: str) -> int | None:
    value = st.query_params.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def project_selector(url: str) -> None:
    """The sidebar selectbox; keeps ``project_id`` in session state and in the URL."""
    with session_scope(url) as s:
        projects = list_projects(s)
    names = {p.id: p.name for p in projects}
    if "project_id" not in st.session_state:
        st.session_state.project_id = _query_int("project")
    if st.session_state.project_id not in names:
        st.session_state.project_id = projects[0].id if projects else None
    if not projects:
        st.sidebar.info("No project yet: create one on the Projects page.")
        st.query_params.pop("project", None)
        return

    def on_change() -> None:
        st.session_state.project_id = st.session_state.project_select
        st.session_state.pop("item_id", None)
        st.query_params.pop("item", None)

    ids = list(names)
    st.session_state.project_select = st.session_state.project_id
    st.sidebar.selectbox("Project", ids, format_func=names.__getitem__, key="project_select", on_change=on_change)
    st.query_params["project"] = str(st.session_state.project_id)


def navigation(user: CurrentUser) -> dict[str, list]:
    """The pages this person may open (a page left out cannot be opened by its URL either).

    annotator: Review · reviewer: + Agreement, Adjudicate, Train, Export · admin: + Projects, Users.
    Single-user mode (no login) is admin.
    """
    review = st.Page("pages/review.py", title="Review", icon=":material/edit_note:", url_path="review")
    pages: dict[str, list] = {}
    if user.can("admin"):
        pages["Data"] = [st.Page("pages/projects.py", title="Projects", icon=":material/folder:", default=True)]
    pages["Annotate"] = [review]
    if not user.can("admin"):  # "/" opens Review, which keeps its /review address
        pages["Annotate"].insert(
            0, st.Page(lambda: st.switch_page(review), title="Start", url_path="start", default=True, visibility="hidden")
        )
    if user.can("reviewer"):
        pages["Annotate"] += [
            st.Page("pages/agreement.py", title="Agreement", icon=":material/join_inner:"),
            st.Page("pages/adjudicate.py", title="Adjudicate", icon=":material/gavel:"),
        ]
        pages["Model"] = [st.Page("pages/train.py", title="Train", icon=":material/model_training:")]
        pages["Results"] = [st.Page("pages/export.py", title="Export", icon=":material/download:")]
    if user.can("admin"):
        pages["Admin"] = [st.Page("pages/users.py", title="Users", icon=":material/group:")]
    return pages


def main() -> None:
    url = settings().db_url
    database(url)
    st.session_state.setdefault("user_name", "reviewer")
    user = current_user(url)
    if user is None:  # LABELBRIDGE_AUTH is on and nobody is logged in
        login_screen(url)
        cookie_writer()
        return
    page = st.navigation(navigation(user))
    project_selector(url)
    if not user.logged_in:
        st.sidebar.text_input("Your name", key="user_name", help="Recorded with every edit you save.")
    sidebar_user(url, user)
    cookie_writer()
    page.run()


# A process started with multiprocessing's spawn while the app runs (the Streamlit server and
# AppTest install this file as sys.modules["__main__"]) runs this file again as "__mp_main__"
# before its task: it must not start the app there (a second database set-up, Streamlit calls
# with no session). Streamlit itself runs it as "__main__" or, from a deep link
# (pages/_common.ensure_navigation), as "<run_path>".
if __name__ != "__mp_main__":
    main()
