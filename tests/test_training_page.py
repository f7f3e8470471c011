"""The Train page (AppTest): start a training job in its own process, follow it to the end,
see the version with its charts, predict with it, cancel a running job."""

from __future__ import annotations

import os
import time

import pytest

from db import jobs
from tests.apptest_support import open_app
from tests.test_training import project, project_items, tiny_encoder  # noqa: F401  (fixtures)

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

PAGE = "pages/train.py"


def by_label(widgets, label: str):
    matches = [w for w in widgets if w.label == label]
    assert matches, f"no widget labelled {label!r}: {[w.label for w in widgets]}"
    return matches[0]


def open_train_page(project_id: int) -> AppTest:
    return open_app(PAGE, project=project_id)


def wait_for_job(at: AppTest, job_id: int, seconds: float = 180):
    from db.engine import session_scope

    deadline = time.monotonic() + seconds
    while True:
        with session_scope() as s:
            job = jobs.get_job(s, job_id)
        if job.status not in ("queued", "running") or time.monotonic() > deadline:
            return job
        assert at.progress, "a running job shows its progress bar"
        time.sleep(1.0)
        at.run()
        assert not at.exception, [e.message for e in at.exception]


def test_train_page_starts_a_job_follows_it_and_shows_the_version(project, tiny_encoder):  # noqa: F811
    from db import students as sq
    from db.engine import session_scope

    at = open_train_page(project.id)
    assert any("No version yet" in i.value for i in at.info)
    assert by_label(at.checkbox, "Continue from the active version").disabled  # nothing to go on from yet
    by_label(at.text_input, "Encoder").set_value(tiny_encoder)
    by_label(at.number_input, "Epochs").set_value(2)
    by_label(at.number_input, "Batch size").set_value(4)
    by_label(at.number_input, "Head learning rate").set_value(0.01)
    by_label(at.number_input, "Reviewed share of an epoch").set_value(0.5)
    by_label(at.button, "Start training").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Training job" in s.value and "started" in s.value for s in at.success)

    with session_scope() as s:
        (job,) = jobs.list_jobs(s, project.id)
    assert job.kind == "train" and job.pid is not None and job.params["options"]["config"]["encoder"] == tiny_encoder
    assert job.params["options"]["config"]["gold_share"] == 0.5
    job = wait_for_job(at, job.id)
    assert job.status == "done", (job.status, job.error, job.message)
    assert job.pid != os.getpid()  # it ran in a worker process of its own

    at.run()
    assert not at.exception, [e.message for e in at.exception]
    bar = at.progress[0]
    assert f"Training job {job.id} · done · version 1" in bar.text
    assert not by_label(at.checkbox, "Continue from version 1").disabled
    # starting from a student: a bad spec is said at once, and no job starts
    for spec, message in [(f"student:{project.name}@1", "a version of this project"), ("spacy:en_core_web_sm", "student:FOLDER")]:
        by_label(at.text_input, "Start from a student").set_value(spec)
        by_label(at.button, "Start training").click().run()
        assert not at.exception, [e.message for e in at.exception]
        assert any(message in e.value for e in at.error), (spec, [e.value for e in at.error])
    with session_scope() as s:
        assert len(jobs.list_jobs(s, project.id)) == 1
    by_label(at.text_input, "Start from a student").set_value("")
    at.run()
    table = at.dataframe[0].value
    assert list(table["Version"]) == [1] and list(table["Active"]) == ["✓"] and list(table["Test items"]) == [3]
    assert table["Test F1"].iloc[0] == pytest.approx(job.result["test_f1"])
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    for title in ("Training loss", "Gold items trained on", '"field":"measure"', '"field":"label"'):  # loss, learning curve, per version, per label
        assert any(title in spec.replace(" ", "") or title in spec for spec in specs), title

    by_label(at.button, "Predict all items with version 1").click().run()
    assert not at.exception, [e.message for e in at.exception]
    with session_scope() as s:
        predict_job = next(j for j in jobs.list_jobs(s, project.id) if j.kind == "predict")
    predict_job = wait_for_job(at, predict_job.id)
    assert predict_job.status == "done", (predict_job.error, predict_job.message)
    with session_scope() as s:
        assert sum(sq.student_prediction_counts(s, project.id).values()) == len(project_items()) - 1
    at.run()
    assert any("student:1 on" in c.value for c in at.caption)
    # the next batch to review, in the queue's student-uncertainty order, one click from Review
    assert any("Student uncertainty (highest first)".lower() in c.value for c in at.caption)
    batch = at.dataframe[-1].value
    assert len(batch) > 0 and list(batch["#"]) == list(range(1, len(batch) + 1))
    known = list(batch["uncertainty"].dropna())
    assert known and known == sorted(known, reverse=True) and list(batch["uncertainty"].iloc[: len(known)]) == known
    by_label(at.button, "Review these in this order (student uncertainty (highest first))").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["q_order"] == "uncertainty" and at.session_state["q_status"] == ["new"]


def test_cancel_button_cancels_a_running_training_job(project):  # noqa: F811
    from db.engine import session_scope

    with session_scope() as s:
        job = jobs.create_job(s, "train", project.id, params={"options": {}})
        jobs.update_job(s, job.id, done=3, total=10, message="epoch 1/5 · step 3/10 · loss 0.9", pid=os.getpid())
    at = open_train_page(project.id)
    (bar,) = at.progress
    assert "running · epoch 1/5" in bar.text
    assert by_label(at.button, "Start training").disabled  # one training run of a project at a time
    by_label(at.button, "Cancel").click().run()
    assert not at.exception, [e.message for e in at.exception]
    with session_scope() as s:
        assert jobs.get_job(s, job.id).status == "cancelled"
    assert not [b for b in at.button if b.label == "Cancel"]


def test_activating_an_older_version(project):  # noqa: F811
    from db import students as sq
    from db.engine import session_scope

    with session_scope() as s:
        for v, f1 in ((1, 0.5), (2, 0.7)):
            test = {"precision": f1, "recall": f1, "f1": f1, "support": 6, "per_label": {"PER": {"precision": f1, "recall": f1, "f1": f1, "support": 3}}}
            sq.add_model_version(s, project.id, version=v, path=f"students/x/{v}", settings={"config": {}}, item_ids={"train_gold": [1] * v},
                                 metrics={"test": test}, test_f1=f1, test_split="abc", activate=True)  # fmt: skip
    at = open_train_page(project.id)
    assert list(at.dataframe[0].value["Active"]) == ["", "✓"]
    by_label(at.selectbox, "Version").set_value(1).run()
    by_label(at.button, "Activate").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Version 1 is now active" in s.value for s in at.success)
    assert list(at.dataframe[0].value["Active"]) == ["✓", ""]
