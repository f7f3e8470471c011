"""The pipeline section of the Projects page: start a job, follow it, cancel it.

The work runs in a separate process (services.pipeline.run.start_pipeline_job); this panel only
writes the job request and polls the job rows with ``st.fragment(run_every=...)``, so the
page never blocks and keeps working when the browser is closed and opened again.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.config import settings
from core.highlight import escape_markdown
from core.pipeline import PipelineConfig
from core.teacher import DEFAULT_TEACHER
from db.engine import session_scope
from db.errors import QueryError
from db.jobs import JobInfo
from db.projects import ProjectInfo, ProjectSummary, project_counts
from services.jobs import refresh_jobs, request_cancel
from services.pipeline.run import JOB_KIND, start_pipeline_job
from services.pipeline.store import pipeline_status

POLL_S = 2.0
TEACHERS = {"spacy": "spaCy pipeline", "hf": "Hugging Face model", "gold": "Gold labels of the items"}
TRANSLATORS = {
    "none": "The items' own translations",
    "apertium": "Apertium (offline)",
    "hf": "Hugging Face model (NLLB, M2M-100, Marian)",
    "provided": "Translation file on the server",
}
ALIGNERS = ["simalign:itermax", "simalign:argmax", "simalign:match", "eflomal", "gdfa(simalign:itermax,eflomal)", "exact"]


def _methods() -> list[str]:
    import core.projection as projection

    known = list(getattr(projection, "METHODS", None) or [])
    default = projection.DEFAULT_METHOD
    return [default, *[m for m in known if m != default]]


def _aligners() -> list[str]:
    from core.projection import DEFAULT_ALIGNER

    return [DEFAULT_ALIGNER, *[a for a in ALIGNERS if a != DEFAULT_ALIGNER]]


def _spec(kind: str, detail: str, what: str) -> str | None:
    """``kind:detail`` for kinds that need a model or file, with a clear message when missing."""
    detail = detail.strip()
    if kind in ("apertium", "gold"):
        return kind
    if kind == "spacy" and not detail:
        return DEFAULT_TEACHER
    if kind == "none":
        return None
    if not detail:
        raise ValueError(f"{what}: give the model id, path or file for {kind}")
    return f"{kind}:{detail}"


def start_form(project: ProjectSummary | ProjectInfo, url: str) -> None:
    translate_test = project.direction == "translate-test"
    with session_scope(url) as s:
        # translate-test: the target side holds the originals, and the translator fills the pivot
        n_target = 0 if translate_test else project_counts(s, project.id)["with_target"]
    with st.form(f"pipeline_start_{project.id}"):
        languages = (f"{escape_markdown(project.tgt_lang)} originals, translated into {escape_markdown(project.src_lang)} for the teacher"
                     if translate_test else f"{escape_markdown(project.src_lang)} → {escape_markdown(project.tgt_lang)}")  # fmt: skip
        st.markdown(f"**Run the pipeline on {escape_markdown(project.name)}** ({languages})")
        c1, c2 = st.columns(2)
        teacher = c1.selectbox("Teacher", list(TEACHERS), format_func=TEACHERS.__getitem__, key=f"pl_teacher_{project.id}")
        teacher_detail = c1.text_input("Teacher model", key=f"pl_teacher_model_{project.id}", placeholder=DEFAULT_TEACHER.partition(":")[2],
                                       help="spaCy pipeline name or path (empty: the default), or a Hugging Face token-classification model id or path")
        # The items' own translations come first (the CLI's default too): a new translation
        # replaces them only when asked to, and the replaced text is kept as a version.
        translator = c2.selectbox("Translator", list(TRANSLATORS), format_func=TRANSLATORS.__getitem__, key=f"pl_translator_{project.id}",
                                  index=0 if n_target else 1)  # fmt: skip
        translator_detail = c2.text_input("Translation model or file", key=f"pl_translator_detail_{project.id}",
                                          help="Hugging Face model id/path, or a TSV/JSONL/text file of translations on the server")
        c3, c4, c5 = st.columns([2, 2, 1])
        aligner = c3.selectbox("Aligner", _aligners(), key=f"pl_aligner_{project.id}")
        method = c4.selectbox("Projection method", _methods(), key=f"pl_method_{project.id}")
        batch_size = c5.number_input("Batch size", min_value=1, max_value=4096, value=256, key=f"pl_batch_{project.id}")
        replace = False
        if n_target:
            replace = st.checkbox(f"Replace the translations {n_target} item(s) already have (the old text is kept as a version)",
                                  key=f"pl_replace_{project.id}", help="Needed with another translator than the items' own translations.")  # fmt: skip
        submitted = st.form_submit_button("Start pipeline", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return
    if translate_test and translator == "none":
        st.warning(f"Translate-test needs a translator: the teacher labels the {project.src_lang} translation of each original.")
        return
    if n_target and translator != "none" and not replace:
        st.warning(f"{n_target} item(s) already have a translation. Tick “Replace the translations” to translate them again "
                   "with this translator, or choose “The items' own translations”.")  # fmt: skip
        return
    try:
        config = PipelineConfig(
            src=project.src_lang,
            tgt=project.tgt_lang,
            teacher=_spec(teacher, teacher_detail, "Teacher"),
            translator=_spec(translator, translator_detail, "Translator"),
            aligner=aligner,
            method=method,
            batch_size=int(batch_size),
            direction=project.direction,
        )
    except ValueError as exc:
        st.error(str(exc))
        return
    try:
        with session_scope(url) as s:
            job = start_pipeline_job(s, project.id, config)
    except QueryError as exc:
        st.error(str(exc))
        return
    st.session_state.flash = f"Pipeline job {job.id} started."
    st.rerun()


def _cancel(url: str, job_id: int) -> None:
    with session_scope(url) as s:
        request_cancel(s, job_id)


def _job_row(job: JobInfo, url: str) -> None:
    active = job.status in ("queued", "running")
    with st.container(border=True):
        done = f"{job.done}/{job.total}" if job.total else f"{job.done}"
        st.progress(min(max(job.progress, 0.0), 1.0), text=f"Job {job.id} · {job.status} · {done} · {job.message or ''}")
        cfg = (job.params or {}).get("config") or {}
        st.caption(
            f"teacher {cfg.get('teacher')} · translator {cfg.get('translator') or 'own'} · aligner "
            f"{cfg.get('aligner') or 'default'} · method {cfg.get('method') or 'default'} · started {job.created_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        if job.error:
            st.error(job.error)
        if active:
            st.button("Cancel", key=f"pl_cancel_{job.id}", icon=":material/stop:", on_click=_cancel, args=(url, job.id))


def _status_table(project_id: int, url: str) -> None:
    with session_scope(url) as s:
        status = pipeline_status(s, project_id)
    if not status["stages"]:
        return
    st.dataframe(
        pd.DataFrame([{"Stage": k, "Done": v["done"], "Failed": v["failed"], "Pending": v["pending"]} for k, v in status["stages"].items()]),
        hide_index=True,
        width="stretch",
    )
    if status["failures"]:
        with st.expander(f"{status['failures_total']} failure(s)"):
            st.dataframe(pd.DataFrame(status["failures"]), hide_index=True, width="stretch")


def render_pipeline_panel(project: ProjectSummary | ProjectInfo | None) -> None:
    """The pipeline section for one project: a start form and its jobs, polled while active."""
    if project is None:
        return
    url = settings().db_url
    st.subheader("Pipeline")
    start_form(project, url)
    with session_scope(url) as s:
        jobs = refresh_jobs(s, project.id, limit=5, kind=JOB_KIND)
    active = any(j.status in ("queued", "running") for j in jobs)

    @st.fragment(run_every=POLL_S if active else None)
    def follow_jobs() -> None:
        with session_scope(url) as s:
            current = refresh_jobs(s, project.id, limit=5, kind=JOB_KIND)
        for job in current:
            _job_row(job, url)
        _status_table(project.id, url)
        if active and not any(j.status in ("queued", "running") for j in current):
            st.rerun()  # the last job ended: refresh the whole page (counts) and stop polling

    follow_jobs()
