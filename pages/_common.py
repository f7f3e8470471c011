"""Streamlit helpers shared by the pages (the underscore keeps it out of the navigation)."""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

APP = Path(__file__).resolve().parent.parent / "app.py"


def ensure_navigation() -> None:
    """Run this page through app.py when Streamlit started it without the shell.

    Streamlit treats a ``pages/`` folder as an old-style multipage app until the first
    ``st.navigation`` call in the process (and AppTest resets that on every run), so a
    first request for ``/review?...`` runs this page alone: no database set-up, no
    project selector. Then we switch that mode off and run app.py in this same script
    run; its ``st.navigation`` opens this same page (page ids come from the URL path),
    with the query parameters and any pending button click kept. ``st.stop`` ends the
    outer, shell-less run.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(APP))
        st.stop()


def selected_project_id() -> int | None:
    """The project chosen in the sidebar, or None after telling the person how to get one."""
    project_id = st.session_state.get("project_id")
    if project_id is None:
        st.info("No project selected. Create or pick one on the Projects page.")
        st.page_link("pages/projects.py", label="Go to Projects", icon=":material/folder:")
    return project_id
