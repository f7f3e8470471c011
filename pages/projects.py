"""Projects: the list with counts, creating a project, importing a file into one."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core.config import settings
from core.demo import sample_images_zip, sample_items
from core.formats import FormatError, get_format, guess_format
from core.highlight import escape_markdown
from core.transfer import export_download, format_names
from db.engine import session_scope
from db.errors import QueryError
from db.projects import ProjectSummary, create_project, list_projects
from pages._auth import require_role
from pages._common import ensure_navigation
from services.demo import seed_demo
from services.jobs import refresh_jobs
from services.projects import import_upload

URL = settings().db_url
AUTO = "auto (from the file name)"
TRANSLATIONS = {
    "file": "Use the file's translation field",
    "none": "Ignore translations in the file",
}


def show_projects() -> list[ProjectSummary]:
    with session_scope(URL) as s:
        projects = list_projects(s)
    if not projects:
        st.info("No projects yet. Create one below, or load the demo projects to look around.")
        if st.button("Load the demo projects", icon=":material/auto_awesome:"):
            with st.spinner("Seeding the demo projects…"):
                with session_scope(URL) as s:
                    seeded = seed_demo(s, projection="background")
            st.session_state.flash = (
                "Demo projects loaded. Their translations get projected spans from a background pipeline job "
                "(a minute or two); until then Review shows them without spans."
                if seeded else "The database already has projects."
            )
            st.rerun()
        return projects
    table = pd.DataFrame(
        [
            {
                "Project": p.name,
                "Languages": f"{p.src_lang} → {p.tgt_lang}" if p.direction != "translate-test" else f"{p.tgt_lang} originals (pivot {p.src_lang})",
                "Labels": ", ".join(p.labels),
                "Items": p.n_items,
                "Reviewed": p.n_reviewed,
                "With image": p.n_with_image,
                "With translation": p.n_target,
            }
            for p in projects
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    return projects


def jobs_table(names: dict[int, str]) -> None:
    with session_scope(URL) as s:
        jobs = refresh_jobs(s, limit=10)
    st.markdown("**Jobs**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Job": j.id,
                    "Project": names.get(j.project_id, j.project_id),
                    "Status": j.status,
                    "Progress": j.progress,
                    "Message": j.error or j.message or "",
                }
                for j in jobs
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"Progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")},
    )


def show_jobs(projects: list[ProjectSummary]) -> None:
    """Recent jobs (e.g. the demo's projection), refreshed every 5 s while one runs."""
    with session_scope(URL) as s:
        jobs = refresh_jobs(s, limit=10)
    if not jobs:
        return
    running = any(j.status in ("queued", "running") for j in jobs)
    st.fragment(jobs_table, run_every=5 if running else None)({p.id: p.name for p in projects})


DIRECTIONS = {"translate-train": "the source language (translate-train)", "translate-test": "the target language (translate-test)"}


def create_form() -> None:
    with st.form("create_project", clear_on_submit=False):
        st.markdown("**Create a project**")
        name = st.text_input("Name")
        c1, c2 = st.columns(2)
        src = c1.text_input("Source language", value="en", help="ISO code, e.g. en")
        tgt = c2.text_input("Target language", value="es", help="ISO code, e.g. es, de")
        labels = st.text_input("Labels (comma-separated)", value="PER, ORG, LOC, MISC")
        direction = st.radio(
            "My sentences are in", list(DIRECTIONS), format_func=DIRECTIONS.__getitem__, horizontal=True, key="create_direction",
            help="Source language (translate-train): labelled or raw source text is translated and its labels are projected onto "
                 "the translation. Target language (translate-test): raw text in your language is translated into the source "
                 "language, labelled there by the teacher, and the labels are projected back onto your own sentences, kept as "
                 "written. Use translate-test when you have text in your language and no labels.",
        )  # fmt: skip
        if not st.form_submit_button("Create project", type="primary"):
            return
    label_list = [lab.strip() for lab in labels.split(",") if lab.strip()]
    try:
        with session_scope(URL) as s:
            project = create_project(s, name, src.strip(), tgt.strip(), label_list, {"direction": direction} if direction != "translate-train" else {})
    except QueryError as exc:
        st.error(str(exc))
        return
    st.session_state.project_id = project.id
    st.session_state.flash = f"Created project '{escape_markdown(project.name)}'."
    st.rerun()


def _carries_translations(fmt: str, upload) -> bool:  # noqa: ANN001 (an UploadedFile or None)
    """Whether the chosen format (or, for "auto", the uploaded file's) can hold translations."""
    try:
        name = guess_format(upload.name) if fmt == AUTO and upload is not None else fmt
        return name == AUTO or get_format(name).translations
    except (FormatError, ValueError):
        return True


@st.cache_data(show_spinner=False)
def _sample(fmt: str) -> tuple[str, bytes, str]:
    with tempfile.TemporaryDirectory(prefix="labelbridge-sample-") as tmp:
        download = export_download(sample_items(), fmt, Path(tmp), "sample")
    return download.filename, download.data, download.mime


def sample_files() -> None:
    """Small files in every format, made from the demo (with translations and, where the
    format names images, the pictures as a zip), to see what an import expects."""
    with st.expander("Sample files"):
        st.caption("Four demo sentences with their translation; the first two name a picture from the images zip.")
        cols = st.columns(3)
        for k, fmt in enumerate(format_names()):
            name, data, mime = _sample(fmt)
            cols[k % 3].download_button(f"{fmt}: {name}", data, file_name=name, mime=mime, key=f"sample_{fmt}")
        cols[len(format_names()) % 3].download_button("Images (zip)", sample_images_zip(sample_items()), file_name="sample-images.zip",
                                                      mime="application/zip", key="sample_images")  # fmt: skip


def import_form(project: ProjectSummary) -> None:
    st.markdown(f"**Import items into {escape_markdown(project.name)}**")
    upload = st.file_uploader("Data file", key="import_file", help="CoNLL, JSONL, Label Studio JSON, …")
    c1, c2 = st.columns(2)
    fmt = c1.selectbox("Format", [AUTO, *format_names()], key="import_format")
    translations = "file"
    if project.direction == "translate-test":
        c2.caption("Translate-test project: each sentence of the file is an original in the target language, stored as "
                   "written; the pipeline translates it for the teacher.")  # fmt: skip
        translations = "none"
    elif _carries_translations(fmt, upload):
        translations = c2.radio("Translations", list(TRANSLATIONS), format_func=TRANSLATIONS.__getitem__, key="import_translations")
    images_zip = st.file_uploader("Images (optional zip, matched by the items' image names)", type=["zip"], key="import_images")
    images_dir = st.text_input("…or an image folder on the server (optional)", key="import_images_dir")
    fix = st.checkbox("Repair text encoded twice (mojibake such as “EspaÃ±a”; CoNLL files)", key="import_fix_encoding")
    sample_files()
    if not st.button("Import", type="primary", disabled=upload is None):
        return
    result = run_import(project.id, upload.name, upload.getvalue(), None if fmt == AUTO else fmt, translations,
                        images_zip.getvalue() if images_zip else None, images_dir.strip() or None, fix)  # fmt: skip
    st.session_state.import_result = result
    st.rerun()


def run_import(project_id: int, name: str, data: bytes, fmt: str | None, translations: str,
               images_zip: bytes | None, images_dir: str | None, fix_encoding: bool = False) -> dict:
    """Read, match images and store (services.projects); a dict for the result panel."""
    with session_scope(URL) as s:
        result = import_upload(s, project_id, name, data, fmt, keep_translations=translations != "none",
                               images_zip=images_zip, images_dir=images_dir, fix_encoding=fix_encoding)  # fmt: skip
    return dataclasses.asdict(result)


def show_import_result() -> None:
    result = st.session_state.pop("import_result", None)
    if not result:
        return
    if result.get("errors"):
        st.error(f"Nothing was imported from {escape_markdown(result['file'])}:")
        st.markdown("\n".join(f"- {escape_markdown(e)}" for e in result["errors"][:50]))
        if len(result["errors"]) > 50:
            st.caption(f"… and {len(result['errors']) - 50} more")
        return
    st.success(
        f"Imported {result['added']} item(s) from {escape_markdown(result['file'])}; "
        f"{result['images']} image(s) stored; {len(result['duplicates'])} duplicate(s) skipped."
    )
    if result["new_labels"]:
        st.info("New labels added to the project: " + escape_markdown(", ".join(result["new_labels"])))
    if result["duplicates"]:
        st.caption("Skipped ids already in the project: " + escape_markdown(", ".join(result["duplicates"][:30])))
    for w in result["warnings"]:
        if "encoded twice" in w:  # mojibake: the whole file is affected, not one repair
            st.warning(escape_markdown(w))
    if result["warnings"]:
        with st.expander(f"{len(result['warnings'])} repair(s) made while reading"):
            st.markdown("\n".join(f"- {escape_markdown(w)}" for w in result["warnings"][:200]))


ensure_navigation()
st.title("Projects")
require_role("admin", URL)
if flash := st.session_state.pop("flash", None):
    st.success(flash)
projects = show_projects()
show_jobs(projects)
left, right = st.columns(2, gap="large")
with left:
    create_form()
with right:
    selected = next((p for p in projects if p.id == st.session_state.get("project_id")), None)
    show_import_result()
    if selected is None:
        st.caption("Create or select a project to import items.")
    else:
        import_form(selected)

from pages._pipeline_panel import render_pipeline_panel  # noqa: E402  (the pipeline section: jobs run in their own process)

render_pipeline_panel(selected)
