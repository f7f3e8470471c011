"""Label Studio files as Label Studio and its own converter write and read them (issue #14).

Label Studio's older export layout (``completions``), its predictions and its JSON-MIN
export are read; a layout we do not know fails naming the task. Our export keys each task
by a top-level ``id``, writes gold and human labels as the annotation (an empty one for a
reviewed item without entities) and machine spans as predictions, puts the labeling config
beside it, and label-studio-converter's own CoNLL export of it holds our entities.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from core.data import Item, Sentence, make_span
from core.formats import FormatError, ReadReport, read, write
from core.transfer import export_download
from db.engine import session_scope
from db.items import import_items, item_ids
from db.projects import create_project
from services import export, review
from tests.test_db import db_url, pg_server  # noqa: F401  (fixtures: SQLite and PostgreSQL databases)

TEXT = "Angela Merkel met Emmanuel Macron in Paris ."


def _region(start: int, end: int, label: str, to_name: str = "text", **extra) -> dict:  # noqa: ANN003
    value = {"start": start, "end": end, "text": TEXT[start:end], "labels": [label], **extra}
    return {"id": f"r{start}", "from_name": "label", "to_name": to_name, "type": "labels", "value": value}


REGIONS = [_region(0, 13, "PER"), _region(18, 33, "PER"), _region(37, 42, "LOC")]


def _write(tmp_path: Path, name: str, tasks: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


def _entities(item: Item) -> list[tuple[str, str]]:
    return [(s.text(item.source), s.label) for s in item.source_spans]


def _converter_conll(tasks_file: Path, config: str, out: Path) -> list[list[tuple[str, str]]]:
    """label-studio-converter's own CoNLL 2003 export of a tasks file: (token, tag) per sentence."""
    converter = pytest.importorskip("label_studio_converter", reason="label-studio-converter is in requirements-test.txt")
    conv = converter.Converter(config=config, project_dir=None)
    conv.convert_to_conll2003(str(tasks_file), str(out), is_dir=False)
    sentences, current = [], []
    for line in (out / "result.conll").read_text(encoding="utf-8").splitlines():
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            sentences.append(current)
            current = []
            continue
        token, _x, _y, tag = line.split(" ")
        current.append((token, tag))
    return sentences + ([current] if current else [])


def _conll_entities(tagged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Entities of one converter sentence, joined with spaces (its tokenizer splits punctuation)."""
    out: list[tuple[list[str], str]] = []
    for token, tag in tagged:
        if tag.startswith("B-"):
            out.append(([token], tag[2:]))
        elif tag.startswith("I-") and out:
            out[-1][0].append(token)
    return [(" ".join(words), label) for words, label in out]


CONFIG = '<View><Labels name="label" toName="text"><Label value="PER"/><Label value="LOC"/></Labels><Text name="text" value="$text"/></View>'


# --------------------------------------------------------------------------- reading peers' files


def test_completions_layout_reads_its_entities_as_label_studio_converter_does(tmp_path: Path) -> None:
    """Label Studio before 1.0 exported ``completions``: it was read as all-O with 0 warnings."""
    tasks = [
        {"id": 1, "data": {"text": TEXT}, "completions": [{"id": 9, "created_at": 1, "result": REGIONS}]},
        {"id": 2, "data": {"text": "Nothing here ."}, "completions": [{"id": 10, "result": []}]},
    ]
    src = _write(tmp_path, "old.json", tasks)
    report = ReadReport()
    first, second = read(src, report=report)
    assert _entities(first) == [("Angela Merkel", "PER"), ("Emmanuel Macron", "PER"), ("Paris", "LOC")]
    assert {s.source for s in first.source_spans} == {"gold"} and first.labelled_by == {"source": "gold"}
    assert second.source_spans == [] and second.labelled_by == {"source": "gold"}  # a person said: no entities
    assert report.warnings == []
    theirs = _converter_conll(src, CONFIG, tmp_path / "conv")
    assert [_conll_entities(sent) for sent in theirs] == [_entities(first), []]


def test_newest_annotation_wins_and_skipped_ones_are_ignored(tmp_path: Path) -> None:
    tasks = [{"id": 1, "data": {"text": TEXT}, "annotations": [
        {"id": 1, "created_at": "2024-01-02T00:00:00Z", "completed_by": {"email": "b@x"}, "result": REGIONS[:1]},
        {"id": 2, "created_at": "2024-01-01T00:00:00Z", "completed_by": {"email": "a@x"}, "result": REGIONS},
        {"id": 3, "created_at": "2024-01-03T00:00:00Z", "was_cancelled": True, "result": []},
    ]}]
    report = ReadReport()
    (item,) = read(_write(tmp_path, "t.json", tasks), report=report)
    assert _entities(item) == [("Angela Merkel", "PER")] and item.source_spans[0].source == "human:b@x"
    assert [w.message for w in report.warnings] == ["2 annotations; used the newest"]


def test_predictions_are_read_as_machine_spans(tmp_path: Path) -> None:
    tasks = [{"id": 5, "data": {"text": TEXT}, "predictions": [
        {"model_version": "ner-v2", "score": 0.8, "result": [_region(37, 42, "LOC", score=0.8)]},
    ]}]
    (item,) = read(_write(tmp_path, "p.json", tasks))
    assert [(s.source, s.confidence) for s in item.source_spans] == [("ner-v2", 0.8)] and item.labelled_by == {}
    assert item.id == "5"


def test_json_min_export_is_read(tmp_path: Path) -> None:
    tasks = [{"id": 3, "text": TEXT, "label": [dict(r["value"]) for r in REGIONS], "annotator": "ana", "annotation_id": 4}]
    (item,) = read(_write(tmp_path, "min.json", tasks))
    assert _entities(item) == [("Angela Merkel", "PER"), ("Emmanuel Macron", "PER"), ("Paris", "LOC")]
    assert item.source_spans[0].source == "human:ana"


@pytest.mark.parametrize(
    "task,fragment",
    [
        ({"data": {"sentence": TEXT}, "annotations": [{"result": REGIONS}]}, 'unknown task layout: no "text" string in data (keys: sentence)'),
        ({"result": REGIONS}, "this is one annotation, not a task"),
        ({"data": {"text": TEXT}, "annotations": {"result": REGIONS}}, '"annotations" must be a list of objects'),
        ({"data": {"text": TEXT}, "completions": [{"result": "x"}]}, "completions[0].result must be a list"),
        ({"text": TEXT, "annotations": [{"result": REGIONS}]}, 'annotations or predictions without "data"'),
        ({"text": TEXT, "label": ["PER"]}, '"label" must be a list of regions'),
    ],
)
def test_a_layout_we_do_not_know_fails_loudly(tmp_path: Path, task: dict, fragment: str) -> None:
    src = _write(tmp_path, "bad.json", [{"data": {"text": "fine"}}, task])
    with pytest.raises(FormatError) as err:
        read(src)
    assert "task 2" in str(err.value) and fragment in str(err.value), str(err.value)


def test_regions_on_an_unknown_text_are_reported_not_dropped_silently(tmp_path: Path) -> None:
    tasks = [{"data": {"text": TEXT}, "annotations": [{"result": [_region(0, 13, "PER", to_name="sentence")]}]}]
    report = ReadReport()
    read(_write(tmp_path, "t.json", tasks), report=report)
    assert [w.message for w in report.warnings] == ["result 0 labels 'sentence', which is not \"text\" or \"translation\"; skipped"]


# --------------------------------------------------------------------------- our export


def test_export_annotations_predictions_ids_and_config(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    src = Sentence.from_words(TEXT.split(), "en")
    tgt = Sentence.from_words("Angela Merkel traf Emmanuel Macron in Paris .".split(), "de")
    proj = "projection:heuristic"
    items = [
        Item("merkel", src, [make_span(src, 0, 2, "PER"), make_span(src, 6, 7, "LOC")], tgt,
             [make_span(tgt, 0, 2, "PER", proj, 0.9), make_span(tgt, 3, 5, "ORG", proj, 0.4)]),  # fmt: skip
        Item("empty", src, [], tgt, [make_span(tgt, 6, 7, "LOC", proj, 0.7)]),
        Item("untouched", src, [], tgt, [make_span(tgt, 6, 7, "LOC", proj, 0.6)]),
    ]
    with session_scope(db_url) as s:
        pid = create_project(s, "ls", "en", "de", ["PER", "LOC", "ORG", "MISC"]).id
        import_items(s, pid, items, tmp_path / "media")
        merkel, empty, _untouched = item_ids(s, pid)
        view = review.load_view(s, merkel, "ana")
        fixed = [make_span(tgt, 0, 2, "PER", "human:ana"), make_span(tgt, 3, 5, "PER", "human:ana")]
        head = review.save_edit(s, merkel, "target", fixed, "ana", view.head, pending=view.pending["target"]).head
        review.accept_item(s, merkel, "ana", head)
        view = review.load_view(s, empty, "ana")
        head = review.save_edit(s, empty, "target", [], "ana", view.head, pending=view.pending["target"]).head
        review.accept_item(s, empty, "ana", head)  # reviewed: this sentence has no entities
        exported = export.export_selection(s, pid, "all")
    out = write(exported, tmp_path / "out" / "ls.json", "labelstudio", labels=["PER", "LOC", "ORG", "MISC"])
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert [t["id"] for t in tasks] == [1, 2, 3] and [t["data"]["id"] for t in tasks] == ["merkel", "empty", "untouched"]
    first, second, third = tasks
    assert first["data"]["labelled_by"] == {"source": "gold", "target": "human:ana"}
    (annotation,) = first["annotations"]
    assert [(r["to_name"], r["value"]["text"], r["value"]["labels"]) for r in annotation["result"]] == [
        ("text", "Angela Merkel", ["PER"]), ("text", "Paris", ["LOC"]),
        ("translation", "Angela Merkel", ["PER"]), ("translation", "Emmanuel Macron", ["PER"]),
    ]
    assert all("score" not in r["value"] for r in annotation["result"]) and "predictions" not in first
    assert len({r["id"] for r in annotation["result"]}) == 4
    # imported as gold without entities, reviewed without entities: an empty annotation each
    assert second["annotations"] == [{"result": []}] and second["data"]["labelled_by"] == {"source": "gold", "target": "human:ana"}
    assert third["annotations"] == [{"result": [], "ground_truth": True}] and third["data"]["labelled_by"] == {"source": "gold"}
    assert [p["model_version"] for p in third["predictions"]] == [proj]
    assert third["predictions"][0]["result"][0]["value"]["score"] == 0.6
    # the labeling config beside it offers the project's labels for both texts
    root = ET.fromstring((tmp_path / "out" / "ls.config.xml").read_text(encoding="utf-8"))
    assert [(lb.get("name"), [x.get("value") for x in lb]) for lb in root.findall("Labels")] == [
        ("label", ["LOC", "MISC", "ORG", "PER"]), ("label_translation", ["LOC", "MISC", "ORG", "PER"]),
    ]
    # read back: who decided, and what
    back = read(out)
    assert [b.labelled_by for b in back] == [{"source": "gold", "target": "human:ana"}] * 2 + [{"source": "gold"}]
    assert [s.source for s in back[0].target_spans] == ["human:ana", "human:ana"]
    assert [(s.source, s.confidence) for s in back[2].target_spans] == [(proj, 0.6)]
    # the web download offers the config too
    download = export_download(exported, "labelstudio", tmp_path / "dl", "ls")
    assert download.filename == "ls.json" and "ls.config.xml" in download.extras


def test_label_studio_converter_reads_our_export(tmp_path: Path) -> None:
    """Its CoNLL export of our file (annotations only, its own tokenizer) has our entities."""
    sentences = [TEXT, "The European Union met in Brussels on Monday .", "Nothing to see ."]
    labels = [[(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")], [(1, 3, "ORG"), (5, 6, "LOC")], []]
    items = []
    for k, (text, spans) in enumerate(zip(sentences, labels)):
        sent = Sentence.from_words(text.split(), "en")
        items.append(Item(f"i{k}", sent, [make_span(sent, a, b, lb, "human:ana") for a, b, lb in spans], labelled_by={"source": "human:ana"}))
    out = write(items, tmp_path / "ours.json", "labelstudio")
    config = (tmp_path / "ours.config.xml").read_text(encoding="utf-8")
    theirs = _converter_conll(out, config, tmp_path / "conv")
    assert [_conll_entities(sent) for sent in theirs] == [_entities(it) for it in items]
