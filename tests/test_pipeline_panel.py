"""The Projects page starts a pipeline job in its own process and follows it (AppTest)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from db import items as db_items
from db import jobs, projects
from tests.apptest_support import open_app
from tests.test_pipeline import WORDS, tiny_items, write_translations

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest



def by_label(widgets, label: str):
    matches = [w for w in widgets if w.label == label]
    assert matches, f"no widget labelled {label!r}: {[w.label for w in widgets]}"
    return matches[0]


@pytest.fixture()
def project_id(lb_env: Path):
    from db.engine import dispose_engine, init_db, session_scope

    init_db()
    with session_scope() as s:
        project = projects.create_project(s, "Tiny", "en", "es", ["PER", "ORG", "LOC", "MISC"])
        db_items.import_items(s, project.id, tiny_items())
    yield project.id
    dispose_engine()


def open_projects_page(project_id: int) -> AppTest:
    return open_app(project=project_id)


def test_projects_page_starts_a_job_and_shows_its_progress(project_id: int, lb_env: Path) -> None:
    from db.engine import session_scope

    tsv = write_translations(lb_env / "es.tsv")
    at = open_projects_page(project_id)
    by_label(at.selectbox, "Teacher").set_value("gold")
    by_label(at.selectbox, "Translator").set_value("provided")
    by_label(at.text_input, "Translation model or file").set_value(str(tsv))
    by_label(at.selectbox, "Aligner").set_value("exact")
    by_label(at.selectbox, "Projection method").set_value("ilp")  # hard links only: no encoder
    by_label(at.number_input, "Batch size").set_value(2)
    by_label(at.button, "Start pipeline").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Pipeline job" in s.value and "started" in s.value for s in at.success)

    with session_scope() as s:
        (job,) = jobs.list_jobs(s, project_id)
    assert job.kind == "pipeline" and job.params["config"]["teacher"] == "gold" and job.pid is not None
    deadline = time.monotonic() + 120
    while job.status in ("queued", "running") and time.monotonic() < deadline:
        assert at.progress, "the job row shows a progress bar while the job runs"
        time.sleep(1.0)
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        with session_scope() as s:
            job = jobs.get_job(s, job.id)
    assert job.status == "done", (job.status, job.error, job.message)
    assert (job.done, job.total, job.progress) == (4 * len(WORDS), 4 * len(WORDS), 1.0)

    at.run()
    (bar,) = at.progress
    assert f"Job {job.id} · done · {4 * len(WORDS)}/{4 * len(WORDS)}" in bar.text
    stages = at.dataframe[-1].value
    assert list(stages["Done"]) == [len(WORDS)] * 4 and list(stages["Pending"]) == [0] * 4


def test_cancel_button_cancels_a_running_job(project_id: int) -> None:
    from db.engine import session_scope

    with session_scope() as s:
        job = jobs.create_job(s, "pipeline", project_id, params={"config": {"teacher": "gold"}})
        jobs.update_job(s, job.id, done=3, total=10, message="align: batch 1/5", pid=os.getpid())  # a live worker
    at = open_projects_page(project_id)
    (bar,) = at.progress
    assert "running · 3/10 · align: batch 1/5" in bar.text
    by_label(at.button, "Cancel").click().run()
    assert not at.exception, [e.message for e in at.exception]
    with session_scope() as s:
        assert jobs.get_job(s, job.id).status == "cancelled"
    assert not [b for b in at.button if b.label == "Cancel"]


def test_a_job_whose_worker_died_is_shown_failed(project_id: int) -> None:
    from db.engine import session_scope

    with session_scope() as s:
        job = jobs.create_job(s, "pipeline", project_id)
        jobs.update_job(s, job.id, pid=2**22 + 12345)  # no such process
    at = open_projects_page(project_id)
    assert any("stopped without finishing" in e.value for e in at.error)
    with session_scope() as s:
        assert jobs.get_job(s, job.id).status == "failed"


def test_the_form_keeps_imported_translations_unless_asked_to_replace_them(lb_env: Path) -> None:
    from core.data import Item, Sentence, make_span
    from db.engine import dispose_engine, init_db, session_scope

    init_db()
    src = Sentence.from_words(["Anna", "lives", "in", "Berlin", "."], "en")
    human = Sentence.from_words(["Anna", "vive", "en", "Berlín", "."], "es")  # a person's translation
    with session_scope() as s:
        pid = projects.create_project(s, "Own", "en", "es", ["PER", "LOC"]).id
        db_items.import_items(s, pid, [Item("a", src, [make_span(src, 0, 1, "PER")], human)])
    try:
        at = open_app(project=pid)
        assert by_label(at.selectbox, "Translator").value == "none"  # the items' own translations by default
        by_label(at.selectbox, "Translator").set_value("apertium")
        by_label(at.button, "Start pipeline").click().run()
        assert any("already have a translation" in w.value for w in at.warning), [w.value for w in at.warning]
        with session_scope() as s:
            assert jobs.list_jobs(s, pid) == []  # nothing started, nothing replaced
            assert db_items.load_items(s, db_items.item_ids(s, pid))[0].target.text == "Anna vive en Berlín ."
    finally:
        dispose_engine()


def test_a_replaced_translation_is_kept_as_a_version(lb_env: Path) -> None:
    from core.data import Item, Sentence
    from db import span_sets
    from db.engine import dispose_engine, init_db, session_scope

    init_db()
    src = Sentence.from_words(["Anna", "lives", "here", "."], "en")
    with session_scope() as s:
        pid = projects.create_project(s, "Versions", "en", "es", ["PER"]).id
        db_items.import_items(s, pid, [Item("a", src, [], Sentence.from_words(["Anna", "vive", "aquí", "."], "es"))])
        (item_id,) = db_items.item_ids(s, pid)
        assert span_sets.save_target(s, item_id, Sentence.from_words(["Anna", "vive", "acá", "."], "es"))
        record = db_items.load_item(s, item_id)
    dispose_engine()
    assert record.target.text == "Anna vive acá ."
    (old,) = record.meta[span_sets.PREVIOUS_TARGETS]
    assert old["text"] == "Anna vive aquí ." and old["translator"] == "imported" and old["tokens"][2] == ["aquí", 10, 14]
