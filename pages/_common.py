"""Streamlit helpers shared by the pages (the underscore keeps it out of the navigation)."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def ensure_navigation() -> None:
    """Hand a deep link (``/review?...``) that arrived before ``app.py`` ever ran to app.py.

    Streamlit treats a ``pages/`` folder as an old-style multipage app until the first
    ``st.navigation`` call in the process; a first request for ``/review`` would run this
    page alone, without the shell (database set-up, project selector). Switching that mode
    off and rerunning lets app.py's ``st.navigation`` open the same page (page ids come
    from the URL path, so the page and its query parameters are kept).
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def selected_project_id() -> int | None:
    """The project chosen in the sidebar, or None after telling the person how to get one."""
    project_id = st.session_state.get("project_id")
    if project_id is None:
        st.info("No project selected. Create or pick one on the Projects page.")
        st.page_link("pages/projects.py", label="Go to Projects", icon=":material/folder:")
    return project_id
