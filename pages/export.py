"""Export: the selected project's items with their current spans, in any registered format."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from core.config import settings
from core.formats import FormatError, get_format
from core.highlight import escape_markdown
from core.transfer import export_download, format_names
from db.engine import session_scope
from db.projects import ProjectInfo, get_project, project_counts
from pages._auth import project_or_info, require_role
from pages._common import ensure_navigation
from services.export import EXPORT_SELECTIONS, export_selection

URL = settings().db_url
SIDES = {"target": "Translation (target language)", "source": "Source sentences"}
SIDES_TRANSLATE_TEST = {"target": "Original sentences (target language)", "source": "Their translations (pivot)"}


def build(project: ProjectInfo, fmt: str, selection: str, options: dict) -> None:
    """Button callback: write the file and keep it for the download button."""
    st.session_state.pop("export", None)
    with session_scope(URL) as s:
        items = export_selection(s, project.id, selection)
    if not items:
        st.session_state.export_error = "No items to export" + (f" ({EXPORT_SELECTIONS[selection]}: none yet)." if selection != "all" else ".")
        return
    stem = f"{project.name}-{options.get('side', 'items')}" if "side" in options else project.name
    try:
        with tempfile.TemporaryDirectory(prefix="labelbridge-export-") as tmp:
            download = export_download(items, fmt, Path(tmp), stem, **options)
    except (FormatError, ValueError) as exc:
        st.session_state.export_error = f"Export failed: {exc}"
        return
    st.session_state.export = {"file": download, "count": len(items), "fmt": fmt, "choice": _choice(project, fmt, selection, options)}


def _choice(project: ProjectInfo, fmt: str, selection: str, options: dict) -> tuple:
    """What a built file was built from: the download is offered only while it still matches."""
    return (project.id, fmt, selection, tuple(sorted((k, str(v)) for k, v in options.items())))


def main() -> None:
    st.title("Export")
    user = require_role("reviewer", URL)
    project_id = project_or_info(user)
    if project_id is None:
        return
    with session_scope(URL) as s:
        project = get_project(s, project_id)
        counts = project_counts(s, project_id)
    st.markdown(f"**{escape_markdown(project.name)}** · {counts['total']} items · {counts['reviewed']} reviewed · {counts['with_target']} with a translation")

    c1, c2 = st.columns(2)
    fmt = c1.selectbox("Format", format_names(), index=format_names().index("jsonl") if "jsonl" in format_names() else 0)
    selection = c2.radio("Items", list(EXPORT_SELECTIONS), format_func=EXPORT_SELECTIONS.__getitem__, horizontal=True)
    writer_options = get_format(fmt).write_options
    options: dict = {}
    if "side" in writer_options:
        sides = SIDES_TRANSLATE_TEST if project.direction == "translate-test" else SIDES
        options["side"] = st.radio("Sentences", list(sides), format_func=sides.__getitem__, horizontal=True)
    if "labels" in writer_options and project.labels:
        options["labels"] = list(project.labels)
    st.button("Build file", type="primary", on_click=build, args=(project, fmt, selection, options))

    if error := st.session_state.pop("export_error", None):
        st.warning(error)
    export = st.session_state.get("export")
    if export and export.get("choice") != _choice(project, fmt, selection, options):
        st.session_state.pop("export", None)  # built for other choices: never offer a stale file
        export = None
    if export:
        download = export["file"]
        st.success(f"{escape_markdown(download.filename)}: {export['count']} item(s), {len(download.data):,} bytes ({export['fmt']}).")
        st.download_button(f"Download {download.filename}", download.data, file_name=download.filename, mime=download.mime, type="primary")
        for k, (name, data) in enumerate(download.extras.items()):
            what = "the labeling config (Label Studio: project settings, Labeling Interface, Code)" if name.endswith(".config.xml") else (
                "the images; unpack beside the file, or give the zip as the images archive when you import it" if name.endswith("-images.zip") else "a file that goes with it")
            st.download_button(f"Download {name}", data, file_name=name, help=what, key=f"export_extra_{k}")


ensure_navigation()
main()
