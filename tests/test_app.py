"""The Streamlit app driven headless with AppTest, on a private temporary database."""

from __future__ import annotations

import json

import pytest

from core.data import Item, Sentence, make_span
from db import items as db_items
from db import jobs, projects
from tests.apptest_support import open_app

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest



def tiny_items() -> list[Item]:
    src1 = Sentence.from_words(["Anna", "Weber", "lives", "in", "Berlin", "."], "en")
    tgt1 = Sentence.from_words(["Anna", "Weber", "vive", "en", "Berlín", "."], "es")
    src2 = Sentence.from_words(["It", "rained", "."], "en")
    tgt2 = Sentence.from_words(["Llovió", "."], "es")
    return [
        Item("s1", src1, [make_span(src1, 0, 2, "PER"), make_span(src1, 4, 5, "LOC")], tgt1),
        Item("s2", src2, [], tgt2),
    ]


@pytest.fixture()
def project_id(lb_env) -> int:
    from db.engine import init_db, session_scope

    init_db()
    with session_scope() as s:
        p = projects.create_project(s, "Tiny", "en", "es", ["PER", "ORG", "LOC", "MISC"])
        db_items.import_items(s, p.id, tiny_items())
    return p.id


def start(page: str | None = None, project: int | None = None) -> AppTest:
    return open_app(page, project=project)


def html_text(at: AppTest) -> str:
    return "\n".join(h.value for h in at.get("html"))


def by_label(widgets, label: str):
    matches = [w for w in widgets if w.label == label]
    assert matches, f"no widget labelled {label!r}: {[w.label for w in widgets]}"
    return matches[0]


def test_every_page_loads_on_an_empty_database(lb_env) -> None:
    at = start()
    assert any("No projects yet" in i.value for i in at.info)
    for page in ("pages/review.py", "pages/export.py", "pages/projects.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.message for e in at.exception])


def test_projects_page_lists_counts_and_creates_a_project(project_id) -> None:
    at = start()
    table = at.dataframe[0].value
    row = table[table["Project"] == "Tiny"].iloc[0]
    assert (row["Items"], row["Reviewed"], row["With image"], row["With translation"]) == (2, 0, 0, 2)

    by_label(at.text_input, "Name").set_value("Second")
    by_label(at.text_input, "Target language").set_value("de")
    by_label(at.text_input, "Labels (comma-separated)").set_value("PER, LOC")
    by_label(at.button, "Create project").click().run()
    assert not at.exception
    assert any("Created project 'Second'" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert set(table["Project"]) == {"Tiny", "Second"}
    second = table[table["Project"] == "Second"].iloc[0]
    assert (second["Languages"], second["Labels"], second["Items"]) == ("en → de", "PER, LOC", 0)
    # the new project is selected, so the import form targets it
    assert any(m.value == "**Import items into Second**" for m in at.markdown)


def test_projects_page_imports_a_conll_file_and_reports(project_id) -> None:
    at = start(project=project_id)
    conll = "Maria\tB-PER\nSchneider\tI-PER\nworks\tO\nin\tO\nMunich\tB-LOC\n.\tO\n\nHello\tO\n"
    at.file_uploader(key="import_file").set_value(("new.conll", conll.encode(), "text/plain"))
    at.run()
    by_label(at.button, "Import").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Imported 2 item(s) from new.conll" in s.value.replace("\\", "") for s in at.success), [s.value for s in at.success]  # escaped for Markdown
    table = at.dataframe[0].value
    assert table[table["Project"] == "Tiny"].iloc[0]["Items"] == 4


def test_projects_page_refuses_a_bad_file_and_stores_nothing(project_id) -> None:
    from db.engine import session_scope

    at = start(project=project_id)
    bad = '{"id": "a", "text": "Hi there", "spans": []}\n{"id": "b", "text": "Oops", "spans": [{"start": 0, "end": 5, "label": "PER"}]}\n'
    at.file_uploader(key="import_file").set_value(("bad.jsonl", bad.encode(), "application/json"))
    at.run()
    by_label(at.button, "Import").click().run()
    assert not at.exception
    assert any("Nothing was imported from bad.jsonl" in e.value.replace("\\", "") for e in at.error)  # escaped for Markdown
    assert "bad.jsonl:2" in "\n".join(m.value for m in at.markdown).replace("\\", "")  # escaped for Markdown
    with session_scope() as s:
        assert projects.project_counts(s, project_id)["total"] == 2


# The Review page's own tests (editor, conflicts, queue, URL) are in test_review_app.py.


def test_export_builds_a_jsonl_file(project_id) -> None:
    at = start("pages/export.py", project=project_id)
    by_label(at.selectbox, "Format").set_value("jsonl")
    by_label(at.button, "Build file").click().run()
    assert not at.exception, [e.message for e in at.exception]
    download = at.session_state["export"]["file"]
    assert download.filename == "Tiny.jsonl"
    rows = [json.loads(line) for line in download.data.decode().splitlines()]
    assert [r["id"] for r in rows] == ["s1", "s2"]
    assert rows[0]["spans"][0]["label"] == "PER"
    assert len(at.get("download_button")) == 1


@pytest.mark.parametrize("selection, shown", [("reviewed", "reviewed items only"), ("adjudicated", "adjudicated gold only")])
def test_export_of_reviewed_or_adjudicated_items_with_none_yet_warns(project_id, selection, shown) -> None:
    at = start("pages/export.py", project=project_id)
    by_label(at.radio, "Items").set_value(selection).run()
    by_label(at.button, "Build file").click().run()
    assert any(f"{shown}: none yet" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "export" not in at.session_state


def test_demo_button_seeds_and_starts_projection_jobs(lb_env, monkeypatch) -> None:
    import services.demo

    started = []

    def fake_start(s, project, config, **kwargs):  # the real one starts a model-loading process
        started.append((project, config.src, config.tgt, config.teacher, config.translator))
        job = jobs.create_job(s, "pipeline", projects.get_project(s, project).id, params={"config": config.to_json()})
        return jobs.finish_job(s, job.id, "done", message="done: 43 item(s)")

    monkeypatch.setattr(services.demo, "start_pipeline_job", fake_start)
    at = start()
    by_label(at.button, "Load the demo projects").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Demo projects loaded" in s.value for s in at.success)
    assert started == [("Demo (en→es)", "en", "es", "gold", None), ("Demo (en→de)", "en", "de", "gold", None)]
    table, job_table = at.dataframe[0].value, at.dataframe[1].value
    assert list(table["Items"]) == [43, 43] and list(table["With image"]) == [7, 7]
    assert list(job_table["Status"]) == ["done", "done"] and set(job_table["Project"]) == {"Demo (en→es)", "Demo (en→de)"}


def test_export_never_offers_a_file_built_for_other_choices(project_id) -> None:
    at = start("pages/export.py", project=project_id)
    by_label(at.selectbox, "Format").set_value("jsonl")
    by_label(at.button, "Build file").click().run()
    assert at.session_state["export"]["file"].filename == "Tiny.jsonl" and len(at.get("download_button")) == 1
    by_label(at.selectbox, "Format").set_value("conll").run()  # another format chosen: the JSONL file is not offered
    assert len(at.get("download_button")) == 0 and "export" not in at.session_state
    by_label(at.button, "Build file").click().run()
    assert at.session_state["export"]["file"].filename.endswith(".conll") and len(at.get("download_button")) == 1


def test_projects_page_offers_sample_files_and_asks_about_translations_only_where_they_fit(project_id) -> None:
    from core.formats import FORMATS

    at = start(project=project_id)
    names = [b.label for b in at.get("download_button")]
    assert len(names) == len(FORMATS) + 1 and any(n.startswith("jsonl: sample.jsonl") for n in names) and "Images (zip)" in names
    assert any(r.label == "Translations" for r in at.radio)  # "auto": the file decides
    by_label(at.selectbox, "Format").set_value("conll").run()
    assert not any(r.label == "Translations" for r in at.radio)  # CoNLL carries no translations
    by_label(at.selectbox, "Format").set_value("labelstudio").run()
    assert any(r.label == "Translations" for r in at.radio)


def test_a_process_spawned_while_the_app_runs_does_not_start_the_app(lb_env, monkeypatch) -> None:
    """The Streamlit server (and AppTest) installs app.py as ``sys.modules["__main__"]``; a
    worker started with spawn (the corrections bench's pool, any library's) runs that file
    again as its main. Only the app's own run may set up the database and draw pages."""
    import multiprocessing
    import os
    import sys
    import types
    from concurrent.futures import ProcessPoolExecutor

    from core.config import REPO_ROOT

    db_file = lb_env / "test.db"
    running_app = types.ModuleType("__main__")  # what Streamlit's script runner installs
    running_app.__file__ = str(REPO_ROOT / "app.py")
    monkeypatch.setitem(sys.modules, "__main__", running_app)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(os.getpid).result(timeout=120) != os.getpid()
    assert not db_file.exists()  # the worker ran app.py as "__mp_main__" and left the database alone
