"""Student training and prediction jobs over a project's database (tiny random BERT made in the test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.data import Item, Sentence, make_span
from db import errors, jobs, projects
from db import items as db_items
from services import review, training
from tests.test_student import make_tiny_encoder

PEOPLE = ["anna", "bob", "carla", "dieter", "eva", "fritz"]
PLACES = ["paris", "berlin", "rome", "madrid", "oslo"]
N_GOLD, N_SILVER, N_PLAIN = 14, 10, 2  # gold target sets, projections, translation without labels


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


def _item(k: int, target_source: str | None, confidence: float | None = None) -> Item:
    who, where = PEOPLE[k % len(PEOPLE)], PLACES[k % len(PLACES)]
    source = Sentence.from_words([who, "met", "us", "in", where, "."], "en")
    target = Sentence.from_words([who, "traf", "uns", "in", where, "."], "de")
    spans = [(0, 1, "PER"), (4, 5, "LOC")]
    if target_source is not None and target_source.startswith("projection") and k % 3 == 0:
        spans = [(0, 1, "PER")]  # a projection that missed the place
    return Item(
        id=f"s{k:02d}",
        source=source,
        source_spans=[make_span(source, a, b, lab) for a, b, lab in [(0, 1, "PER"), (4, 5, "LOC")]],
        target=target,
        target_spans=[make_span(target, a, b, lab, target_source, confidence) for a, b, lab in spans] if target_source else [],
    )


def project_items() -> list[Item]:
    items = [_item(k, "gold") for k in range(N_GOLD)]
    items += [_item(k, "projection:exact", 0.9) for k in range(N_GOLD, N_GOLD + N_SILVER)]
    items += [_item(k, None) for k in range(N_GOLD + N_SILVER, N_GOLD + N_SILVER + N_PLAIN)]
    items.append(Item(id="no-target", source=Sentence.from_words(["anna", "."], "en")))
    return items


@pytest.fixture()
def project(lb_env: Path):
    """A project with gold, projected, unlabelled items and one without a translation."""
    from db.engine import dispose_engine, init_db, session_scope

    init_db()
    with session_scope() as s:
        info = projects.create_project(s, "Tiny de", "en", "de", ["PER", "LOC"])
        db_items.import_items(s, info.id, project_items())
    yield info
    dispose_engine()


def fast_options(encoder: str, **changes):
    from core.student import TrainConfig
    from services.training import TrainingOptions

    base = dict(encoder=encoder, epochs=1, batch_size=4, head_hidden=16, head_learning_rate=1e-2, device="cpu", seed=1, warmup_ratio=0.0)
    activate = changes.pop("activate", "auto")
    new_split = changes.pop("new_test_split", False)
    continue_active = changes.pop("continue_active", False)
    with_source = changes.pop("with_source", False)
    start_student = changes.pop("start_student", None)
    base.update(changes)
    return TrainingOptions(TrainConfig(**base), activate, new_split, continue_active, with_source, start_student)


def run_job(project, options, kind: str = "train", **kwargs):
    """Run a training (or prediction) job in this process, exactly as the worker does."""
    from core.config import settings
    from db.engine import session_scope
    from services.jobs import run_as_job
    from services.training import run_prediction, run_training

    url = settings().db_url
    with session_scope() as s:
        job = jobs.create_job(s, kind, project.id)
    try:
        with session_scope(url) as s:
            if kind == "train":
                work = lambda reporter: run_training(s, project.id, options, reporter=reporter)  # noqa: E731
            else:
                work = lambda reporter: run_prediction(s, project.id, reporter=reporter, **kwargs)  # noqa: E731
            report = run_as_job(s, job.id, work)
    except Exception as exc:  # noqa: BLE001 - the caller checks the job row
        report = exc
    with session_scope() as s:
        return jobs.get_job(s, job.id), report


def project_state(project) -> str:
    """Everything a training run must not change: items, their spans and span sets."""
    from db.engine import session_scope

    with session_scope() as s:
        records = db_items.load_items(s, db_items.item_ids(s, project.id))
    return json.dumps(
        [[r.external_id, r.status, r.version, sorted(((x.side, x.source), [sp.key() for sp in x.spans]) for x in r.annotations.span_sets)] for r in records]
    )


def student_folders(project) -> list[Path]:
    from core.config import settings

    root = settings().models_dir / "students"
    return sorted(p for p in root.rglob("*") if p.is_dir() and p.parent.parent == root) if root.exists() else []


# --------------------------------------------------------------------------- pure parts


def test_test_split_is_seeded_and_needs_enough_gold():
    from services.training import MIN_GOLD_FOR_TEST, draw_test_split

    assert draw_test_split(range(MIN_GOLD_FOR_TEST - 1), seed=1) == []
    split = draw_test_split(range(50), seed=7)
    assert len(split) == 10 and split == draw_test_split(list(reversed(range(50))), seed=7)
    assert split != draw_test_split(range(50), seed=8)


def test_split_pool_keeps_every_test_item_out_of_training():
    from services.training import PoolItem, split_pool

    pool = [PoolItem(i, _item(i, "gold"), i < 30, "gold" if i < 30 else "projection:x") for i in range(40)]
    test_ids = [0, 1, 2, 3, 35]  # 35: in the stored split but silver now (e.g. an undone review)
    splits = split_pool(pool, test_ids, seed=3)
    ids = splits.item_ids()
    assert ids["test"] == [0, 1, 2, 3]
    used = set(ids["train_gold"]) | set(ids["train_silver"]) | set(ids["dev"])
    assert not used & set(test_ids)
    assert len(ids["dev"]) == 3 and set(ids["dev"]) <= set(range(4, 30))  # 10% of 26 gold, from gold only
    assert not set(ids["dev"]) & set(ids["train_gold"])
    assert len(used) == 40 - len(test_ids)


def test_training_args_round_trip_through_the_command_line(tiny_encoder):
    from cli.main import build_parser
    from cli.train import _options
    from services.training import training_args

    options = fast_options(tiny_encoder, activate="no", new_test_split=True, w_silver=0.5, finetune_encoder=True,
                           freeze_embeddings=False, image_encoder="efficientnet-lite0", with_source=True, gold_share=0.5,
                           word_form="no-marks")  # fmt: skip
    args = build_parser().parse_args(["train", "--project", "p", *training_args(options)])
    parsed = _options(args)
    expected = options.config.to_dict() | {"head_hidden": parsed.config.head_hidden, "device": parsed.config.device,
                                            "warmup_ratio": parsed.config.warmup_ratio}  # not command-line options
    assert parsed.config.to_dict() == expected
    assert (parsed.activate, parsed.new_test_split, parsed.continue_active, parsed.with_source) == ("no", True, False, True)
    assert type(options).from_json(options.to_json()) == options
    warm = fast_options(tiny_encoder, continue_active=True)
    assert _options(build_parser().parse_args(["train", "--project", "p", *training_args(warm)])).continue_active
    single = fast_options(tiny_encoder, gold_share=None)
    assert _options(build_parser().parse_args(["train", "--project", "p", *training_args(single)])).config.gold_share is None  # 0: off
    with pytest.raises(training.TrainingError, match="do not go together"):
        fast_options(tiny_encoder, continue_active=True, new_test_split=True)
    started = fast_options(tiny_encoder, start_student="student:Other@2")
    assert _options(build_parser().parse_args(["train", "--project", "p", *training_args(started)])).start_student == "student:Other@2"
    assert type(started).from_json(started.to_json()) == started
    with pytest.raises(training.TrainingError, match="not both"):
        fast_options(tiny_encoder, continue_active=True, start_student="student:Other@2")
    with pytest.raises(training.TrainingError, match="student:FOLDER"):
        fast_options(tiny_encoder, start_student="spacy:en_core_web_sm")


@pytest.mark.parametrize("mode", [None, True, False], ids=["by-time-budget", "fine-tune", "frozen"])
def test_every_student_mode_and_fine_tune_setting_survives_the_command_line(tiny_encoder, mode):
    from cli.main import build_parser
    from cli.train import _options
    from services.training import training_args

    options = fast_options(tiny_encoder, finetune_encoder=mode, encoder_layers=None if mode is False else 1,
                           precision="bfloat16", time_budget_s=60.0)  # fmt: skip
    parsed = _options(build_parser().parse_args(["train", "--project", "p", *training_args(options)])).config
    assert (parsed.finetune_encoder, parsed.encoder_layers, parsed.precision, parsed.time_budget_s) == (
        mode, None if mode is False else 1, "bfloat16", 60.0)


# --------------------------------------------------------------------------- training jobs


def test_training_job_records_a_version_with_metrics_and_item_ids(project, tiny_encoder):
    from core.student import load_student
    from db import students as sq
    from db.engine import session_scope
    from services.training import model_dir

    job, report = run_job(project, fast_options(tiny_encoder, epochs=2))
    assert job.status == "done", (job.error, job.message)
    assert job.message.startswith("version 1:") and job.progress == 1.0 and job.done == job.total > 0
    assert job.result["version"] == 1 and job.result["metrics"]["loss_curve"]

    with session_scope() as s:
        (version,) = sq.list_model_versions(s, project.id)
        ids = sq.model_version_item_ids(s, project.id, 1)
        stored_test = sq.test_split_ids(s, project.id)
    assert version.active and version.job_id == job.id
    # 14 gold: 3 held out for testing (20%), too few for a dev split; the 10 projections are silver.
    assert len(ids["test"]) == 3 and ids["test"] == stored_test and ids["dev"] == []
    assert len(ids["train_gold"]) == N_GOLD - 3 and len(ids["train_silver"]) == N_SILVER
    assert not set(ids["test"]) & (set(ids["train_gold"]) | set(ids["train_silver"]))
    assert (version.n_gold, version.n_silver, version.n_test) == (N_GOLD - 3, N_SILVER, 3)
    test = version.metrics["test"]
    assert 0.0 <= test["f1"] <= 1.0 and version.test_f1 == test["f1"] and set(test["per_label"]) <= {"PER", "LOC"}
    assert test["support"] == 6  # 3 test sentences x 2 entities
    assert len(version.metrics["history"]) == 2 and version.metrics["loss_curve"][0][0] == 1
    assert version.settings["config"]["encoder"] == tiny_encoder and version.test_split == sq.test_split_digest(stored_test)
    folder = model_dir(version)
    assert folder.name == "1" and folder.parent.parent.name == "students"
    assert load_student(folder, device="cpu").labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert [p.name for p in folder.parent.iterdir()] == ["1"]  # no temporary folder left


def test_the_source_gold_can_be_learned_too_but_never_of_a_held_out_item(project, tiny_encoder, monkeypatch):
    import core.student as student_module
    from db import students as sq
    from db.engine import session_scope

    seen: list[list[str]] = []
    original = student_module.train_student
    monkeypatch.setattr(student_module, "train_student", lambda items, *a, **k: seen.append([it.id for it in items]) or original(items, *a, **k))
    job, _ = run_job(project, fast_options(tiny_encoder, epochs=1, with_source=True))
    assert job.status == "done", job.error
    with session_scope() as s:
        (version,) = sq.list_model_versions(s, project.id)
        ids = sq.model_version_item_ids(s, project.id, 1)
        external = {r.id: r.external_id for r in db_items.load_items(s, ids["test"])}
    trained = seen[0]
    sources = [i for i in trained if i.endswith(":source")]
    # every item with English gold but the held-out ones: 14 gold + 10 projected + 2 plain, minus 3 test items
    assert len(sources) == N_GOLD + N_SILVER + N_PLAIN - 3 and len(trained) == len(sources) + N_GOLD - 3 + N_SILVER
    assert not {f"{external[i]}:source" for i in ids["test"]} & set(sources)
    assert version.settings["with_source"] is True and job.result["item_counts"]["train_source_gold"] == len(sources)


def test_a_version_can_go_on_from_the_active_one(project, tiny_encoder):
    from core.student import load_student
    from db import students as sq
    from db.engine import session_scope
    from services.training import TrainingError, model_dir

    job, report = run_job(project, fast_options(tiny_encoder, epochs=1, continue_active=True))
    assert job.status == "failed" and isinstance(report, TrainingError) and "no active student version to continue from" in str(report)
    job, _ = run_job(project, fast_options(tiny_encoder, epochs=2, finetune_encoder=True, encoder_layers=1))
    assert job.status == "done", job.error
    # the second run asks for another structure: a warm start keeps version 1's (fine-tuned, one block)
    job, _ = run_job(project, fast_options(tiny_encoder, epochs=1, finetune_encoder=False, continue_active=True))
    assert job.status == "done", job.error
    with session_scope() as s:
        versions = {v.version: v for v in sq.list_model_versions(s, project.id)}
    assert sorted(versions) == [1, 2]
    first, second = versions[1], versions[2]
    assert second.metrics["continued_from"] == 1 and first.metrics["continued_from"] is None
    assert len(second.metrics["history"]) == 1 and second.settings["continue_active"] is True
    assert second.settings["config"]["finetune_encoder"] is True and second.settings["config"]["encoder_layers"] == 1  # what was trained
    # a version trained under another test split is not continued (its weights may have seen the new test items)
    job, _ = run_job(project, fast_options(tiny_encoder, epochs=1, new_test_split=True))
    assert job.status == "done", job.error
    with session_scope() as s:
        sq.set_test_split(s, project.id, sq.test_split_ids(s, project.id)[1:])  # the split changes after the active version
    job, report = run_job(project, fast_options(tiny_encoder, epochs=1, continue_active=True))
    assert job.status == "failed" and "another test split" in str(report)
    continued = load_student(model_dir(second), device="cpu")
    assert continued.model.finetune_encoder and continued.config.encoder_layers == 1


def test_a_version_can_start_from_another_student(project, tiny_encoder, tmp_path):
    """Model transfer, then adapted: a project's first version goes on from another project's
    student (or a saved folder), e.g. the English teacher; its own versions go through 'continue'."""
    from db import students as sq
    from db.engine import session_scope
    from services.training import TrainingError, model_dir

    with session_scope() as s:
        other = projects.create_project(s, "Teacher en", "en", "de", ["PER", "LOC"])
        db_items.import_items(s, other.id, project_items())
    job, _ = run_job(other, fast_options(tiny_encoder, epochs=2, finetune_encoder=True, encoder_layers=1))
    assert job.status == "done", job.error
    job, _ = run_job(project, fast_options(tiny_encoder, epochs=1, finetune_encoder=False, start_student="student:Teacher en@1"))
    assert job.status == "done", job.error
    with session_scope() as s:
        (version,) = sq.list_model_versions(s, project.id)
        teacher = sq.get_model_version(s, other.id, 1)
    assert version.metrics["started_from"] == "student:Teacher en@1" and version.metrics["continued_from"] is None
    assert version.settings["config"]["finetune_encoder"] is True and version.settings["config"]["encoder_layers"] == 1  # its structure
    job, _ = run_job(project, fast_options(tiny_encoder, epochs=1, start_student=f"student:{model_dir(teacher)}"))  # the same, by folder
    assert job.status == "done", job.error
    misc = tmp_path / "misc-student"
    misc.mkdir()
    (misc / "student.json").write_text(json.dumps({"labels": ["O", "B-MISC", "I-MISC", "B-PER", "I-PER"]}), encoding="utf-8")
    for spec, message in [("student:Tiny de@1", "a version of this project"), ("student:Teacher en@9", "no model version 9"),
                          (f"student:{tmp_path}", "holds no saved student"), (f"student:{misc}", "it predicts MISC, which project")]:  # fmt: skip
        job, report = run_job(project, fast_options(tiny_encoder, epochs=1, start_student=spec))
        assert job.status == "failed" and isinstance(report, TrainingError) and message in str(report), (spec, report)


def test_a_relative_start_is_the_same_folder_for_the_page_and_its_job(project, tmp_path, monkeypatch):
    """The app may run from anywhere, its jobs run from the checkout: a relative spec resolves
    against the checkout too, and the job is handed the absolute folder the page checked."""
    from db.engine import session_scope

    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    (checkout / "models" / "teacher").mkdir(parents=True)
    elsewhere.mkdir()
    (checkout / "models" / "teacher" / "student.json").write_text(json.dumps({"labels": ["O", "B-PER", "I-PER"]}), encoding="utf-8")
    monkeypatch.setattr(training, "REPO_ROOT", checkout)
    monkeypatch.chdir(elsewhere)
    with session_scope() as s:
        assert training.start_student_folder(s, project.id, "student:models/teacher") == (checkout / "models" / "teacher").resolve()
        with pytest.raises(training.TrainingError, match="holds no saved student"):
            training.start_student_folder(s, project.id, "student:models/none")


def test_the_test_split_stays_fixed_and_new_gold_goes_to_training(project, tiny_encoder):
    from db import students as sq
    from db.engine import session_scope

    run_job(project, fast_options(tiny_encoder))
    with session_scope() as s:
        first = sq.model_version_item_ids(s, project.id, 1)
        silver_id = first["train_silver"][0]
        review.accept_item(s, silver_id, "ann", 0)  # reviewed: now gold
    job, _ = run_job(project, fast_options(tiny_encoder, activate="no"))
    assert job.status == "done", job.error
    with session_scope() as s:
        second = sq.model_version_item_ids(s, project.id, 2)
        versions = sq.list_model_versions(s, project.id)
    assert second["test"] == first["test"]
    assert silver_id in second["train_gold"] and silver_id not in second["train_silver"]
    assert [v.active for v in versions] == [True, False]  # --activate no
    assert versions[0].test_split == versions[1].test_split


def test_reviewed_spans_are_taught_as_gold_even_when_they_came_from_the_projection(project):
    from db.engine import session_scope

    with session_scope() as s:
        pool = {p.item.id: p for p in training.training_pool(s, project.id)}
        assert "no-target" not in pool and f"s{N_GOLD + N_SILVER:02d}" not in pool  # nothing to learn there
        projected = pool[f"s{N_GOLD:02d}"]
        assert not projected.gold and projected.source == "projection:exact"
        assert all(sp.confidence == 0.9 for sp in projected.item.target_spans)
        review.accept_item(s, projected.item_id, "ann", 0)  # accepted as is
        reviewed = next(p for p in training.training_pool(s, project.id) if p.item_id == projected.item_id)
    assert reviewed.gold and reviewed.source == "human:ann" and reviewed.item.meta["gold"] is True
    assert all(sp.confidence is None and sp.source == "human:ann" for sp in reviewed.item.target_spans)


def test_cancelling_the_job_stops_training_and_records_nothing(project, tiny_encoder, monkeypatch):
    import core.student
    import services.jobs
    from db import students as sq
    from db.engine import session_scope

    monkeypatch.setattr(services.jobs, "REPORT_INTERVAL_S", 0.0)  # every step writes and sees the cancel
    real_train = core.student.train_student
    steps: list[int] = []

    def train_and_cancel(train, dev, config, progress_cb, cancel_cb, **kwargs):
        def progress(step, total, loss):
            steps.append(step)
            if step == 2:  # the person clicks Cancel on the page
                with session_scope() as s:
                    (job,) = jobs.list_jobs(s, project.id, status="running")
                    jobs.cancel_job(s, job.id)
            progress_cb(step, total, loss)

        return real_train(train, dev, config, progress, cancel_cb, **kwargs)

    monkeypatch.setattr(core.student, "train_student", train_and_cancel)
    before = project_state(project)
    job, report = run_job(project, fast_options(tiny_encoder, epochs=30))
    assert job.status == "cancelled" and report.cancelled
    assert steps == [1, 2]  # the write after step 2 saw the cancel; step 3 never ran
    with session_scope() as s:
        assert sq.list_model_versions(s, project.id) == []
    assert student_folders(project) == [] or all(not list(p.iterdir()) for p in student_folders(project))
    assert project_state(project) == before


def test_a_crash_inside_training_leaves_a_failed_job_and_the_project_intact(project, tiny_encoder, monkeypatch):
    import core.student
    from db import students as sq
    from db.engine import session_scope

    def crash(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(core.student, "train_student", crash)
    before = project_state(project)
    job, error = run_job(project, fast_options(tiny_encoder))
    assert isinstance(error, RuntimeError)
    assert job.status == "failed" and "RuntimeError: CUDA out of memory (simulated)" in job.error
    with session_scope() as s:
        assert sq.list_model_versions(s, project.id) == []
    assert project_state(project) == before


def test_a_crash_while_recording_the_version_removes_the_saved_model(project, tiny_encoder, monkeypatch):
    import db.students as sq
    from db.engine import session_scope

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(sq, "add_model_version", broken)
        job, error = run_job(project, fast_options(tiny_encoder, epochs=1))
    assert job.status == "failed" and "disk full" in job.error
    with session_scope() as s:
        assert sq.list_model_versions(s, project.id) == []
    assert all(not list(p.iterdir()) for p in student_folders(project))  # neither the version nor the temporary folder


def test_training_without_any_labelled_item_fails_with_a_clear_error(lb_env, tiny_encoder):
    from cli.main import main
    from db.engine import dispose_engine, init_db, session_scope

    init_db()
    with session_scope() as s:
        info = projects.create_project(s, "Empty", "en", "de", ["PER"])
        db_items.import_items(s, info.id, [_item(k, None) for k in range(3)], span_source=None)
    rc = main(["train", "--project", "Empty", "--encoder", tiny_encoder, "--epochs", "1"])
    with session_scope() as s:
        (job,) = jobs.list_jobs(s, info.id)
    dispose_engine()
    assert rc == 2
    assert job.kind == "train" and job.status == "failed" and "nothing to train on" in job.error


# --------------------------------------------------------------------------- prediction


def test_predict_stores_a_student_span_set_with_uncertainty_and_disagreement(project, tiny_encoder):
    from db import students as sq
    from db.engine import session_scope

    run_job(project, fast_options(tiny_encoder))
    job, report = run_job(project, None, kind="predict")
    assert job.status == "done", job.error
    n_targets = N_GOLD + N_SILVER + N_PLAIN
    assert (report.items, report.skipped) == (n_targets, 1) and job.message == f"version 1 predicted {n_targets} item(s), 1 without a translation"
    with session_scope() as s:
        scores = sq.student_scores(s, project.id)
        records = {r.external_id: r for r in db_items.load_items(s, db_items.item_ids(s, project.id))}
        assert sq.student_prediction_counts(s, project.id) == {"student:1": n_targets}
    assert len(scores) == n_targets and "no-target" not in {records[k].external_id for k in records if records[k].id in scores}
    from core.student import disagreement as student_disagreement
    from core.student import load_student, predict_details
    from services.training import model_dir

    with session_scope() as s:
        student = load_student(model_dir(sq.active_model_version(s, project.id)), device="cpu")
    targets = {k: r for k, r in records.items() if r.target is not None}
    own = dict(zip(targets, predict_details(student, [r.target for r in targets.values()], source="student:1")))
    for ext_id, record in records.items():
        if record.target is None:
            continue
        spans = record.spans_of("target", "student:1")
        assert all(sp.source == "student:1" and 0.0 <= sp.confidence <= 1.0 for sp in spans)
        uncertainty, disagreement = scores[record.id]
        assert 0.0 <= uncertainty <= 1.0
        has_projection = record.annotations.span_set("target", "projection:exact") is not None
        assert (disagreement is not None) == has_projection
        if has_projection:  # the student's own view of the projected tags (core.student.disagreement)
            prediction = own[ext_id]
            assert [sp.key() for sp in prediction.spans] == [sp.key() for sp in spans]
            expected = student_disagreement(prediction, record.spans_of("target", "projection:exact"))
            assert 0.0 <= disagreement <= 1.0 and disagreement == pytest.approx(expected, abs=1e-6)


def test_a_new_version_replaces_the_earlier_predictions(project, tiny_encoder):
    from cli.main import main
    from db import students as sq
    from db.engine import session_scope

    run_job(project, fast_options(tiny_encoder))
    run_job(project, None, kind="predict")
    run_job(project, fast_options(tiny_encoder, activate="no", seed=2))
    assert main(["students", "--project", project.name, "--activate", "2"]) == 0
    assert main(["predict", "--project", project.name]) == 0  # the active version, as a job of its own
    with session_scope() as s:
        assert sq.student_prediction_counts(s, project.id) == {"student:2": N_GOLD + N_SILVER + N_PLAIN}
        assert sq.active_model_version(s, project.id).version == 2


def test_predict_without_a_version_says_so(project):
    from cli.main import main

    assert main(["predict", "--project", project.name]) == 2


def test_cli_train_runs_as_a_job_and_prints_the_version(project, tiny_encoder, capsys):
    from cli.main import main
    from db.engine import session_scope

    rc = main(["train", "--project", project.name, "--encoder", tiny_encoder, "--epochs", "1", "--batch-size", "4", "--head-lr", "0.01"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["version"] == 1 and out["active"] and out["item_counts"]["test"] == 3 and Path(out["path"]).is_dir()
    with session_scope() as s:
        (job,) = jobs.list_jobs(s, project.id)
    assert (job.id, job.kind, job.status) == (out["job"], "train", "done")


def test_one_active_version_per_project(project, tiny_encoder):
    from db import students as sq
    from db.engine import session_scope

    with session_scope() as s:
        for v in (1, 2):
            sq.add_model_version(s, project.id, version=v, path=f"students/x/{v}", settings={}, item_ids={}, metrics={}, activate=True)
        assert [v.active for v in sq.list_model_versions(s, project.id)] == [False, True]
        sq.activate_model_version(s, project.id, 1)
        assert [v.active for v in sq.list_model_versions(s, project.id)] == [True, False]
        with pytest.raises(errors.DuplicateError):
            sq.add_model_version(s, project.id, version=1, path="students/x/1b", settings={}, item_ids={}, metrics={})
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from db import student_models as sm

    with pytest.raises(IntegrityError):  # the database itself refuses a second active version
        with session_scope() as s:
            s.execute(update(sm.ModelVersion).where(sm.ModelVersion.project_id == project.id).values(active=True))


def test_one_training_job_per_project_at_a_time(project, tiny_encoder):
    import os

    from core.config import settings
    from db.engine import session_scope
    from services.training import start_training_job

    with session_scope() as s:
        job = jobs.create_job(s, "train", project.id)
        jobs.update_job(s, job.id, pid=os.getpid())  # a live worker
    with pytest.raises(errors.QueryError, match=f"training job {job.id} of project 'Tiny de' is still running"):
        with session_scope(settings().db_url) as s:
            start_training_job(s, project.id, fast_options(tiny_encoder))


def test_the_review_queue_orders_by_the_stored_student_uncertainty(project, tiny_encoder):
    from core.annotations.queue import QueueFilter
    from db import queue as dbqueue
    from db import students as sq
    from db.engine import session_scope
    from services import queue as squeue

    run_job(project, fast_options(tiny_encoder))
    run_job(project, None, kind="predict")
    with session_scope() as s:
        squeue.ensure_stats(s, project.id)
        scores = sq.student_scores(s, project.id)
        rows = dbqueue.queue_rows(s, project.id, "ann", QueueFilter(order="uncertainty"), limit=100)
    predicted = [r for r in rows if r.id in scores]
    assert len(predicted) == len(scores)
    assert [r.uncertainty for r in predicted] == pytest.approx([scores[r.id][0] for r in predicted])
    assert [r.uncertainty for r in predicted] == sorted((r.uncertainty for r in predicted), reverse=True)


def test_a_killed_training_worker_leaves_a_failed_job_and_the_active_version_intact(project, tiny_encoder):
    """kill -9 of the worker process mid-training: the job ends failed, version 1 stays the
    active one and still loads, no half-written version or folder is left, no item changed."""
    import os
    import signal
    import time

    from core.config import settings
    from core.student import load_student
    from db import students as sq
    from db.engine import session_scope
    from services.jobs import refresh_jobs
    from services.training import model_dir, start_training_job

    job, _ = run_job(project, fast_options(tiny_encoder, epochs=1))
    assert job.status == "done", job.error
    before, folders = project_state(project), student_folders(project)
    with session_scope(settings().db_url) as s:
        worker = start_training_job(s, project.id, fast_options(tiny_encoder, epochs=5000, batch_size=2))
    deadline = time.monotonic() + 120
    while True:  # wait until the worker is inside training (it reported a step)
        with session_scope() as s:
            state = jobs.get_job(s, worker.id)
        if state.status == "running" and (state.done or 0) > 0:
            break
        assert state.status in ("queued", "running") and time.monotonic() < deadline, (state.status, state.error, state.message)
        time.sleep(0.2)
    os.kill(state.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        with session_scope(settings().db_url) as s:
            (seen,) = [j for j in refresh_jobs(s, project.id) if j.id == worker.id]
        if seen.status != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen.status == "failed" and "stopped without finishing" in seen.error
    with session_scope() as s:
        versions = sq.list_model_versions(s, project.id)
        active = sq.active_model_version(s, project.id)
    assert [v.version for v in versions] == [1] and active is not None and active.version == 1
    assert load_student(model_dir(active), device="cpu").labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert student_folders(project) == folders and project_state(project) == before
