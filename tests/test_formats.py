"""core.formats: registry, conll, jsonl, labelstudio readers/writers, errors, atomic writes."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from core.data import Item, Link, Sentence, Span, Token, make_span
from core.formats import (
    FORMATS,
    FormatError,
    ReadReport,
    guess_format,
    labelstudio_config,
    read,
    write,
)

DATA = Path(__file__).parent / "data"


def spans_of(item: Item, side: str = "source") -> list[tuple[int, int, str]]:
    return [s.key() for s in (item.source_spans if side == "source" else item.target_spans)]


def write_bytes(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


def assert_error(exc_info: pytest.ExceptionInfo, path: Path, where: int | str | None, *fragments: str) -> None:
    """The error names the file and the line (``path:N:``) or the item."""
    err = exc_info.value
    assert isinstance(err, ValueError)
    text = str(err)
    assert str(path) in text
    if isinstance(where, int):
        assert f"{path}:{where}: " in text and err.line == where
    elif where is not None:
        assert where in text
    for f in fragments:
        assert f in text, text


def no_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- registry ------------------------------------------------------------------------------


def test_registry_has_every_format():
    assert set(FORMATS) == {"conll", "jsonl", "labelstudio", "hf", "spacy"}


@pytest.mark.parametrize(
    "name,fmt",
    [
        ("a.conll", "conll"), ("a.conll02", "conll"), ("a.CONLL03", "conll"), ("a.iob", "conll"),
        ("a.bio", "conll"), ("a.txt", "conll"), ("a.jsonl", "jsonl"), ("a.json", "labelstudio"),
        ("a.spacy", "spacy"), ("a.parquet", "hf"), ("new_dataset_folder", "hf"),
    ],
)
def test_guess_format_from_extension(name, fmt):
    assert guess_format(name) == fmt


def test_guess_format_existing_folder_and_unknown_extension(tmp_path):
    (tmp_path / "ds.v1").mkdir()
    assert guess_format(tmp_path / "ds.v1") == "hf"
    with pytest.raises(FormatError) as err:
        guess_format(tmp_path / "a.xlsx")
    assert_error(err, tmp_path / "a.xlsx", None, "'.xlsx'", "conll")


def test_unknown_format_and_option_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        read(DATA / "repairs.conll", "csv")
    with pytest.raises(TypeError, match="conll reader has no option colour"):
        read(DATA / "repairs.conll", colour=True)
    with pytest.raises(FormatError, match="no such file"):
        read(tmp_path / "missing.conll")


def test_warnings_are_logged_when_no_report_is_given(caplog):
    with caplog.at_level(logging.WARNING, logger="core.formats"):
        read(DATA / "repairs.conll")
    assert f"{DATA / 'repairs.conll'}:1: I-PER at token 1 without a preceding B-PER" in caplog.text


# --- conll ---------------------------------------------------------------------------------


def test_conll2003_iob1_with_docstart_and_extra_columns(tmp_path):
    src = DATA / "conll2003_iob1.conll03"
    report = ReadReport()
    items = read(src, report=report)
    assert report.warnings == []
    assert [it.id for it in items] == ["conll2003_iob1:1", "conll2003_iob1:2", "conll2003_iob1:3"]
    assert items[0].source.text == "EU rejects German call ."
    assert spans_of(items[0]) == [(0, 1, "ORG"), (2, 3, "MISC")]
    assert spans_of(items[2]) == [(2, 3, "LOC"), (3, 4, "LOC")]  # B-LOC splits adjacent LOCs
    meta = items[0].meta["conll"]
    assert meta["scheme"] == "IOB1" and meta["sep"] == " "
    assert meta["columns"][0] == ["NNP", "I-NP"]
    assert meta["before"] == ["-DOCSTART- -X- -X- O", ""]
    out = write(items, tmp_path / "out.conll03")
    assert out.read_bytes() == src.read_bytes()


def test_conll_output_scheme_and_separator_options(tmp_path):
    items = read(DATA / "conll2003_iob1.conll03")
    write(items, tmp_path / "iob2.conll", scheme="IOB2", sep="tab")
    lines = (tmp_path / "iob2.conll").read_text().splitlines()
    assert "EU\tNNP\tI-NP\tB-ORG" in lines
    assert "Paris\tNNP\tI-NP\tB-LOC" in lines and "London\tNNP\tI-NP\tB-LOC" in lines
    again = read(tmp_path / "iob2.conll")
    assert [spans_of(i) for i in again] == [spans_of(i) for i in items]
    assert again[0].meta["conll"].get("scheme") is None  # detected IOB2


def test_tab_file_with_comments_ids_hash_token_and_layout(tmp_path):
    src = DATA / "tab_comments.conll"
    items = read(src)
    assert [it.id for it in items] == ["merkel", "tab_comments:2", "tab_comments:3"]
    assert items[1].source.words == ["#", "EU", "New York"]  # "#<TAB>O" is a token, not a comment
    assert spans_of(items[1]) == [(1, 2, "ORG"), (2, 3, "LOC")]
    assert write(items, tmp_path / "same.conll").read_bytes() == src.read_bytes()
    # the id is the item's: renaming it rewrites the "# id =" comment in place
    write([items[0].with_(id="renamed")] + items[1:], tmp_path / "renamed.conll")
    assert (tmp_path / "renamed.conll").read_text().startswith("# id = renamed\n# text = Angela")


def test_skip_comments_drops_comments_docstart_and_layout(tmp_path):
    items = read(DATA / "tab_comments.conll", skip_comments=True)
    assert all("before" not in it.meta.get("conll", {}) for it in items)
    text = write(items, tmp_path / "plain.conll").read_text()
    assert "#" not in text.replace("#\tO", "")
    assert text.endswith("here\tO\n\n") and "\n\n\n" not in text
    items = read(DATA / "conll2003_iob1.conll03", skip_comments=True)
    assert "DOCSTART" not in write(items, tmp_path / "nodoc.conll").read_text()


def test_twitter_multimodal_layout_names_each_sentence_picture_and_round_trips(tmp_path):
    # Twitter-2015/2017 (Zhang et al. 2018; Lu et al. 2018): "IMGID:<id>" before each
    # sentence, tab-separated tokens and IOB tags, pictures <id>.jpg in an image folder
    content = "IMGID:1015799\nRT\tO\n@Anna_B\tO\n:\tO\nParis\tB-LOC\n\nIMGID:16_05_01_6.png\nBob\tB-PER\nsmiles\tO\n\n"
    src = write_bytes(tmp_path, "train.txt", content)
    items = read(src)
    assert [it.image for it in items] == ["1015799.jpg", "16_05_01_6.png"]
    assert items[0].source.words == ["RT", "@Anna_B", ":", "Paris"] and spans_of(items[0]) == [(3, 4, "LOC")]
    assert write(items, tmp_path / "out.txt").read_bytes() == src.read_bytes()
    assert [it.image for it in read(src, skip_comments=True)] == ["1015799.jpg", "16_05_01_6.png"]


def test_bioes_read_write_and_conversion(tmp_path):
    src = DATA / "bioes.bio"
    items = read(src)
    assert spans_of(items[0]) == [(1, 5, "ORG"), (6, 7, "PER")]
    assert items[0].meta["conll"]["scheme"] == "BIOES"
    assert write(items, tmp_path / "same.bio").read_bytes() == src.read_bytes()
    write(items, tmp_path / "iob1.conll", scheme="IOB1")
    assert (tmp_path / "iob1.conll").read_text().split("\n")[:2] == ["The\tO", "United\tI-ORG"]


def test_forced_scheme_rejects_tags_of_another_scheme():
    with pytest.raises(FormatError) as err:
        read(DATA / "bioes.bio", scheme="IOB2")
    assert_error(err, DATA / "bioes.bio", 5, "unknown tag 'E-ORG'", "IOB2")


def test_tag_column_option_keeps_the_column_order(tmp_path):
    src = write_bytes(tmp_path, "mid.conll", "Paris\tB-LOC\tNNP\nis\tO\tVBZ\n\n")
    items = read(src, tag_column=1)
    assert spans_of(items[0]) == [(0, 1, "LOC")]
    assert write(items, tmp_path / "out.conll").read_bytes() == src.read_bytes()
    with pytest.raises(FormatError) as err:
        read(src, tag_column=0)
    assert_error(err, src, 1, "tag column 0")
    with pytest.raises(FormatError) as err:
        read(src, tag_column=5)
    assert_error(err, src, 1, "tag column 5")


def test_repairs_are_reported_with_file_and_line(tmp_path):
    src = DATA / "repairs.conll"
    report = ReadReport()
    items = read(src, report=report)
    assert [str(w) for w in report.warnings] == [
        f"{src}:1: I-PER at token 1 without a preceding B-PER; started a new span",
        f"{src}:5: I-LOC at token 5 without a preceding B-LOC; started a new span",
        f"{src}:9: label changes from ORG to LOC inside a span at token 3; started a new span",
    ]
    assert [w.where for w in report.warnings] == [1, 5, 9]
    assert spans_of(items[1]) == [(1, 2, "ORG"), (2, 4, "LOC")]
    text = write(items, tmp_path / "fixed.conll").read_text()
    assert text.startswith("Merkel\tB-PER\n") and "York\tB-LOC\nTimes\tI-LOC" in text


@pytest.mark.parametrize(
    "content",
    [
        "a\tO\nb\tB-PER",  # no final newline
        "a\tO\n",  # no blank line at the end
        "\na\tO\n\n\n\nb\tO\n\n\n",  # leading and repeated blank lines
        "a\tO\n\n# trailing comment\n",  # comment after the last sentence
        "-DOCSTART-\tO\n\na\tO\n-DOCSTART-\tO\n\nb\tO\n\n",  # docstart right after a sentence
        "x y O\n\n",  # space separated, 3 columns
    ],
)
def test_conll_layout_round_trips_exactly(tmp_path, content):
    src = write_bytes(tmp_path, "in.conll", content)
    assert write(read(src), tmp_path / "out.conll").read_bytes() == src.read_bytes()


def test_crlf_and_bom_are_read_and_crlf_is_kept(tmp_path):
    src = write_bytes(tmp_path, "win.conll", "Paris\tB-LOC\r\nis\tO\r\n\r\nok\tO")
    items = read(src)
    assert items[0].source.words == ["Paris", "is"] and spans_of(items[0]) == [(0, 1, "LOC")]
    assert write(items, tmp_path / "out.conll").read_bytes() == src.read_bytes()
    bom = write_bytes(tmp_path, "bom.conll", "\ufeffParis\tB-LOC\n")
    assert read(bom)[0].source.words == ["Paris"]


@pytest.mark.parametrize(
    "content,line,fragments",
    [
        ("a\tO\nb\tI-NP\tO\n", 2, ["line 2 has 3 columns, expected 2"]),
        ("a O\n\nb\n", 3, ["line 3 has 1 column, expected 2"]),
        ("a\tO\nb\tPER\n", 2, ["unknown tag 'PER'"]),
        ("a\tO\n\nb\tO\nc\tX-LOC\n", 4, ["unknown tag 'X-LOC'"]),
        ("a\tO\n\t O\n", 2, ["empty token"]),
        ("solo\n", 1, ["1 column"]),
        ("# id = s\na\tO\n\n# id = s\nb\tO\n", 5, ["'s' is already used", "line 2"]),
    ],
)
def test_conll_bad_input_names_the_line(tmp_path, content, line, fragments):
    src = write_bytes(tmp_path, "bad.conll", content)
    with pytest.raises(FormatError) as err:
        read(src)
    assert_error(err, src, line, *fragments)


def test_conll_non_utf8_names_the_line_and_byte(tmp_path):
    src = write_bytes(tmp_path, "latin1.conll", "a\tO\n\nM\u00fcnchen\tB-LOC\n".encode("latin-1"))
    with pytest.raises(FormatError) as err:
        read(src)
    assert_error(err, src, 3, "not valid UTF-8", "byte 0xfc", "byte offset 6")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "-DOCSTART- -X- O O\n\n"])
def test_conll_empty_file_is_an_error(tmp_path, content):
    src = write_bytes(tmp_path, "empty.conll", content)
    with pytest.raises(FormatError) as err:
        read(src)
    assert_error(err, src, None, "empty file")


def test_conll_unknown_scheme_and_separator_options(tmp_path):
    with pytest.raises(FormatError, match="unknown tag scheme 'BILOU'"):
        read(DATA / "repairs.conll", scheme="BILOU")
    with pytest.raises(FormatError) as err:
        read(DATA / "conll2003_iob1.conll03", sep="tab")  # the file is space separated
    assert_error(err, DATA / "conll2003_iob1.conll03", 3, "1 column")
    with pytest.raises(FormatError, match="unknown tag scheme"):
        write(read(DATA / "repairs.conll"), tmp_path / "x.conll", scheme="IOE")
    assert no_leftovers(tmp_path) == []


def test_conll_writer_sides_and_errors(tmp_path):
    items = read(DATA / "mini.jsonl")
    write(items[:1], tmp_path / "tgt.conll", side="target")
    assert (tmp_path / "tgt.conll").read_text() == "Angela\tB-PER\nMerkel\tI-PER\nbesuchte\tO\nParis\tO\n.\tO\n\n"
    with pytest.raises(FormatError) as err:
        write(items, tmp_path / "t2.conll", side="target")
    assert_error(err, tmp_path / "t2.conll", "item 'mini:2'", "no target sentence")
    new_york = Item("ny", Sentence("New York", [Token("New York", 0, 8)]), [])
    write([new_york], tmp_path / "tab.conll")  # a token with a space is fine between tabs
    assert read(tmp_path / "tab.conll")[0].source.words == ["New York"]
    with pytest.raises(FormatError) as err:
        write([new_york], tmp_path / "sp.conll", sep="space")
    assert_error(err, tmp_path / "sp.conll", "item 'ny'", "separator")
    assert no_leftovers(tmp_path) == ["tab.conll", "tgt.conll"]


# --- jsonl ---------------------------------------------------------------------------------


def test_jsonl_full_and_minimal_lines(tmp_path):
    src = DATA / "mini.jsonl"
    report = ReadReport()
    items = read(src, report=report)
    full, text_only, words, chars = items
    assert full.id == "full-1" and full.source.lang == "en" and full.target.lang == "de"
    assert full.source_spans[1] == Span(3, 4, "LOC", 22, 27, "teacher", 0.875)
    assert full.target_spans == [Span(0, 2, "PER", 0, 13, "projection:simalign", 0.5)]
    assert full.alignment[2] == Link(2, 2, 0.75)
    assert full.image == "media/merkel.jpg" and full.meta == {"split": "test"}
    assert text_only.id == "mini:2" and text_only.source.words == ["only", "text", "here"]
    assert words.source.text == "The EU agreed" and spans_of(words) == [(1, 2, "ORG")]
    assert spans_of(chars) == [(1, 3, "LOC"), (3, 4, "MISC")]
    assert [(w.where, w.message.split(" snapped")[0]) for w in report.warnings] == [
        (5, "source span 0 LOC [6, 12) 'New Yo'"),
        (5, "source span 1 MISC [15, 17) 'no'"),
    ]
    out = write(items, tmp_path / "out.jsonl")
    back = read(out)
    assert back == items
    assert write(back, tmp_path / "again.jsonl").read_bytes() == out.read_bytes()
    first = json.loads(out.read_text().splitlines()[0])
    assert list(first) == ["id", "text", "tokens", "spans", "translation", "alignment", "image", "meta", "lang"]
    assert first["spans"][0] == {
        "start": 0, "end": 2, "label": "PER", "char_start": 0, "char_end": 13, "source": "gold", "confidence": None,
    }


def test_jsonl_lang_option_is_the_default_language():
    items = read(DATA / "mini.jsonl", lang="xx")
    assert items[0].source.lang == "en" and items[1].source.lang == "xx"


@pytest.mark.parametrize(
    "line,fragments",
    [
        ('{"text": "a b", ', ["bad JSON"]),
        ("[1, 2]", ["must be a JSON object"]),
        ('{"id": "x"}', ['needs "text" or "tokens"']),
        ('{"text": "a b", "spans": [{"char_start": 2, "char_end": 9, "label": "X"}]}', ["outside the text"]),
        ('{"text": "a b", "spans": [{"start": 1, "end": 3, "label": "X"}]}', ["outside the sentence"]),
        ('{"text": "a b c", "spans": [{"start": 0, "end": 2, "label": "X"}, {"start": 1, "end": 3, "label": "Y"}]}', ["overlap"]),
        ('{"text": "a b", "tokens": ["a", "c"]}', ["tokens do not match the text", "token 1 'c'"]),
        ('{"text": "a b", "tokens": [{"text": "a", "start": 0, "end": 1}, {"text": "b", "start": 1, "end": 2}]}', ["tokens do not match the text"]),
        ('{"text": "a b", "spans": [{"start": 0, "end": 1, "char_start": 0, "char_end": 3, "label": "X"}]}', ["do not match its tokens"]),
        ('{"text": "a b", "spans": [{"start": 0, "end": 1, "label": ""}]}', ["label"]),
        ('{"text": "a b", "spans": [{"start": 0, "end": 1, "label": "X", "confidence": 2}]}', ["confidence 2"]),
        ('{"text": "a b", "translation": {"text": "c"}, "alignment": [[0, 3]]}', ["alignment link 0-3"]),
        ('{"id": "d", "text": "a"}', ["'d' is already used on line 1"]),
    ],
)
def test_jsonl_bad_input_names_the_line(tmp_path, line, fragments):
    src = write_bytes(tmp_path, "bad.jsonl", '{"id": "d", "text": "ok"}\n\n' + line + "\n")
    with pytest.raises(FormatError) as err:
        read(src)
    assert_error(err, src, 3, *fragments)


def test_jsonl_empty_and_non_utf8(tmp_path):
    with pytest.raises(FormatError, match="empty file"):
        read(write_bytes(tmp_path, "e.jsonl", "\n \n"))
    src = write_bytes(tmp_path, "b.jsonl", b'{"text": "ok"}\n{"text": "\xff"}\n')
    with pytest.raises(FormatError) as err:
        read(src)
    assert_error(err, src, 2, "not valid UTF-8")


# --- labelstudio ---------------------------------------------------------------------------


def test_labelstudio_import_annotations_predictions_and_snapping():
    src = DATA / "mini_labelstudio.json"
    report = ReadReport()
    ann, pred, flat, tok = read(src, report=report)
    assert ann.id == "ann" and spans_of(ann) == [(0, 2, "PER"), (3, 5, "PER")]
    assert {s.source for s in ann.source_spans} == {"human:ana@example.org"}  # cancelled one skipped
    assert pred.id == "12" and spans_of(pred) == [(1, 3, "ORG"), (5, 6, "LOC")]  # best-scored prediction
    assert [(s.source, s.confidence) for s in pred.source_spans] == [("teacher", 0.95), ("teacher", 0.6)]
    assert flat.id == "flat" and flat.source_spans == []
    assert tok.source.words == ["Dr.", "Smith", "visited", "Berlin"] and spans_of(tok) == [(1, 2, "PER")]
    assert tok.target.text == "Dr. Smith besuchte Berlin" and spans_of(tok, "target") == [(3, 4, "LOC")]
    messages = [str(w) for w in report.warnings]
    assert messages == [
        f"{src}: task 2: 2 predictions; used the one of model 'teacher' (highest score)",
        f"{src}: task 2: result 1 (text) LOC [26, 29) 'Gen' snapped to token boundaries [26, 33) 'Geneva.'",
    ]


def test_labelstudio_export_is_label_studio_task_json(tmp_path):
    items = read(DATA / "mini.jsonl") + read(DATA / "mini_labelstudio.json")[3:]
    out = write(items, tmp_path / "tasks.json")
    tasks = json.loads(out.read_text())
    assert isinstance(tasks, list) and len(tasks) == 5
    full = tasks[0]
    assert full["data"]["id"] == "full-1" and full["data"]["text"] == "Angela Merkel visited Paris."
    assert full["data"]["translation"] == "Angela Merkel besuchte Paris."
    assert full["id"] == 1 and [t["id"] for t in tasks] == [1, 2, 3, 4, 5]  # label-studio-converter keys tasks by id
    # gold spans are the annotation, each model's spans one prediction (issue #14)
    assert full["annotations"] == [{"ground_truth": True, "result": [{
        "id": "s0", "from_name": "label", "to_name": "text", "type": "labels",
        "value": {"start": 0, "end": 13, "text": "Angela Merkel", "labels": ["PER"]},
    }]}]
    assert full["data"]["labelled_by"] == {"source": "gold"}
    assert [p["model_version"] for p in full["predictions"]] == ["projection:simalign", "teacher"]
    teacher = full["predictions"][1]
    assert teacher["score"] == 0.875 and teacher["result"] == [{
        "id": "s0", "from_name": "label", "to_name": "text", "type": "labels",
        "value": {"start": 22, "end": 27, "text": "Paris", "labels": ["LOC"], "score": 0.875},
    }]
    assert full["predictions"][0]["result"][0]["from_name"] == "label_translation"
    words = tasks[2]
    assert words["annotations"] == [{"ground_truth": True, "result": [{
        "id": "s0", "from_name": "label", "to_name": "text", "type": "labels",
        "value": {"start": 4, "end": 6, "text": "EU", "labels": ["ORG"]},
    }]}]
    assert "annotations" not in tasks[1] and "predictions" not in tasks[1]  # no spans, nobody decided: unlabelled
    back = read(out)
    # A side a person decided reads back as the annotation (the teacher's suggestion on it is a
    # prediction Label Studio shows beside it); an undecided side as its prediction.
    assert [s.source for s in back[0].source_spans] == ["gold"] and spans_of(back[0]) == [(0, 2, "PER")]
    assert [(s.source, s.confidence) for s in back[0].target_spans] == [("projection:simalign", 0.5)]
    assert [spans_of(b) for b in back[1:]] == [spans_of(i) for i in items[1:]]
    assert [spans_of(b, "target") for b in back] == [spans_of(i, "target") for i in items]
    assert back[4].source.tokens == items[4].source.tokens  # data.tokens kept "Dr.Smith" split
    assert (tmp_path / "tasks.config.xml").read_text() == labelstudio_config(
        sorted({s.label for it in items for s in it.source_spans + it.target_spans}), translation=True, image=True
    )


def test_labelstudio_tokens_are_exported_only_when_whitespace_would_differ(tmp_path):
    items = read(DATA / "mini.jsonl")
    tasks = json.loads(write(items, tmp_path / "t.json").read_text())
    assert tasks[0]["data"]["tokens"][-1] == {"text": ".", "start": 27, "end": 28}  # "Paris." is two tokens
    assert "tokens" not in tasks[2]["data"]


def test_labelstudio_config_matches_the_exported_names():
    xml = labelstudio_config(["PER", "LOC", "PER", 'A"&<B'], translation=True, image=True)
    root = ET.fromstring(xml)
    labels = root.findall("Labels")
    assert [(lb.get("name"), lb.get("toName")) for lb in labels] == [("label", "text"), ("label_translation", "translation")]
    assert [x.get("value") for x in labels[0]] == ['A"&<B', "LOC", "PER"]
    assert [(t.get("name"), t.get("value")) for t in root.findall("Text")] == [("text", "$text"), ("translation", "$translation")]
    assert root.find("Image").get("value") == "$image"
    assert ET.fromstring(labelstudio_config(["X"])).find("Text").get("name") == "text"


def _task(result, text="Angela Merkel"):
    return [{"data": {"text": text}, "annotations": [{"result": result}]}]


def _res(start, end, labels=("PER",), text=None):
    value = {"start": start, "end": end, "labels": list(labels)}
    if text is not None:
        value["text"] = text
    return {"from_name": "label", "to_name": "text", "type": "labels", "value": value}


@pytest.mark.parametrize(
    "tasks,fragments",
    [
        (_task([_res(0, 6), _res(3, 13)]), ["overlap"]),
        (_task([_res(0, 6, text="Merkel")]), ["value.text 'Merkel' does not match", "'Angela'"]),
        (_task([_res(0, 6, labels=("PER", "ORG"))]), ["exactly one label"]),
        (_task([_res(0, 99)]), ["outside the text"]),
        ([{"data": {"txt": "x"}}], ['no "text"']),
        (_task([_res(6, 7)]), ["cover no token"]),
    ],
)
def test_labelstudio_bad_tasks_name_the_task(tmp_path, tasks, fragments):
    src = write_bytes(tmp_path, "bad.json", json.dumps([{"data": {"text": "fine"}}] + tasks))
    with pytest.raises(FormatError) as err:
        read(src)
    assert_error(err, src, "task 2", *fragments)


def test_labelstudio_bad_json_names_the_line(tmp_path):
    src = write_bytes(tmp_path, "bad.json", '[\n  {"data": {"text": "a"}},\n  {"data": }\n]\n')
    with pytest.raises(FormatError) as err:
        read(src)
    assert_error(err, src, 3, "bad JSON")
    with pytest.raises(FormatError, match="expected a JSON list"):
        read(write_bytes(tmp_path, "s.json", '"text"'))
    with pytest.raises(FormatError, match="empty file"):
        read(write_bytes(tmp_path, "e.json", "[]"))


# --- atomic writes -------------------------------------------------------------------------


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    items = read(DATA / "mini.jsonl")
    bad = items + [items[1].with_(id="late", meta={"x": {1, 2}})]  # a set is not JSON
    with pytest.raises(FormatError) as err:
        write(bad, tmp_path / "out.jsonl")
    assert_error(err, tmp_path / "out.jsonl", "item 'late'", "cannot be written as JSON")
    assert no_leftovers(tmp_path) == []
    (tmp_path / "out.jsonl").write_text("old\n")
    with pytest.raises(FormatError):
        write(bad, tmp_path / "out.jsonl")
    assert (tmp_path / "out.jsonl").read_text() == "old\n"
    assert no_leftovers(tmp_path) == ["out.jsonl"]


def test_invalid_items_are_rejected_before_writing(tmp_path):
    s = Sentence.from_words(["a", "b", "c"])
    item = Item("ov", s, [make_span(s, 0, 2, "A"), make_span(s, 1, 3, "B")])
    for name in ("x.conll", "x.jsonl", "x.json", "sub/dir/x.conll"):
        with pytest.raises(FormatError) as err:
            write([item], tmp_path / name)
        assert_error(err, tmp_path / name, "item 'ov'", "overlap")
    assert no_leftovers(tmp_path) == []


def test_writer_failure_removes_created_parent_folders(tmp_path):
    items = [read(DATA / "mini.jsonl")[0].with_(meta={"bad": float("nan")})]
    with pytest.raises(FormatError):
        write(items, tmp_path / "new" / "deeper" / "out.jsonl")
    assert no_leftovers(tmp_path) == []
    write(items[:0], tmp_path / "new" / "deeper" / "ok.jsonl")
    assert (tmp_path / "new" / "deeper" / "ok.jsonl").read_text() == ""


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "keep.txt").write_text("precious")
    with pytest.raises(FormatError, match="not a saved dataset"):
        write(read(DATA / "repairs.conll"), tmp_path / "docs", "hf")
    assert (tmp_path / "docs" / "keep.txt").read_text() == "precious"


def test_find_split_names_the_corpus_files_of_each_layout(tmp_path):
    from core.formats import find_split

    (tmp_path / "train.conll").write_text("a\tO\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("a\tO\n", encoding="utf-8")  # Twitter-2015/2017 name dev "valid"
    assert find_split(tmp_path, "train") == tmp_path / "train.conll"
    assert find_split(tmp_path, "dev") == tmp_path / "valid.txt"
    assert find_split(tmp_path, "test") is None
