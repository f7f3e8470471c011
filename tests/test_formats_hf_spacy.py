"""core.formats hf (datasets folder / parquet), checked with the library's own loaders (DocBin: test_formats_docbin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data import Item, Sentence, Token, make_span
from core.formats import FormatError, ReadReport, read, write

DATA = Path(__file__).parent / "data"
PER_LOC_NAMES = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def spans_of(item: Item, side: str = "source") -> list[tuple[int, int, str]]:
    return [s.key() for s in (item.source_spans if side == "source" else item.target_spans)]


def mixed_items() -> list[Item]:
    """Items with a translation, alignment, image, meta, confidences and odd whitespace."""
    full = read(DATA / "mini.jsonl")[0]
    odd = Sentence("  Dr.Smith\tvisited  Berlin \n", [
        Token("Dr.", 2, 5), Token("Smith", 5, 10), Token("visited", 11, 18), Token("Berlin", 20, 26),
    ], "en")
    odd_item = Item("odd", odd, [make_span(odd, 1, 2, "PER", "teacher", 0.25), make_span(odd, 3, 4, "LOC")])
    plain = read(DATA / "conll2003_iob1.conll03")[2]
    return [full, odd_item, plain]


# --- hf ------------------------------------------------------------------------------------


def test_hf_folder_has_classlabel_iob2_names_and_loads_with_datasets(tmp_path):
    import datasets

    items = read(DATA / "tab_comments.conll")
    out = write(items, tmp_path / "ds")
    ds = datasets.load_from_disk(str(out))
    assert ds.column_names[:3] == ["id", "tokens", "ner_tags"]
    names = ds.features["ner_tags"].feature.names
    assert names == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert ds[0]["id"] == "merkel"
    assert [names[i] for i in ds[0]["ner_tags"]] == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert ds[1]["tokens"] == ["#", "EU", "New York"]
    assert "translation_tokens" not in ds.column_names and "text" not in ds.column_names
    back = read(out)
    assert back == items  # layout meta rides along in the meta column
    assert write(back, tmp_path / "same.conll").read_bytes() == (DATA / "tab_comments.conll").read_bytes()


def test_hf_labels_option_fixes_ids_and_rejects_unknown_labels(tmp_path):
    import datasets

    items = read(DATA / "repairs.conll")
    out = write(items, tmp_path / "fixed.parquet", labels=["PER", "LOC", "ORG", "MISC"])
    names = datasets.Dataset.from_parquet(str(out), cache_dir=str(tmp_path / "cache")).features["ner_tags"].feature.names
    assert names == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    with pytest.raises(FormatError) as err:
        write(items, tmp_path / "x.parquet", labels=["PER"])
    assert "item 'repairs:1'" in str(err.value) and "LOC" in str(err.value)
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("name", ["ds", "ds.parquet"])
def test_hf_keeps_translation_alignment_text_and_meta(tmp_path, name):
    items = mixed_items()
    out = write(items, tmp_path / name)
    back = read(out)
    for a, b in zip(items, back):
        assert b.id == a.id and b.source == a.source and b.target == a.target
        assert spans_of(b) == spans_of(a) and spans_of(b, "target") == spans_of(a, "target")
        assert b.alignment == a.alignment and b.image == a.image and b.meta == a.meta
    assert back[1].source.text == "  Dr.Smith\tvisited  Berlin \n"  # the text column kept it


def test_hf_translation_columns(tmp_path):
    import datasets

    ds = datasets.load_from_disk(str(write(mixed_items(), tmp_path / "ds")))
    assert {"translation_tokens", "translation_ner_tags", "translation_lang", "alignment", "image", "meta", "text", "lang"} <= set(ds.column_names)
    names = ds.features["translation_ner_tags"].feature.names
    assert [names[i] for i in ds[0]["translation_ner_tags"]] == ["B-PER", "I-PER", "O", "O", "O"]
    assert ds[1]["translation_tokens"] is None and ds[0]["translation_lang"] == "de"


def test_hf_reads_string_tags_splits_and_other_schemes(tmp_path):
    import datasets

    rows = {"id": ["a", "b"], "tokens": [["Paris", "London"], ["EU"]], "ner_tags": [["I-LOC", "B-LOC"], ["I-ORG"]]}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows), "test": datasets.Dataset.from_dict(rows)})
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(FormatError, match="choose a split"):
        read(tmp_path / "dd")
    items = read(tmp_path / "dd", split="test")
    assert [spans_of(i) for i in items] == [[(0, 1, "LOC"), (1, 2, "LOC")], [(0, 1, "ORG")]]  # IOB1 detected
    report = ReadReport()
    items = read(tmp_path / "dd", split="train", scheme="IOB2", report=report)
    assert [str(w) for w in report.warnings] == [
        f"{tmp_path / 'dd'}: row 0 (id 'a'): tokens: I-LOC at token 1 without a preceding B-LOC; started a new span",
        f"{tmp_path / 'dd'}: row 1 (id 'b'): tokens: I-ORG at token 1 without a preceding B-ORG; started a new span",
    ]


def test_hf_bad_input(tmp_path):
    import datasets

    feats = datasets.Features({
        "id": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        "ner_tags": datasets.List(datasets.ClassLabel(names=PER_LOC_NAMES)),
    })
    datasets.Dataset.from_dict({"id": ["x", "y"], "tokens": [["a"], ["b"]], "ner_tags": [[0], [-1]]}, features=feats).save_to_disk(str(tmp_path / "bad_id"))
    with pytest.raises(FormatError) as err:
        read(tmp_path / "bad_id")
    assert str(err.value).startswith(f"{tmp_path / 'bad_id'}: row 1: ner_tags holds id -1")
    datasets.Dataset.from_dict({"id": ["x"], "words": [["a"]]}).save_to_disk(str(tmp_path / "no_tokens"))
    with pytest.raises(FormatError, match="has no 'tokens' column"):
        read(tmp_path / "no_tokens")
    datasets.Dataset.from_dict({"tokens": [["a"]], "ner_tags": [[0]]}).save_to_disk(str(tmp_path / "int_tags"))
    with pytest.raises(FormatError, match="ClassLabel ids or of tag strings"):
        read(tmp_path / "int_tags")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FormatError, match="not a dataset saved with save_to_disk"):
        read(tmp_path / "empty_dir")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(FormatError, match="not a parquet file"):
        read(tmp_path / "junk.parquet")


def test_hf_replaces_an_existing_dataset_folder_atomically(tmp_path):
    items = read(DATA / "repairs.conll")
    write(items, tmp_path / "ds")
    write(items[:1], tmp_path / "ds")
    assert [i.id for i in read(tmp_path / "ds")] == ["repairs:1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]



def test_hf_extra_columns_are_kept_in_meta_and_written_back(tmp_path):
    """A CoNLL-2003-style dataset (pos_tags, chunk_tags as ClassLabel ids) keeps its columns."""
    import datasets
    from datasets import ClassLabel, Features, List, Value

    features = Features({
        "id": Value("string"), "tokens": List(Value("string")),
        "pos_tags": List(ClassLabel(names=["NNP", "VBZ", "."])), "chunk_tags": List(ClassLabel(names=["O", "B-NP", "B-VP"])),
        "ner_tags": List(ClassLabel(names=["O", "B-PER", "I-PER"])), "source_url": Value("string"),
    })  # fmt: skip
    rows = {"id": ["0"], "tokens": [["Anna", "sleeps", "."]], "pos_tags": [[0, 1, 2]], "chunk_tags": [[1, 2, 0]],
            "ner_tags": [[1, 0, 0]], "source_url": ["https://example.org/1"]}  # fmt: skip
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "ds"))
    report = ReadReport()
    [item] = read(tmp_path / "ds", "hf", report=report)
    assert item.meta["hf_columns"] == {"pos_tags": ["NNP", "VBZ", "."], "chunk_tags": ["B-NP", "B-VP", "O"],
                                       "source_url": "https://example.org/1"}  # fmt: skip
    [warning] = [str(w) for w in report.warnings]
    assert "pos_tags, chunk_tags, source_url" in warning and "hf_columns" in warning
    write([item], tmp_path / "out")
    back = datasets.load_from_disk(str(tmp_path / "out"))
    assert back[0]["pos_tags"] == ["NNP", "VBZ", "."] and back[0]["source_url"] == "https://example.org/1"
    assert "hf_columns" not in (back[0].get("meta") or "")
    [again] = read(tmp_path / "out", "hf", report=ReadReport())
    assert again.meta["hf_columns"] == item.meta["hf_columns"] and spans_of(again) == [(0, 1, "PER")]
    # JSONL keeps them in meta too
    write([item], tmp_path / "x.jsonl")
    assert read(tmp_path / "x.jsonl")[0].meta["hf_columns"]["pos_tags"] == ["NNP", "VBZ", "."]
