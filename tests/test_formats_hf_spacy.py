"""core.formats hf (datasets folder / parquet) and spacy (DocBin), checked with the libraries' own loaders."""

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


# --- spacy ---------------------------------------------------------------------------------


def test_spacy_docbin_loads_with_spacys_own_reader(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    items = mixed_items()
    out = write(items, tmp_path / "train.spacy", lang="en")
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    assert [d.text for d in docs] == [i.source.text for i in items]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("Smith", "PER"), ("Berlin", "LOC")]
    assert [t.text for t in docs[1] if not t.is_space] == ["Dr.", "Smith", "visited", "Berlin"]
    assert [(e.text, e.label_) for e in docs[2].ents] == [("Paris", "LOC"), ("London", "LOC")]  # adjacent kept apart
    back = read(out)
    # one side per DocBin: ids, lang, meta, image, span sources and confidences ride in user_data
    assert back == [i.with_(target=None, target_spans=[], alignment=[]) for i in items]
    assert write(back, tmp_path / "again.spacy", lang="en").read_bytes() == out.read_bytes()


def test_spacy_foreign_docbin_and_target_side(tmp_path):
    import spacy
    from spacy.tokens import DocBin, Span

    nlp = spacy.blank("de")
    doc = nlp("Angela Merkel besuchte Paris.")
    doc.ents = [Span(doc, 0, 2, "PER"), Span(doc, 3, 4, "LOC")]
    DocBin(docs=[doc]).to_disk(tmp_path / "foreign.spacy")
    (item,) = read(tmp_path / "foreign.spacy", lang="de")
    assert item.id == "foreign:1" and item.source.lang == "de"
    assert item.source.words == ["Angela", "Merkel", "besuchte", "Paris", "."]
    assert spans_of(item) == [(0, 2, "PER"), (3, 4, "LOC")] and item.source_spans[0].source == "gold"

    full = read(DATA / "mini.jsonl")[0]
    (tgt,) = read(write([full], tmp_path / "tgt.spacy", side="target"))
    assert tgt.source.text == full.target.text and spans_of(tgt) == spans_of(full, "target")


def test_spacy_bad_input_and_unrepresentable_text(tmp_path):
    (tmp_path / "junk.spacy").write_bytes(b"\x00garbage")
    with pytest.raises(FormatError, match="not a spaCy DocBin"):
        read(tmp_path / "junk.spacy")
    s = Sentence("a-b", [Token("a", 0, 1), Token("b", 2, 3)])
    with pytest.raises(FormatError) as err:
        write([Item("dash", s, [])], tmp_path / "x.spacy")
    assert "item 'dash'" in str(err.value) and "not whitespace" in str(err.value)
    with pytest.raises(FormatError, match="spaCy has no language"):
        write([Item("a", Sentence.from_text("a"), [])], tmp_path / "y.spacy", lang="zz-nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.spacy"]
