"""Database layer: migrations, engine settings, import/load, the edit log through the review
actions, export, pipeline results, jobs, users.

Every test runs on a temporary SQLite file and, when PostgreSQL server binaries are
installed (initdb, pg_ctl), again on a throwaway PostgreSQL server started in a temp dir.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from itertools import count
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.annotations import ledger
from core.config import REPO_ROOT
from core.data import Item, Link, Sentence, SpanError, make_span
from db import edits, items, jobs, projects, span_sets, stages, users
from db import models as orm
from db.engine import current_revision, dispose_engine, get_engine, head_revision, init_db, schema_diff, session_scope
from db.errors import DuplicateError, ItemImportError, JobCancelledError, NotFoundError, QueryError
from services import export, labels, review
from services.users import check_login

# --------------------------------------------------------------------------- PostgreSQL server


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server():
    """(host, port) of a throwaway PostgreSQL server, or a skip with the reason."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed; PostgreSQL variant not run")
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            import pwd

            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run initdb as")
        prefix = ["runuser", "-u", "postgres", "--"]
    # tmpfs when there is one: a cluster of throwaway databases is written and removed fast.
    shm = Path("/dev/shm")
    tmp = Path(tempfile.mkdtemp(prefix="lb-pg-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    if prefix:
        os.chown(tmp, pg_user.pw_uid, pg_user.pw_gid)
    data, port = tmp / "data", _free_port()
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(tmp / "server.log"),
                "-w",
                "-o",
                f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {exc.stderr.decode(errors='replace')[-300:]}")
    host = "127.0.0.1"
    # One migrated template database; each test gets a fast copy of it (CREATE DATABASE ... TEMPLATE).
    template_url = f"postgresql+psycopg2://postgres@{host}:{port}/lb_template"
    _pg_execute(host, port, "CREATE DATABASE lb_template")
    init_db(template_url)
    dispose_engine(template_url)  # a template must have no open connections
    yield (host, port)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-t", "20", "stop"], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)


def _pg_execute(host: str, port: int, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


_db_numbers = count()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, migrated database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'labelbridge.db'}"  # parent folder created by get_engine
    else:
        host, port = request.getfixturevalue("pg_server")
        name = f"lb_test_{os.getpid()}_{next(_db_numbers)}"
        _pg_execute(host, port, f"CREATE DATABASE {name} TEMPLATE lb_template STRATEGY FILE_COPY")
        url = f"postgresql+psycopg2://postgres@{host}:{port}/{name}"
    init_db(url)
    yield url
    dispose_engine(url)
    if request.param == "postgresql":
        _pg_execute(host, port, f"DROP DATABASE {name}")


@pytest.fixture()
def media_dir(tmp_path) -> Path:
    return tmp_path / "media"


# --------------------------------------------------------------------------- helpers


def _png_file(folder: Path, name: str, color=(10, 120, 200)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.new("RGB", (6, 4), color).save(path, format="PNG")
    return path


def make_item(n: int, image: str | None = None, target: bool = True, spans: bool = True) -> Item:
    src = Sentence.from_words(["Angela", "Merkel", "visited", "Paris", f"#{n}"], "en")
    tgt = Sentence.from_words(["Angela", "Merkel", "besuchte", "Paris", f"#{n}"], "de") if target else None
    return Item(
        id=f"s{n}",
        source=src,
        source_spans=[make_span(src, 0, 2, "PER"), make_span(src, 3, 4, "LOC")] if spans else [],
        target=tgt,
        target_spans=[make_span(tgt, 0, 2, "PER", "projection:heuristic", 0.9)] if tgt is not None and spans else [],
        image=image,
        meta={"aligner": "simalign", "doc": "d1"},
        alignment=[Link(i, i, 0.8) for i in range(5)] if tgt is not None else [],
    )


def new_project(url: str, labels=("PER", "LOC", "ORG", "MISC")) -> int:
    with session_scope(url) as s:
        return projects.create_project(s, "demo", "en", "de", list(labels), {"label_map": {"PERS": "PER"}}).id


def import_demo(url: str, media_dir: Path, n: int = 3) -> tuple[int, list[int]]:
    pid = new_project(url)
    with session_scope(url) as s:
        report = items.import_items(s, pid, [make_item(i) for i in range(n)], media_dir)
        assert report.added == n
        ids = items.item_ids(s, pid)
    return pid, ids


# --------------------------------------------------------------------------- schema and engine


def test_migrations_create_schema_matching_models(db_url: str) -> None:
    assert current_revision(db_url) == head_revision()
    tables = set(inspect(get_engine(db_url)).get_table_names())
    assert {"users", "projects", "images", "items", "item_stages", "span_sets", "alignments", "edits", "jobs"} <= tables
    assert schema_diff(db_url) == []  # `alembic check`: autogenerate finds nothing to migrate
    index_cols = {tuple(ix["column_names"]) for ix in inspect(get_engine(db_url)).get_indexes("items")}
    assert ("project_id", "status", "position") in index_cols


def test_sqlite_pragmas_and_parent_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'nested' / 'x.db'}"
    try:
        engine = get_engine(url)
        assert get_engine(url) is engine  # cached per URL
        assert (tmp_path / "new" / "nested").is_dir()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        dispose_engine(url)


def test_default_url_comes_from_settings(lb_env: Path) -> None:
    try:
        init_db()
        assert (lb_env / "test.db").is_file()
        with session_scope() as s:
            projects.create_project(s, "p", "en", "de", ["PER"])
        with session_scope() as s:
            assert [p.name for p in projects.list_projects(s)] == ["p"]
    finally:
        dispose_engine()


def test_foreign_keys_are_enforced(db_url: str) -> None:
    with pytest.raises(IntegrityError):
        with session_scope(db_url) as s:
            s.add(orm.SpanSet(item_id=12345, side="source", source="gold", spans=[]))


def test_session_scope_rolls_back_on_error(db_url: str) -> None:
    with pytest.raises(RuntimeError):
        with session_scope(db_url) as s:
            projects.create_project(s, "gone", "en", "de", ["PER"])
            raise RuntimeError("boom")
    with session_scope(db_url) as s:
        assert projects.list_projects(s) == []


# --------------------------------------------------------------------------- projects


def test_projects_create_duplicate_settings_and_summary(db_url: str, media_dir: Path) -> None:
    pid = new_project(db_url)
    with session_scope(db_url) as s, pytest.raises(DuplicateError, match="'demo' already exists"):
        projects.create_project(s, "demo", "en", "es", ["PER"])
    with session_scope(db_url) as s:
        info = projects.update_project_settings(s, pid, {"pipeline": {"aligner": "simalign"}})
        assert info.settings == {"label_map": {"PERS": "PER"}, "pipeline": {"aligner": "simalign"}}
        assert projects.get_project(s, "demo").id == pid and projects.get_project(s, pid).name == "demo"
        with pytest.raises(NotFoundError):
            projects.get_project(s, "nope")
        with pytest.raises(QueryError, match="twice"):
            projects.create_project(s, "other", "en", "de", ["PER", "PER"])
        items.import_items(s, pid, [make_item(0), make_item(1, target=False)], media_dir)
        (summary,) = projects.list_projects(s)
        assert (summary.name, summary.n_items, summary.n_reviewed, summary.n_with_image, summary.n_target) == ("demo", 2, 0, 0, 1)
        assert summary.labels == ("PER", "LOC", "ORG", "MISC")


# --------------------------------------------------------------------------- import and load


def _current(url: str, item_id: int, media_dir: Path):  # noqa: ANN202
    """The item as export writes it (ledger labels), from a new session."""
    with session_scope(url) as s:
        return labels.labelled_item(s, item_id, media_dir)


def test_import_load_round_trip_with_spans_alignment_and_image(db_url: str, media_dir: Path, tmp_path: Path) -> None:
    pid = new_project(db_url)
    pictures = tmp_path / "pictures"
    _png_file(pictures, "a.png")
    originals = [make_item(0, image="a.png"), make_item(1, image=str(pictures / "a.png")), make_item(2)]
    with session_scope(db_url) as s:
        report = items.import_items(s, pid, originals, media_dir, image_root=pictures)
    assert (report.added, report.skipped_duplicates, report.images_stored, report.new_labels) == (3, (), 2, ())
    with session_scope(db_url) as s:
        ids = items.item_ids(s, pid)
        rec = items.load_item(s, ids[0], media_dir)
        it = labels.labelled_item(s, ids[0], media_dir)
        assert s.scalar(select(func.count()).select_from(orm.Image)) == 1  # same bytes stored once
    assert (rec.external_id, rec.position, rec.status, rec.version) == ("s0", 0, "new", 1)
    assert it.source.text == originals[0].source.text and it.source.tokens == originals[0].source.tokens
    assert it.source.lang == "en" and it.target is not None and it.target.lang == "de"
    assert [sp.key() for sp in it.source_spans] == [(0, 2, "PER"), (3, 4, "LOC")]
    assert {sp.source for sp in it.source_spans} == {"gold"}
    assert it.target_spans == originals[0].target_spans  # source and confidence survive
    assert {(r.side, r.source) for r in rec.annotations.span_sets} == {("source", "gold"), ("target", "projection:heuristic")}
    assert rec.alignments == {"simalign": originals[0].alignment} and it.alignment == originals[0].alignment
    assert it.meta == {"aligner": "simalign", "doc": "d1"}
    assert rec.image_path is not None and rec.image_path.is_file()
    assert rec.image_path.parent.parent == media_dir and it.image == str(rec.image_path)
    assert rec.annotations.events == ()
    with session_scope(db_url) as s:
        exported = export.export_selection(s, pid, media_dir=media_dir)
    assert [e.id for e in exported] == ["s0", "s1", "s2"]
    assert exported[2].image is None and exported[1].image == str(rec.image_path)
    for original, back in zip(originals, exported):
        assert back.source_spans == original.source_spans and back.target_spans == original.target_spans
        assert back.alignment == original.alignment


def test_import_skips_duplicates_and_appends_in_order(db_url: str, media_dir: Path) -> None:
    pid, _ = import_demo(db_url, media_dir, n=1)
    progress: list[tuple[int, int]] = []
    with session_scope(db_url) as s:
        report = items.import_items(s, pid, [make_item(1)], media_dir, on_progress=lambda d, t: progress.append((d, t)))
        assert report.added == 1 and progress == [(1, 1)]
        report = items.import_items(s, pid, [make_item(1), make_item(5), make_item(5), make_item(6)], media_dir)
    assert report.added == 2 and report.skipped_duplicates == ("s1", "s5")
    with session_scope(db_url) as s:
        assert export.count_export_items(s, pid) == 4
        assert [it.id for it in export.iter_export(s, pid, media_dir=media_dir)] == ["s0", "s1", "s5", "s6"]
        rows = items.load_items(s, items.item_ids(s, pid))
        assert [it.id for it in labels.iter_labelled_items(s, items.item_ids(s, pid), media_dir, batch_size=3)] == ["s0", "s1", "s5", "s6"]
    assert [(r.external_id, r.position) for r in rows] == [("s0", 0), ("s1", 1), ("s5", 2), ("s6", 3)]


def test_import_is_all_or_nothing(db_url: str, media_dir: Path, tmp_path: Path) -> None:
    pid = new_project(db_url)
    bad = make_item(2)
    bad.source_spans = [make_span(bad.source, 0, 1, "PER").__class__(0, 9, "PER", 0, 40)]  # outside the sentence
    good_image = _png_file(tmp_path, "ok.png")
    with session_scope(db_url) as s, pytest.raises(ItemImportError) as err:
        items.import_items(s, pid, [make_item(0, image=str(good_image)), make_item(1), bad], media_dir)
    assert "position 2" in str(err.value) and "item s2" in str(err.value)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with session_scope(db_url) as s, pytest.raises(ItemImportError, match=r"position 1 \(id 's1'\): image .*broken.png"):
        items.import_items(s, pid, [make_item(0, image=str(good_image)), make_item(1, image=str(broken))], media_dir)
    with session_scope(db_url) as s, pytest.raises(ItemImportError, match="relative image path"):
        items.import_items(s, pid, [make_item(0, image="ok.png")], media_dir)
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(orm.Item)) == 0
        assert s.scalar(select(func.count()).select_from(orm.SpanSet)) == 0
        assert s.scalar(select(func.count()).select_from(orm.Image)) == 0
    assert not [p for p in media_dir.rglob("*") if p.is_file()]  # images written by the refused call removed


def test_empty_gold_set_is_not_overridden_by_machine_spans(db_url: str, media_dir: Path) -> None:
    pid = new_project(db_url)
    with session_scope(db_url) as s:
        items.import_items(s, pid, [make_item(0, spans=False)], media_dir)
        (item_id,) = items.item_ids(s, pid)
        src = items.load_item(s, item_id, media_dir).source
        span_sets.save_span_set(s, item_id, "source", "teacher", [make_span(src, 3, 4, "LOC", "teacher", 0.7)])
        rec = items.load_item(s, item_id, media_dir)
    source = ledger.labels(rec.annotations, "source")
    assert source.spans == () and (source.source, source.kind) == ("gold", "gold")
    assert ledger.labels(rec.annotations, "target").kind == "none"  # no target set at all
    assert [sp.key() for sp in rec.spans_of("source", "teacher")] == [(3, 4, "LOC")]


def test_projection_stays_the_suggestion_after_a_newer_student_prediction(db_url: str, media_dir: Path) -> None:
    pid = new_project(db_url)
    with session_scope(db_url) as s:
        items.import_items(s, pid, [make_item(0, spans=False, target=True)], media_dir, target_span_source=None)
        (item_id,) = items.item_ids(s, pid)
        tgt = items.load_item(s, item_id, media_dir).target
        span_sets.save_span_set(s, item_id, "target", "student:1", [make_span(tgt, 0, 1, "PER", "student:1", 0.4)])
        rec = items.load_item(s, item_id, media_dir)
        assert ledger.labels(rec.annotations, "target").kind == "none"  # a student alone is never the suggestion
        span_sets.save_span_set(s, item_id, "target", "projection:ilp", [make_span(tgt, 0, 2, "PER", "projection:ilp", 0.9)])
        span_sets.save_span_set(s, item_id, "target", "student:2", [make_span(tgt, 3, 4, "LOC", "student:2", 0.5)])
        rec = items.load_item(s, item_id, media_dir)
        view = review.load_view(s, item_id, "ann", media_dir)
    assert ledger.labels(rec.annotations, "target").source == "projection:ilp"
    assert view.suggestion_source["target"] == "projection:ilp" and [sp.key() for sp in view.spans["target"]] == [(0, 2, "PER")]
    assert [sp.key() for sp in _current(db_url, item_id, media_dir).target_spans] == [(0, 2, "PER")]


def test_new_labels_are_added_to_the_project(db_url: str, media_dir: Path) -> None:
    pid = new_project(db_url, labels=("PER",))
    with session_scope(db_url) as s:
        report = items.import_items(s, pid, [make_item(0)], media_dir)
        assert report.new_labels == ("LOC",)
        assert projects.get_project(s, pid).labels == ("PER", "LOC")


# --------------------------------------------------------------------------- the edit log (through the review actions)


def test_edits_append_and_never_overwrite(db_url: str, media_dir: Path) -> None:
    pid, ids = import_demo(db_url, media_dir)
    with session_scope(db_url) as s:
        view = review.load_view(s, ids[0], "alice", media_dir)
        tgt = view.record.target
        first = [make_span(tgt, 0, 2, "PER", "human:alice"), make_span(tgt, 3, 4, "LOC", "human:alice")]
        r1 = review.save_edit(s, ids[0], "target", first, "alice", view.head)
        r2 = review.accept_item(s, ids[0], "alice", r1.head)
    with session_scope(db_url) as s:
        second = [make_span(tgt, 3, 4, "LOC", "human:bob")]
        r3 = review.save_edit(s, ids[0], "target", second, "bob", 0, comment="not a person")
    assert (r1.version, r2.version, r3.version) == (2, 3, 4)
    with session_scope(db_url) as s:
        rec = items.load_item(s, ids[0], media_dir)
        log = edits.history(s, ids[0])
    current = _current(db_url, ids[0], media_dir)
    assert rec.status == "reviewed" and rec.version == 4
    assert current.target_spans == first  # alice accepted; bob's draft does not replace her decision
    assert [sp.key() for sp in current.source_spans] == [(0, 2, "PER"), (3, 4, "LOC")]  # other side untouched
    assert [(e.user, e.action, e.side, e.base_version) for e in log] == [
        ("alice", "edit", "target", 1), ("alice", "accept", "target", 2), ("bob", "edit", "target", 3),
    ]  # fmt: skip
    assert [sp.key() for sp in log[0].before.spans] == [(0, 2, "PER")]  # what was shown: the projection
    assert list(log[0].after.spans) == first and list(log[2].before.spans) == [make_span(tgt, 0, 2, "PER", "projection:heuristic", 0.9)]
    assert list(log[2].after.spans) == second and log[2].comment == "not a person"
    # The log itself cannot be changed: ORM guard and database trigger.
    with pytest.raises(orm.AppendOnlyError):
        with session_scope(db_url) as s:
            row = s.scalars(select(orm.Edit)).first()
            row.comment = "rewritten"
    with pytest.raises(DBAPIError, match="append-only"):
        with session_scope(db_url) as s:
            s.execute(update(orm.Edit).values(comment="rewritten").execution_options(synchronize_session=False))
    with pytest.raises(DBAPIError, match="append-only"):
        with session_scope(db_url) as s:
            s.execute(text("DELETE FROM edits"))
    with session_scope(db_url) as s:
        assert [e.comment for e in edits.history(s, ids[0])] == [None, None, "not a person"]


def test_edits_are_validated_before_anything_is_written(db_url: str, media_dir: Path) -> None:
    pid, ids = import_demo(db_url, media_dir)
    with session_scope(db_url) as s:
        src = items.load_item(s, ids[0], media_dir).source
        with pytest.raises(SpanError, match="item s0 source: spans .* overlap"):
            review.save_edit(s, ids[0], "source", [make_span(src, 0, 2, "PER"), make_span(src, 1, 3, "LOC")], "alice", 0)
        with pytest.raises(QueryError, match="label\\(s\\) DATE not in the project"):
            review.save_edit(s, ids[0], "source", [make_span(src, 0, 1, "DATE")], "alice", 0)
        with pytest.raises(QueryError, match="span action"):
            review.save_edit(s, ids[0], "source", [], "alice", 0, action="undo")
        with pytest.raises(QueryError, match="user name"):
            review.save_edit(s, ids[0], "source", [], " ", 0)
        assert edits.history(s, ids[0]) == []


def test_stale_head_raises_conflict_with_current_state(db_url: str, media_dir: Path) -> None:
    pid, ids = import_demo(db_url, media_dir)
    with session_scope(db_url) as s:
        tab = review.load_view(s, ids[0], "alice", media_dir)
    tgt = tab.record.target
    alice = [make_span(tgt, 0, 2, "PER", "human:alice")]
    with session_scope(db_url) as s:
        review.save_edit(s, ids[0], "target", alice, "alice", tab.head)
    with pytest.raises(review.ReviewConflictError) as err:
        with session_scope(db_url) as s:
            review.save_edit(s, ids[0], "target", [], "alice", tab.head)  # the second tab still has the old head
    assert err.value.current_spans == alice and err.value.side == "target" and [c.user for c in err.value.changes] == ["alice"]
    with pytest.raises(review.ReviewConflictError):
        with session_scope(db_url) as s:
            review.set_status(s, ids[0], "alice", "skipped", base_head=tab.head)
    with session_scope(db_url) as s:
        assert [e.user for e in edits.history(s, ids[0])] == ["alice"]
        assert review.load_view(s, ids[0], "alice", media_dir).spans["target"] == alice


def test_concurrent_update_between_read_and_write_is_a_conflict(db_url: str, media_dir: Path) -> None:
    """The version check is a compare-and-set in the UPDATE, not only a read-time check."""
    pid, ids = import_demo(db_url, media_dir)
    with session_scope(db_url) as s:
        src = items.load_item(s, ids[0], media_dir).source
        row = s.get(orm.Item, ids[0])  # loaded at version 1 into this session
        with session_scope(db_url) as other:
            r = review.save_edit(other, ids[0], "source", [make_span(src, 0, 1, "PER")], "bob", 0)
            review.accept_item(other, ids[0], "bob", r.head)
        row.status = "skipped"
        with pytest.raises(Exception) as err:
            s.flush()
        assert "StaleDataError" in type(err.value).__name__
        s.rollback()
    with session_scope(db_url) as s:
        assert items.load_item(s, ids[0], media_dir).status == "reviewed"
    with session_scope(db_url) as s:  # the write path itself: a stale version is refused, nothing written
        rec = items.load_item(s, ids[0], media_dir)
        with pytest.raises(items.StaleItemError):
            items.bump_item(s, ids[0], rec.version - 1)


def test_undo_redo_across_sessions(db_url: str, media_dir: Path) -> None:
    pid, ids = import_demo(db_url, media_dir)
    item_id = ids[1]
    with session_scope(db_url) as s:
        view = review.load_view(s, item_id, "alice", media_dir)
    src = view.record.source
    gold = view.spans["source"]
    a = [make_span(src, 0, 2, "ORG", "human:alice")]
    b = [make_span(src, 0, 2, "ORG", "human:alice"), make_span(src, 3, 4, "LOC", "human:alice")]

    def mine(user: str = "alice"):  # noqa: ANN202 - a new session each time: nothing kept in memory
        with session_scope(db_url) as s:
            return review.load_view(s, item_id, user, media_dir)

    with session_scope(db_url) as s:
        h = review.save_edit(s, item_id, "source", a, "alice", view.head).head
    with session_scope(db_url) as s:
        h = review.save_edit(s, item_id, "source", b, "alice", h).head
    assert mine().spans["source"] == b
    dispose_engine(db_url)  # like a restart of the app
    with session_scope(db_url) as s:
        h = review.undo(s, item_id, "alice", h, "source").head
    assert mine().spans["source"] == a
    with session_scope(db_url) as s:
        review.undo(s, item_id, "alice", None, "source")
    v = mine()
    assert v.spans["source"] == gold and v.own["source"] is False and v.suggestion_source["source"] == "gold"
    assert v.undo_side is None and v.redo_side == "source"
    with session_scope(db_url) as s, pytest.raises(review.NothingToUndoError):
        review.undo(s, item_id, "alice", None, "source")
    with session_scope(db_url) as s:
        review.redo(s, item_id, "alice", None, "source")
    assert mine().spans["source"] == a
    with session_scope(db_url) as s:
        result = review.redo(s, item_id, "alice", None, "source")
    v = mine()
    assert v.spans["source"] == b and v.record.version == result.version == 7 and v.redo_side is None
    with session_scope(db_url) as s, pytest.raises(review.NothingToUndoError, match="nothing to redo"):
        review.redo(s, item_id, "alice", None, "source")
    # A new edit after an undo drops the redo branch; bob's undo cannot touch alice's work.
    with session_scope(db_url) as s:
        h = review.undo(s, item_id, "alice", None, "source").head
        review.save_edit(s, item_id, "source", [], "alice", h, action="reject")
        with pytest.raises(review.NothingToUndoError):
            review.undo(s, item_id, "bob", None, "source")
    v = mine()
    assert v.spans["source"] == [] and v.redo_side is None and v.undo_side == "source"
    assert mine("bob").spans["source"] == gold
    with session_scope(db_url) as s:
        actions = [e.action for e in edits.history(s, item_id)]
    assert actions == ["edit", "edit", "undo", "undo", "redo", "redo", "undo", "reject"]


def test_statuses_counts_and_the_shared_status(db_url: str, media_dir: Path, tmp_path: Path) -> None:
    pid = new_project(db_url)
    _png_file(tmp_path, "p.png")
    batch = [make_item(i, image="p.png" if i % 2 == 0 else None, target=i != 4) for i in range(6)]
    with session_scope(db_url) as s:
        items.import_items(s, pid, batch, media_dir, image_root=tmp_path)
        ids = items.item_ids(s, pid)
        review.set_status(s, ids[1], "alice", "flagged", comment="odd translation")
        review.set_status(s, ids[2], "alice", "skipped")
        review.accept_item(s, ids[3], "alice", 0)
    with session_scope(db_url) as s:
        rec = items.load_item(s, ids[1], media_dir)
        assert rec.status == "flagged" and rec.flag_comment == "odd translation"
        (log,) = edits.history(s, ids[1])
        assert (log.action, log.side, log.before, log.after) == ("flag", None, ledger.StatusChange("new"), ledger.StatusChange("flagged", "odd translation"))
        assert items.item_ids(s, pid, "reviewed") == [ids[3]]
        assert items.find_item(s, pid, "s5") == ids[5] and items.find_item(s, pid, "#3") == ids[2] and items.find_item(s, pid, "x") is None
        assert items.occurrence_items(s, pid, "target", "besuchte") == [ids[i] for i in (0, 1, 2, 3, 5)]  # s4 has no target
        assert items.occurrence_items(s, pid, "source", "%") == []  # wildcards are literal
        assert projects.project_counts(s, pid) == {
            "total": 6, "new": 3, "reviewed": 1, "skipped": 1, "flagged": 1, "with_image": 3, "with_target": 5,
        }  # fmt: skip
        review.set_status(s, ids[1], "alice", "new")
        assert items.load_item(s, ids[1], media_dir).flag_comment is None
        with pytest.raises(QueryError, match="unknown status"):
            review.set_status(s, ids[1], "alice", "done")


def test_export_current_spans_and_reviewed_only(db_url: str, media_dir: Path) -> None:
    pid, ids = import_demo(db_url, media_dir, n=3)
    with session_scope(db_url) as s:
        tgt = items.load_item(s, ids[2], media_dir).target
        fixed = [make_span(tgt, 0, 2, "PER", "human:alice"), make_span(tgt, 3, 4, "LOC", "human:alice")]
        review.accept_item(s, ids[2], "alice", 0, {"target": fixed})
        review.set_status(s, ids[0], "alice", "skipped")
    with session_scope(db_url) as s:
        everything = export.export_selection(s, pid, "all", media_dir)
        reviewed = export.export_selection(s, pid, "reviewed", media_dir)
    assert [it.id for it in everything] == ["s0", "s1", "s2"]
    assert [it.id for it in reviewed] == ["s2"] and reviewed[0].target_spans == fixed
    assert [sp.source for sp in everything[1].target_spans] == ["projection:heuristic"]


def test_committed_edit_survives_a_killed_process(db_url: str, media_dir: Path) -> None:
    pid, ids = import_demo(db_url, media_dir, n=1)
    script = f"""
import os, signal
from core.data import make_span
from db.engine import session_scope
from db.items import load_item
from services import review
url, item_id = {db_url!r}, {ids[0]}
with session_scope(url) as s:
    src = load_item(s, item_id).source
    r = review.save_edit(s, item_id, "source", [make_span(src, 0, 1, "PER", "human:crash")], "crash", 0)
    review.accept_item(s, item_id, "crash", r.head)
print("committed", flush=True)
with session_scope(url) as s:  # an open, unfinished second transaction at the moment of the kill
    review.set_status(s, item_id, "crash", "flagged", "broken")
    os.kill(os.getpid(), signal.SIGKILL)
"""
    env = {**os.environ, "LABELBRIDGE_DATA": str(media_dir.parent / "data")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.strip() == "committed"
    dispose_engine(db_url)  # reopen from disk
    with session_scope(db_url) as s:
        rec = items.load_item(s, ids[0], media_dir)
        log = edits.history(s, ids[0])
    assert [(e.user, e.action, e.side) for e in log] == [("crash", "edit", "source"), ("crash", "accept", "source"), ("crash", "accept", "target")]
    assert [sp.key() for sp in _current(db_url, ids[0], media_dir).source_spans] == [(0, 1, "PER")]
    assert rec.status == "reviewed" and rec.version == 3  # the unfinished flag never happened


def test_concurrent_writers_wait_instead_of_failing(db_url: str, media_dir: Path) -> None:
    pid, ids = import_demo(db_url, media_dir, n=4)
    failures: list[BaseException] = []

    def work(item_id: int, user: str) -> None:
        try:
            head = 0
            for k in range(8):
                with session_scope(db_url) as s:
                    src = items.load_item(s, item_id, media_dir).source
                    head = review.save_edit(s, item_id, "source", [make_span(src, k % 5, k % 5 + 1, "PER")], user, head).head
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(ids[i], f"u{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(orm.Edit)) == 32


# --------------------------------------------------------------------------- pipeline results


def test_stage_results_targets_sets_alignments_and_resume(db_url: str, media_dir: Path) -> None:
    pid = new_project(db_url)
    with session_scope(db_url) as s:
        items.import_items(s, pid, [make_item(i, target=False) for i in range(4)], media_dir)
        assert len(stages.items_needing_stage(s, pid, "project")) == 4
        batch = labels.labelled_items(s, items.item_ids(s, pid)[:2], media_dir)
    produced = []
    for it in batch:
        tgt = Sentence.from_words(["Angela", "Merkel", "war", "in", "Paris"])
        spans = [make_span(tgt, 0, 2, "PER", "projection:heuristic", 0.8)]
        produced.append(it.with_(target=tgt, target_spans=spans, alignment=[Link(0, 0), Link(1, 1), Link(3, 4)]))
    unprojected = {"s0": [batch[0].source_spans[1]]}
    with session_scope(db_url) as s:
        n = span_sets.save_stage_results(
            s, pid, "project", produced, outputs={"target": "projection:heuristic"}, aligner="simalign",
            unprojected=unprojected, settings={"method": "heuristic"}, errors={"s2": "aligner crashed"},
        )  # fmt: skip
        assert n == 2
        ids = items.item_ids(s, pid)
        rec = items.load_item(s, ids[0], media_dir)
        assert rec.target is not None and rec.target.lang == "de"
        assert [sp.key() for sp in labels.labelled_item(s, ids[0]).target_spans] == [(0, 2, "PER")]
        assert list(rec.annotations.span_set("target", "projection:heuristic").unprojected) == [batch[0].source_spans[1]]
        assert rec.alignments["simalign"] == [Link(0, 0), Link(1, 1), Link(3, 4)]
        assert rec.stages["project"].status == "done"
        third = items.load_item(s, ids[2], media_dir)
        assert (third.stages["project"].status, third.stages["project"].error) == ("failed", "aligner crashed")
        assert stages.items_needing_stage(s, pid, "project") == ids[2:]
        assert stages.items_needing_stage(s, pid, "project", retry_failed=False) == ids[3:]
        # A person labels the target: a new translation may no longer replace it.
        review.save_edit(s, rec.id, "target", [], "alice", 0)
        with pytest.raises(QueryError, match="human or gold labels"):
            span_sets.save_target(s, rec.id, Sentence.from_words(["Andere", "Übersetzung"]))
        # Without human labels a new translation drops the stale machine spans and alignments.
        other = ids[1]
        assert span_sets.save_target(s, other, Sentence.from_words(["Neue", "Übersetzung"], "de")) is True
        again = items.load_item(s, other, media_dir)
        assert again.target.text == "Neue Übersetzung" and again.annotations.span_set("target", "projection:heuristic") is None
        assert again.alignments == {} and again.version == 3  # translation stage, then the new translation
        with pytest.raises(SpanError):
            span_sets.save_span_set(s, other, "target", "projection:x", [make_span(Sentence.from_words(["a"] * 5), 3, 5, "PER")])
        with pytest.raises(QueryError, match="edit log"):
            span_sets.save_span_set(s, other, "target", "human:alice", [])
        assert items.load_item(s, rec.id).version == 3  # import 1, translation stage 2, edit 3


# --------------------------------------------------------------------------- jobs and users


def test_job_lifecycle_cancel_and_stale(db_url: str) -> None:
    pid = new_project(db_url)
    with session_scope(db_url) as s:
        job = jobs.create_job(s, "project", pid, {"method": "heuristic"}, total=10)
        assert (job.status, job.progress, job.started_at) == ("queued", 0.0, None)
        job = jobs.update_job(s, job.id, done=4, message="aligning", pid=4321)
        assert (job.status, job.progress, job.done, job.pid, job.message) == ("running", 0.4, 4, 4321, "aligning")
        assert job.started_at is not None and job.heartbeat_at is not None
        done = jobs.finish_job(s, job.id, "done", result={"f1": 0.7})
        assert (done.status, done.progress, done.result) == ("done", 1.0, {"f1": 0.7})
        with pytest.raises(QueryError, match="already finished"):
            jobs.update_job(s, job.id, done=5)
        second = jobs.create_job(s, "train", pid)
        jobs.update_job(s, second.id, progress=0.1)
        jobs.cancel_job(s, second.id)
        with pytest.raises(JobCancelledError):
            jobs.update_job(s, second.id, progress=0.2)
        assert jobs.finish_job(s, second.id, "failed", error="stopped").status == "cancelled"
        third = jobs.create_job(s, "export", None)
        jobs.update_job(s, third.id, progress=0.5)
        assert jobs.fail_stale_jobs(s, max_silence_s=3600) == []
        assert jobs.fail_stale_jobs(s, max_silence_s=-1) == [third.id]
        assert jobs.get_job(s, third.id).status == "failed" and "heartbeat" in jobs.get_job(s, third.id).error
        assert [j.id for j in jobs.list_jobs(s, pid)] == [second.id, job.id]
        assert [j.id for j in jobs.list_jobs(s, status="failed")] == [third.id]
        with pytest.raises(NotFoundError):
            jobs.get_job(s, 999)


def test_users_and_passwords(db_url: str, monkeypatch) -> None:
    from argon2 import PasswordHasher

    from core import auth
    from core.auth import hash_password

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))  # fast in tests

    with session_scope(db_url) as s:
        alice = users.create_user(s, "alice", "reviewer", hash_password("s3cret"))
        assert (alice.name, alice.role, alice.has_password) == ("alice", "reviewer", True)
        with pytest.raises(DuplicateError):
            users.create_user(s, "alice")
    with session_scope(db_url) as s:
        with pytest.raises(QueryError, match="unknown role"):
            users.create_user(s, "bob", "boss")
        assert check_login(s, "alice", "s3cret").user == alice
        assert check_login(s, "alice", "wrong").user is None and check_login(s, "nobody", "x").user is None
        users.create_user(s, "bob")
        assert users.get_user(s, "bob").has_password is False and users.get_password_hash(s, "bob") is None
        users.set_password_hash(s, "bob", hash_password("pw"))
        assert check_login(s, "bob", "pw").user is not None
        assert users.set_user_role(s, "bob", "admin").role == "admin"
        assert [u.name for u in users.list_users(s)] == ["alice", "bob"]
