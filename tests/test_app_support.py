"""The non-Streamlit code behind the app: demo data and seeding, span HTML, uploads/downloads."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter

import pytest
from PIL import Image

from core.data import Item, Sentence, make_span
from core.demo import DEMO_DIR, DEMO_PROJECTS, load_demo_items, reference_target_spans
from core.demo.images import DEMO_IMAGES, render_demo_images
from core.formats import FormatError
from core.highlight import escape_markdown, label_colours, spans_html
from core.transfer import ArchiveError, drop_translations, export_download, match_images, read_upload, unpack_images
from db import items as db_items
from db import projects

# --------------------------------------------------------------------------- demo data


@pytest.mark.parametrize("demo", DEMO_PROJECTS, ids=lambda d: d.tgt_lang)
def test_demo_files_are_valid_and_varied(demo) -> None:
    items = load_demo_items(demo)
    assert 40 <= len(items) <= 50
    labels = Counter(s.label for it in items for s in it.source_spans)
    assert set(labels) == {"PER", "ORG", "LOC", "MISC"} and min(labels.values()) >= 8
    assert sum(not it.source_spans for it in items) >= 4  # sentences without entities
    assert any(len(s) >= 3 for it in items for s in it.source_spans)  # multi-word names
    assert any(a.end == b.start for it in items for a, b in zip(it.source_spans, it.source_spans[1:]))  # adjacent
    assert any(t.text.isdigit() for it in items for t in it.source.tokens)
    for it in items:
        assert it.target is not None and it.target.lang == demo.tgt_lang
        assert it.target_spans == []  # target spans come from projection, never from the file
        reference = reference_target_spans(it)
        assert reference is not None
        assert sorted(s.label for s in reference) == sorted(s.label for s in it.source_spans), it.id
    with_image = [it for it in items if it.image]
    assert 5 <= len(with_image) <= 8
    assert {it.image for it in with_image} <= set(DEMO_IMAGES)


def test_demo_translations_differ_per_language() -> None:
    es, de = (load_demo_items(d) for d in DEMO_PROJECTS)
    assert [i.id for i in es] == [i.id for i in de]
    assert [i.source.text for i in es] == [i.source.text for i in de]
    assert all(a.target.text != b.target.text for a, b in zip(es, de))


def test_demo_images_are_drawn_deterministically(tmp_path) -> None:
    first = render_demo_images(tmp_path / "a")
    second = render_demo_images(tmp_path / "b")
    assert [p.name for p in first] == list(DEMO_IMAGES)
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()
        with Image.open(a) as img:
            assert img.width >= 200 and img.height >= 150
    assert not list(DEMO_DIR.glob("*.png")) and not list(DEMO_DIR.glob("*.jpg"))  # nothing binary in the repo


def seed(projection: str = "run") -> bool:
    from db.engine import init_db, session_scope
    from services.demo import seed_demo

    init_db()
    with session_scope() as s:
        return seed_demo(s, projection=projection)


def test_seed_demo_seeds_once_into_an_empty_database(lb_env) -> None:
    from core.annotations.ledger import labels
    from db.engine import session_scope

    assert seed(projection="none") is True
    assert seed(projection="none") is False
    with session_scope() as s:
        found = {p.name: p for p in projects.list_projects(s)}
        assert set(found) == {d.name for d in DEMO_PROJECTS}
        es = found["Demo (en→es)"]
        assert (es.src_lang, es.tgt_lang, es.n_items, es.n_target, es.n_reviewed) == ("en", "es", 43, 43, 0)
        assert es.n_with_image == sum(1 for it in load_demo_items(DEMO_PROJECTS[0]) if it.image)
        rec = db_items.load_item(s, db_items.item_ids(s, es.id)[0])
    assert rec.image_path is not None and rec.image_path.is_file()
    assert labels(rec.annotations, "source").source == "gold"
    assert reference_target_spans(rec.as_item()) is not None
    # no hand-written span is ever stored as if a machine had projected it
    assert all(not r.source.startswith("projection:") or r.side == "target" for r in rec.annotations.span_sets)


def test_seed_demo_leaves_existing_projects_alone(lb_env) -> None:
    from db.engine import init_db, session_scope

    init_db()
    with session_scope() as s:
        projects.create_project(s, "Mine", "en", "fr", ["PER"])
    assert seed() is False
    with session_scope() as s:
        assert [p.name for p in projects.list_projects(s)] == ["Mine"]
    with pytest.raises(ValueError, match="projection must be one of"):
        seed(projection="fake")


def test_demo_seed_command(lb_env, capsys) -> None:
    from cli.main import main

    assert main(["demo", "seed", "--no-projection"]) == 0
    assert "seeded 2 demo projects" in capsys.readouterr().out
    assert main(["demo", "seed"]) == 0
    assert "nothing seeded" in capsys.readouterr().out


@pytest.mark.integration
def test_demo_projection_uses_the_real_engine_and_matches_the_reference(lb_env) -> None:
    """The default pipeline (default aligner and method) on the en→es demo."""
    from core.metrics import span_scores
    from db.engine import session_scope
    from services.demo import project_demo
    from services.labels import labelled_items

    seed(projection="none")
    with session_scope() as s:
        lines = project_demo(s, projects=[DEMO_PROJECTS[0]], progress=False)
    assert "43 items projected" in lines[0], lines
    with session_scope() as s:
        project = projects.get_project(s, DEMO_PROJECTS[0].name)
        shown = labelled_items(s, db_items.item_ids(s, project.id))
    assert all(sp.source.startswith("projection:") for it in shown for sp in it.target_spans)
    scores = span_scores([it.target for it in shown], [reference_target_spans(it) for it in shown], [it.target_spans for it in shown])
    assert scores["f1"] >= 0.9, scores


# --------------------------------------------------------------------------- highlight


def test_spans_html_escapes_and_marks() -> None:
    s = Sentence.from_words(["<b>Tom</b>", "&", "Jerry", "went", "to", "Paris"])
    spans = [make_span(s, 0, 1, "PER"), make_span(s, 2, 3, "PER"), make_span(s, 5, 6, "LOC")]
    out = spans_html(s, spans)
    assert "<b>Tom" not in out and "&lt;b&gt;Tom&lt;/b&gt;" in out and " &amp; " in out
    assert out.count("<mark") == 3 and out.count(">PER<") == 2 and ">LOC<" in out
    assert label_colours(["PER"])["PER"] in out


def test_label_colours_are_stable_and_labels_are_escaped() -> None:
    assert label_colours(["PER", "X<y"]) == label_colours(["X<y", "PER"])
    s = Sentence.from_words(["a", "b"])
    assert "X&lt;y" in spans_html(s, [make_span(s, 0, 1, "X<y")], label_colours(["X<y"]))
    with pytest.raises(ValueError):
        s = Sentence.from_words(["a", "b", "c"])
        spans_html(s, [make_span(s, 0, 2, "A"), make_span(s, 1, 3, "B")])


def test_escape_markdown_keeps_data_literal() -> None:
    assert escape_markdown("**Bold** [x](y) :red[z] a_b") == r"\*\*Bold\*\* \[x\]\(y\) \:red\[z\] a\_b"
    assert escape_markdown("Plain words") == "Plain words"


# --------------------------------------------------------------------------- transfer


def test_read_upload_names_the_uploaded_file_in_errors(tmp_path) -> None:
    items = read_upload("x.conll", b"Anna\tB-PER\nsleeps\tO\n", tmp_path)
    assert [s.label for s in items[0].source_spans] == ["PER"]
    with pytest.raises(FormatError) as err:
        read_upload("people.jsonl", b'{"id": "a", "text": "Hi"}\n{not json\n', tmp_path)
    assert str(err.value).startswith("people.jsonl:2:")
    with pytest.raises(FormatError, match="cannot tell the format"):
        read_upload("data.xyz", b"whatever", tmp_path)
    assert not list(tmp_path.iterdir())  # temporary copies are removed


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_images_archive_is_unpacked_safely_and_matched_by_name(tmp_path) -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(png, "PNG")
    root = unpack_images(_zip({"pics/a.png": png.getvalue(), "pics/sub/b.png": png.getvalue()}), tmp_path / "img")
    s = Sentence.from_words(["x"])
    items = [Item("1", s, image="a.png"), Item("2", s, image="sub/b.png"), Item("3", s, image="c.png"), Item("4", s)]
    matched, missing = match_images(items, root)
    assert matched[0].image == str(root / "pics" / "a.png")
    assert matched[1].image == str(root / "pics" / "sub" / "b.png")
    assert missing == ["item 3: c.png (not in the images)"] and matched[3].image is None
    with pytest.raises(ArchiveError, match="unsafe path"):
        unpack_images(_zip({"../evil.png": b"x"}), tmp_path / "evil")
    assert not (tmp_path / "evil.png").exists()
    with pytest.raises(ArchiveError, match="not a zip"):
        unpack_images(b"plain bytes", tmp_path / "bad")
    with pytest.raises(ArchiveError, match="more than the limit"):
        unpack_images(_zip({"a.png": b"x" * 100}), tmp_path / "big", max_bytes=10)


def test_export_download_file_and_folder_formats(tmp_path) -> None:
    src = Sentence.from_words(["Anna", "sleeps"], "en")
    tgt = Sentence.from_words(["Anna", "duerme"], "es")
    items = [Item("1", src, [make_span(src, 0, 1, "PER")], tgt, [make_span(tgt, 0, 1, "PER")])]
    d = export_download(items, "jsonl", tmp_path, "My project")
    assert d.filename == "My_project.jsonl" and json.loads(d.data)["spans"][0]["label"] == "PER"
    d = export_download(items, "conll", tmp_path, "p", side="target")
    assert d.filename == "p.conll" and d.data.decode().startswith("Anna\tB-PER\nduerme\tO")
    d = export_download(items, "hf", tmp_path, "ds", labels=["PER"])
    assert d.filename == "ds.zip" and d.mime == "application/zip"
    with zipfile.ZipFile(io.BytesIO(d.data)) as zf:
        assert any(n.startswith("ds/") for n in zf.namelist())
    assert drop_translations(items)[0].target is None
