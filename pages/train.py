"""Train: the project's student model.

Start a training run (it runs in its own process, services.training.start_training_job),
follow it live (progress and loss curve, polled with ``st.fragment``), cancel it; compare
the versions (test F1 overall and per label, learning curve as gold grows), activate one,
and let the active one predict every item so the Review queue can be ordered by student
uncertainty and by disagreement with the projection.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.annotations.queue import ORDERINGS, QueueFilter
from core.config import settings
from db import students as sq
from db.engine import session_scope
from db.errors import QueryError
from db.jobs import JobInfo
from db.projects import ProjectInfo, get_project, project_counts
from db.queue import queue_count, queue_rows
from pages._auth import project_or_info, require_role
from pages._common import ensure_navigation
from services.jobs import refresh_jobs, request_cancel
from services.queue import ensure_stats
from services.training import (
    ACTIVATE_CHOICES,
    JOB_KIND_TRAIN,
    MIN_GOLD_FOR_TEST,
    STUDENT_JOB_KINDS,
    TrainingError,
    TrainingOptions,
    start_predict_job,
    start_training_job,
)

URL = settings().db_url
POLL_S = 2.0
JOBS_SHOWN = 3
NEXT_BATCH = 50  # sentences suggested for the next review round
MODES = {
    None: "Automatic: fine-tune when it fits the time budget",
    True: "Fine-tune the encoder",
    False: "Frozen encoder + small head (quickest)",
}
ACTIVATE_HELP = {"auto": "if it scores at least as well", "yes": "always", "no": "no, activate by hand"}


# --------------------------------------------------------------------------- start a run


def _default_config():  # noqa: ANN202
    from core.student import TrainConfig

    return TrainConfig()


def start_form(project: ProjectInfo, training_running: bool, active_version: int | None = None) -> None:
    from core.student.config import WORD_FORMS

    d = _default_config()
    pid = project.id
    with st.form(f"train_form_{pid}"):
        st.markdown(f"**Train a new version** of the {project.tgt_lang} student")
        c1, c2 = st.columns([3, 2])
        encoder = c1.text_input("Encoder", key=f"tr_encoder_{pid}", placeholder=str(settings().encoder),
                                help="Hugging Face model id or folder; empty: the default encoder")  # fmt: skip
        finetune = c2.radio("Mode", list(MODES), format_func=MODES.__getitem__, key=f"tr_mode_{pid}")
        c1, c2, c3, c4 = st.columns(4)
        epochs = c1.number_input("Epochs", min_value=1, max_value=500, value=d.epochs, key=f"tr_epochs_{pid}")
        head_lr = c2.number_input("Head learning rate", min_value=1e-6, max_value=1.0, value=d.head_learning_rate,
                                  step=1e-4, format="%.5f", key=f"tr_head_lr_{pid}")  # fmt: skip
        lr = c3.number_input("Encoder learning rate", min_value=1e-7, max_value=1.0, value=d.learning_rate, step=1e-5,
                             format="%.6f", key=f"tr_lr_{pid}", help="Only when fine-tuning the encoder")  # fmt: skip
        batch_size = c4.number_input("Batch size", min_value=1, max_value=512, value=d.batch_size, key=f"tr_batch_{pid}")
        c1, c2, c3, c4 = st.columns(4)
        w_gold = c1.number_input("Gold weight", min_value=0.0, value=d.w_gold, step=0.5, key=f"tr_wg_{pid}")
        w_silver = c2.number_input("Silver weight", min_value=0.0, value=d.w_silver, step=0.5, key=f"tr_ws_{pid}",
                                   help="Loss weight of projected (unreviewed) items")  # fmt: skip
        threshold = c3.number_input("Silver confidence threshold", min_value=0.0, max_value=1.0, value=d.silver_threshold,
                                    step=0.05, key=f"tr_thr_{pid}",
                                    help="Projected spans below it are left out of the loss, not taught as 'no entity'")  # fmt: skip
        seed = c4.number_input("Seed", min_value=0, value=d.seed, key=f"tr_seed_{pid}")
        c1, c2, c3, c4 = st.columns(4)
        patience = c1.number_input("Patience", min_value=1, value=d.patience, key=f"tr_patience_{pid}",
                                   help="Epochs without a better dev F1 before stopping")  # fmt: skip
        freeze = c2.checkbox("Freeze embeddings", value=d.freeze_embeddings, key=f"tr_freeze_{pid}",
                             help="When fine-tuning: keep the embedding matrix (most of e5-small) fixed")  # fmt: skip
        images = c3.checkbox("Use images", key=f"tr_images_{pid}", help="Fuse image features; items without an image work unchanged")
        activate = c4.selectbox("Activate the new version", ACTIVATE_CHOICES, format_func=ACTIVATE_HELP.__getitem__, key=f"tr_activate_{pid}")
        c1, c2, c3 = st.columns(3)
        gold_share = c1.number_input(
            "Reviewed share of an epoch", min_value=0.0, max_value=0.95, value=float(d.gold_share or 0.0), step=0.05,
            key=f"tr_gold_share_{pid}",
            help="Repeat the reviewed items (up to 20 times) until they are at least this share of each epoch, so a few "
                 "corrections are not drowned by many projected items; 0 = every item once",
        )  # fmt: skip
        start_student = c2.text_input(
            "Start from a student", key=f"tr_start_{pid}", placeholder="student:FOLDER or student:PROJECT@VERSION",
            help="Go on from another saved student instead of the bare encoder, e.g. the English teacher of make teacher "
                 "(student:data/models/teacher-conll2003-en): model transfer, then adapted to this project's items. "
                 "Its structure stays. Measured in bench corrections (--start source).",
        )  # fmt: skip
        word_form = c3.selectbox(
            "Word form", WORD_FORMS, index=WORD_FORMS.index(d.word_form), key=f"tr_word_form_{pid}",
            help="How words reach the encoder. auto: without tone marks and underdots where the encoder's vocabulary covers "
                 "the bare words clearly better (Yoruba, Igbo with e5-small: half the subwords), else as composed Unicode (nfc). "
                 "Decided on the training text and kept with the version.",
        )  # fmt: skip
        c1, c2, c3 = st.columns(3)
        with_source = c3.checkbox(
            f"Also learn from the {project.src_lang} gold", key=f"tr_source_{pid}",
            help="Train on the source-language sentences people or gold data labelled too, beside the target ones "
                 "(translate-train: the gold you projected from). Measured best in bench transfer.",
        )  # fmt: skip
        new_split = c1.checkbox("Draw a new test split", key=f"tr_new_split_{pid}",
                                help="Earlier versions' scores then refer to the old split")  # fmt: skip
        continue_active = c2.checkbox(
            f"Continue from version {active_version}" if active_version is not None else "Continue from the active version",
            key=f"tr_continue_{pid}", disabled=active_version is None,
            help="Go on from the active version's weights: after a batch of corrections one or two epochs do the work "
                 "of a whole run (set Epochs to 1 or 2). The structure (encoder, mode, blocks kept, head, images) stays that version's."
                 + ("" if active_version is not None else " No version is active yet."),
        )  # fmt: skip
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/model_training:", disabled=training_running)
    if training_running:
        st.caption("A training job of this project is running; start the next one when it ends.")
    if not submitted:
        return
    from dataclasses import replace

    from core.images import DEFAULT_IMAGE_ENCODER

    try:
        config = replace(
            d, encoder=encoder.strip() or None, finetune_encoder=finetune, epochs=int(epochs), learning_rate=float(lr),
            head_learning_rate=float(head_lr), batch_size=int(batch_size), w_gold=float(w_gold), w_silver=float(w_silver),
            silver_threshold=float(threshold), seed=int(seed), patience=int(patience), freeze_embeddings=bool(freeze),
            image_encoder=DEFAULT_IMAGE_ENCODER if images else None, gold_share=float(gold_share) or None, word_form=word_form,
        )  # fmt: skip
        with session_scope(URL) as s:
            options = TrainingOptions(config, activate, bool(new_split), bool(continue_active), bool(with_source), start_student.strip() or None)
            job = start_training_job(s, project.id, options)
    except (ValueError, QueryError, TrainingError) as exc:
        st.error(str(exc))
        return
    st.session_state.train_flash = f"Training job {job.id} started."
    st.rerun()


# --------------------------------------------------------------------------- jobs


def loss_chart(curve: list) -> alt.Chart | None:
    if not curve:
        return None
    data = pd.DataFrame(curve, columns=["step", "loss"])
    return (
        alt.Chart(data, height=180)
        .mark_line()
        .encode(x=alt.X("step:Q", title="Step"), y=alt.Y("loss:Q", title="Training loss"), tooltip=["step", "loss"])
    )


def _cancel(job_id: int) -> None:
    with session_scope(URL) as s:
        request_cancel(s, job_id)


def job_row(job: JobInfo) -> None:
    active = job.status in ("queued", "running")
    kind = "Training" if job.kind == JOB_KIND_TRAIN else "Prediction"
    with st.container(border=True):
        st.progress(min(max(job.progress, 0.0), 1.0), text=f"{kind} job {job.id} · {job.status} · {job.message or ''}")
        st.caption(f"started {job.created_at:%Y-%m-%d %H:%M:%S} UTC" + (f" · finished {job.finished_at:%H:%M:%S}" if job.finished_at else ""))
        result = job.result if isinstance(job.result, dict) else {}
        curve = result.get("loss_curve") or (result.get("metrics") or {}).get("loss_curve") or []
        chart = loss_chart(curve) if job.kind == JOB_KIND_TRAIN else None
        if chart is not None:
            st.altair_chart(chart, width="stretch")
        if job.error:
            st.error(job.error)
        if active:
            st.button("Cancel", key=f"tr_cancel_{job.id}", icon=":material/stop:", on_click=_cancel, args=(job.id,))


def jobs_panel(project_id: int, jobs: list[JobInfo]) -> None:
    """The newest student jobs of the project, polled while one runs."""
    active = any(j.status in ("queued", "running") for j in jobs)

    @st.fragment(run_every=POLL_S if active else None)
    def follow() -> None:
        with session_scope(URL) as s:
            current = refresh_jobs(s, project_id, limit=JOBS_SHOWN, kind=STUDENT_JOB_KINDS)
        for job in current:
            job_row(job)
        if active and not any(j.status in ("queued", "running") for j in current):
            st.rerun()  # the last job ended: refresh the versions and stop polling

    if jobs:
        st.subheader("Jobs")
        follow()


# --------------------------------------------------------------------------- versions


def versions_table(versions: list[sq.ModelVersionInfo], current_split: str | None) -> None:
    rows = []
    for v in versions:
        test = v.metrics.get("test") or {}
        config = v.settings.get("config") or {}
        rows.append(
            {
                "Version": v.version,
                "Active": "✓" if v.active else "",
                "Test F1": v.test_f1,
                "Precision": test.get("precision"),
                "Recall": test.get("recall"),
                "Dev F1": v.metrics.get("dev_f1"),
                "Gold items": v.n_gold,
                "Silver items": v.n_silver,
                "Test items": v.n_test,
                "Test split": "current" if v.test_split and v.test_split == current_split else ("none" if not v.test_split else "earlier"),
                "Epochs": len(v.metrics.get("history") or []),
                "Mode": "fine-tune" if config.get("finetune_encoder") else "frozen",
                "Images": "yes" if config.get("image_encoder") else "",
                "Seconds": v.metrics.get("train_seconds"),
                "Created (UTC)": f"{v.created_at:%Y-%m-%d %H:%M}",
            }
        )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={k: st.column_config.NumberColumn(format="%.3f") for k in ("Test F1", "Precision", "Recall", "Dev F1")},
    )


def _activate(project_id: int, version: int) -> None:
    try:
        with session_scope(URL) as s:
            sq.activate_model_version(s, project_id, version)
        st.session_state.train_flash = f"Version {version} is now active."
    except QueryError as exc:
        st.session_state.train_error = str(exc)


def _predict(project_id: int, version: int) -> None:
    try:
        with session_scope(URL) as s:
            job = start_predict_job(s, project_id, version)
        st.session_state.train_flash = f"Prediction job {job.id} started."
    except (TrainingError, QueryError) as exc:
        st.session_state.train_error = str(exc)


def charts(versions: list[sq.ModelVersionInfo], current_split: str | None) -> None:
    scored = [v for v in versions if v.test_f1 is not None and v.test_split == current_split]
    if not scored:
        st.info(f"No test scores yet: the held-out test split is drawn once the project has {MIN_GOLD_FOR_TEST} gold "
                "(reviewed or imported gold) items with a translation.")  # fmt: skip
        return
    overall = pd.DataFrame(
        [{"version": v.version, "measure": m, "value": (v.metrics.get("test") or {}).get(m)} for v in scored for m in ("f1", "precision", "recall")]
    )
    per_label = pd.DataFrame(
        [
            {"version": str(v.version), "label": label, "f1": r["f1"], "support": r["support"]}
            for v in scored
            for label, r in ((v.metrics.get("test") or {}).get("per_label") or {}).items()
        ]
    )
    curve = pd.DataFrame([{"version": v.version, "gold items": v.n_gold, "silver items": v.n_silver, "test F1": v.test_f1} for v in scored])
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Test scores per version**")
        st.altair_chart(
            alt.Chart(overall, height=240).mark_line(point=True).encode(
                x=alt.X("version:O", title="Version"), y=alt.Y("value:Q", title="Score", scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("measure:N", title="Measure"), tooltip=["version", "measure", alt.Tooltip("value:Q", format=".3f")],
            ),
            width="stretch",
        )  # fmt: skip
    with c2:
        st.markdown("**Learning curve: test F1 as gold grows**")
        st.altair_chart(
            alt.Chart(curve, height=240).mark_line(point=True).encode(
                x=alt.X("gold items:Q", title="Gold items trained on"), y=alt.Y("test F1:Q", scale=alt.Scale(domain=[0, 1])),
                order="gold items:Q", tooltip=["version", "gold items", "silver items", alt.Tooltip("test F1:Q", format=".3f")],
            ),
            width="stretch",
        )  # fmt: skip
    if not per_label.empty:
        st.markdown("**Test F1 per label**")
        st.altair_chart(
            alt.Chart(per_label, height=240).mark_bar().encode(
                x=alt.X("label:N", title="Label"), xOffset="version:N", y=alt.Y("f1:Q", title="F1", scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("version:N", title="Version"), tooltip=["version", "label", alt.Tooltip("f1:Q", format=".3f"), "support"],
            ),
            width="stretch",
        )  # fmt: skip


def versions_panel(project: ProjectInfo, predicting: bool) -> None:
    with session_scope(URL) as s:
        versions = sq.list_model_versions(s, project.id)
        current_split = sq.test_split_digest(sq.test_split_ids(s, project.id))
        n_test = len(sq.test_split_ids(s, project.id))
        predictions = sq.student_prediction_counts(s, project.id)
    st.subheader("Versions")
    st.caption(
        (f"Held-out gold test split: {n_test} item(s), never trained on." if n_test else "No test split yet.")
        + (" Predictions stored: " + ", ".join(f"{src} on {n} item(s)" for src, n in sorted(predictions.items())) + "." if predictions else "")
    )
    if not versions:
        st.info("No version yet: start a training run above.")
        return
    versions_table(versions, current_split)
    active = next((v for v in versions if v.active), None)
    c1, c2, c3 = st.columns([2, 1, 2])
    numbers = [v.version for v in reversed(versions)]
    chosen = c1.selectbox("Version", numbers, index=numbers.index(active.version) if active else 0, key=f"tr_version_{project.id}")
    c2.button("Activate", key=f"tr_activate_btn_{project.id}", on_click=_activate, args=(project.id, chosen),
              disabled=active is not None and active.version == chosen)  # fmt: skip
    if active is not None:
        c3.button(f"Predict all items with version {active.version}", key=f"tr_predict_{project.id}", type="primary",
                  icon=":material/insights:", on_click=_predict, args=(project.id, active.version), disabled=predicting,
                  help="Stores the student's spans, uncertainty and disagreement with the projection for the Review queue")  # fmt: skip
    charts(versions, current_split)


def next_batch_panel(project: ProjectInfo, user_name: str) -> None:
    """The next sentences to review, in the review queue's order: the active student's
    uncertainty once it has predicted (the order ``bench corrections`` measures), else the
    projection's lowest confidence first. One button opens Review on that queue."""
    with session_scope(URL) as s:
        has_student = bool(sq.student_prediction_counts(s, project.id))
        ensure_stats(s, project.id)
        order = "uncertainty" if has_student else "confidence"
        filt = QueueFilter(statuses=("new",), order=order)
        rows = queue_rows(s, project.id, user_name, filt, limit=NEXT_BATCH)
        left = queue_count(s, project.id, user_name, filt)
    st.subheader("Next to review")
    if not rows:
        st.info("Nothing left to review: every item has your status. Train again to use the corrections.")
        return
    why = ("the student is least sure about these; correcting them first raises the next version most"
           if has_student else "lowest projection confidence first; predict with a version to order by the student's uncertainty")  # fmt: skip
    st.caption(f"The next {len(rows)} of {left} unreviewed item(s), {ORDERINGS[order].lower()}: {why}.")
    st.dataframe(
        pd.DataFrame([{"#": k + 1, "item": r.external_id, "uncertainty": r.uncertainty, "confidence": r.min_confidence,
                       "sentence": r.target_text or r.source_text} for k, r in enumerate(rows)]),  # fmt: skip
        hide_index=True, width="stretch", height=220,
        column_config={"uncertainty": st.column_config.NumberColumn(format="%.2f"), "confidence": st.column_config.NumberColumn(format="%.2f")},
    )  # fmt: skip
    if st.button(f"Review these in this order ({ORDERINGS[order].lower()})", key=f"tr_review_next_{project.id}", icon=":material/rate_review:"):
        ss = st.session_state
        ss.q_order, ss.q_status, ss.rv_queue_changed = order, ["new"], True
        for key in ("item_id", "q_labels", "q_binary", "q_conf", "q_dis", "q_annot", "q_text"):
            ss.pop(key, None)  # the Review queue is exactly the batch shown: no filter left from before
        st.switch_page("pages/review.py")


# --------------------------------------------------------------------------- page


def main() -> None:
    st.title("Train")
    user = require_role("reviewer", URL)
    project_id = project_or_info(user)
    if project_id is None:
        return
    with session_scope(URL) as s:
        project = get_project(s, project_id)
        counts = project_counts(s, project_id)
    st.markdown(
        f"**{project.name}** ({project.src_lang} → {project.tgt_lang}) · {counts['with_target']} item(s) with a translation · "
        f"{counts['reviewed']} reviewed. The student learns from reviewed and gold items and from the projections of the others."
    )
    if flash := st.session_state.pop("train_flash", None):
        st.success(flash)
    if error := st.session_state.pop("train_error", None):
        st.error(error)
    with session_scope(URL) as s:
        jobs = refresh_jobs(s, project_id, limit=JOBS_SHOWN, kind=STUDENT_JOB_KINDS)  # also fails jobs whose worker died
        active = sq.active_model_version(s, project_id)
    running = {j.kind for j in jobs if j.status in ("queued", "running")}
    start_form(project, JOB_KIND_TRAIN in running, active.version if active is not None else None)
    jobs_panel(project_id, jobs)
    versions_panel(project, bool(running - {JOB_KIND_TRAIN}))
    next_batch_panel(project, user.name)


ensure_navigation()
main()
