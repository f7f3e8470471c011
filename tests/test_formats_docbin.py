"""core.formats spacy (DocBin), checked with spaCy's own tools: ``spacy convert`` and ``DocBin().from_disk``."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from core.data import Item, Sentence, Token, make_span
from core.formats import FormatError, ReadReport, read, write

DATA = Path(__file__).parent / "data"


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


# --- written here, read by spaCy (and back) ----------------------------------------------


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


# --- several sentences per doc: what `spacy convert -n 10` makes --------------------------

PEOPLE = ["Amina Mohammed", "Kofi Annan", "Wangari Maathai", "Chinua Achebe", "Nelson Mandela"]
PLACES = ["Nairobi", "Lagos", "Addis Ababa", "Dar es Salaam", "Kano"]
GROUPS = ["African Union", "United Nations", "Red Cross"]


def conll_sentences() -> list[list[tuple[str, str]]]:
    """25 IOB2 sentences: entities first, last, multi-word, adjacent, and none at all."""
    sents = []
    for i in range(25):
        person = PEOPLE[i % len(PEOPLE)].split()
        place = PLACES[i % len(PLACES)].split()
        group = GROUPS[i % len(GROUPS)].split()

        def tagged(words: list[str], label: str) -> list[tuple[str, str]]:
            return [(w, ("B-" if j == 0 else "I-") + label) for j, w in enumerate(words)]

        if i % 5 == 0:
            sent = tagged(person, "PER") + [("visited", "O")] + tagged(place, "LOC") + [(".", "O")]
        elif i % 5 == 1:
            sent = [("The", "O")] + tagged(group, "ORG") + [("met", "O"), ("in", "O")] + tagged(place, "LOC")
        elif i % 5 == 2:
            sent = [("Nothing", "O"), ("happened", "O"), ("today", "O"), (".", "O")]
        elif i % 5 == 3:
            sent = [("Yesterday", "O")] + tagged(person, "PER") + tagged(group, "ORG") + [("spoke", "O"), (".", "O")]
        else:
            sent = tagged(place, "LOC") + tagged(place, "LOC") + [("(", "O"), (str(i), "O"), (")", "O")]
        sents.append(sent)
    return sents


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[Path, Path]:
    """A CoNLL file and the DocBin ``spacy convert FILE OUT -c ner -n 10`` makes of it."""
    folder = tmp_path_factory.mktemp("convert")
    conll = folder / "masakha.conll"
    conll.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in conll_sentences()) + "\n", encoding="utf-8")
    (folder / "out").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "spacy", "convert", str(conll), str(folder / "out"), "-c", "ner", "-n", "10"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = folder / "out" / "masakha.spacy"
    assert out.is_file(), proc.stdout
    return conll, out


def test_spacy_convert_n10_reads_one_item_per_sentence(converted):
    import spacy
    from spacy.tokens import DocBin

    conll, out = converted
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("xx").vocab))
    assert [len(list(d.sents)) for d in docs] == [10, 10, 5]  # what spaCy made: three docs
    report = ReadReport()
    items = read(out, report=report)
    assert report.warnings == []
    assert len(items) == 25
    assert [i.id for i in items] == [f"masakha:{d}:{k}" for d, n in ((1, 10), (2, 10), (3, 5)) for k in range(1, n + 1)]
    expected = conll_sentences()
    for item, sent in zip(items, expected):
        assert item.source.words == [w for w, _ in sent]
        assert item.source.text == " ".join(w for w, _ in sent)
        assert item.source.tokens[0].start == 0
    assert spans_of(items[0]) == [(0, 2, "PER"), (3, 4, "LOC")]
    assert [(e.char_start, e.char_end) for e in items[10].source_spans] == [(0, 14), (23, 30)]
    assert spans_of(items[10]) == [(0, 2, "PER"), (3, 4, "LOC")]  # sentence 1 of doc 2, offsets local to it
    assert spans_of(items[11]) == [(1, 3, "ORG"), (5, 6, "LOC")]
    assert spans_of(items[12]) == []
    assert spans_of(items[13]) == [(1, 3, "PER"), (3, 5, "ORG")]
    assert spans_of(items[24]) == [(0, 1, "LOC"), (1, 2, "LOC")]  # adjacent entities kept apart
    # the same sentences and entities our own CoNLL reader finds in the file spaCy converted
    assert [(i.source.words, spans_of(i)) for i in items] == [(i.source.words, spans_of(i)) for i in read(conll, fmt="conll")]
    assert [i.id for i in read(out)] == [i.id for i in items]  # stable across reads


def test_spacy_entity_across_a_sentence_boundary_keeps_those_sentences_together(tmp_path):
    import spacy
    from spacy.tokens import Doc, DocBin, Span

    nlp = spacy.blank("xx")
    words = ["Rais", "Samia", "Suluhu", "alihutubia", ".", "Dodoma", "ni", "mji", "."]
    starts = [True, False, False, False, False, True, False, False, False]
    doc = Doc(nlp.vocab, words=words, sent_starts=[True, False, True, False, False, True, False, False, False])
    doc.ents = [Span(doc, 1, 3, "PER"), Span(doc, 5, 6, "LOC")]  # PER crosses sentences 1 and 2
    whole = Doc(nlp.vocab, words=["Kano", "City", "FC"], sent_starts=[True, True, False])
    whole.ents = [Span(whole, 0, 3, "ORG")]
    clean = Doc(nlp.vocab, words=words, sent_starts=starts)
    clean.ents = [Span(clean, 1, 3, "PER"), Span(clean, 5, 6, "LOC")]
    DocBin(docs=[doc, whole, clean]).to_disk(tmp_path / "cross.spacy")

    report = ReadReport()
    items = read(tmp_path / "cross.spacy", report=report)
    assert [i.id for i in items] == ["cross:1:1", "cross:1:3", "cross:2", "cross:3:1", "cross:3:2"]
    assert [i.source.text for i in items] == [
        "Rais Samia Suluhu alihutubia .", "Dodoma ni mji .", "Kano City FC ", "Rais Samia Suluhu alihutubia .", "Dodoma ni mji .",
    ]
    assert [spans_of(i) for i in items] == [[(1, 3, "PER")], [(0, 1, "LOC")], [(0, 3, "ORG")], [(1, 3, "PER")], [(0, 1, "LOC")]]
    kept = "crosses from sentence 1 into sentence 2; kept those sentences together as one item"
    assert [str(w) for w in report.warnings] == [
        f"{tmp_path / 'cross.spacy'}: doc 1 (id 'cross:1'): entity 'Samia Suluhu' PER {kept}",
        f"{tmp_path / 'cross.spacy'}: doc 2 (id 'cross:2'): entity 'Kano City FC' ORG {kept}",
    ]


def test_spacy_docbin_without_sentence_boundaries_stays_one_item_per_doc(tmp_path):
    import spacy
    from spacy.tokens import Doc, DocBin, Span

    nlp = spacy.blank("xx")
    doc = Doc(nlp.vocab, words=["Kofi", "Annan", "spoke", ".", "Lagos", "is", "big", "."])
    doc.ents = [Span(doc, 0, 2, "PER"), Span(doc, 4, 5, "LOC")]
    assert not doc.has_annotation("SENT_START")
    DocBin(docs=[doc, nlp("Accra")]).to_disk(tmp_path / "plain.spacy")
    items = read(tmp_path / "plain.spacy")
    assert [i.id for i in items] == ["plain:1", "plain:2"]
    assert items[0].source.text == "Kofi Annan spoke . Lagos is big . "
    assert spans_of(items[0]) == [(0, 2, "PER"), (4, 5, "LOC")]
    assert items[1].source.words == ["Accra"]  # a one-token doc: one sentence, the doc's own id


def test_spacy_split_ids_must_be_unique(tmp_path):
    import spacy
    from spacy.tokens import Doc, DocBin

    nlp = spacy.blank("xx")
    two = Doc(nlp.vocab, words=["a", "b"], sent_starts=[True, True])
    two.user_data["labelbridge"] = {"id": "x"}
    taken = Doc(nlp.vocab, words=["c"])
    taken.user_data["labelbridge"] = {"id": "x:2"}
    DocBin(docs=[two, taken], store_user_data=True).to_disk(tmp_path / "dup.spacy")
    with pytest.raises(FormatError) as err:
        read(tmp_path / "dup.spacy")
    assert str(err.value) == f"{tmp_path / 'dup.spacy'}: doc 2 (id 'x:2'): id 'x:2' is already used by doc 1"


# --- languages spaCy has no pipeline for (MasakhaNER) ------------------------------------


@pytest.mark.parametrize("code", ["sw", "ha"])
def test_spacy_export_falls_back_to_xx_and_keeps_the_language(tmp_path, caplog, code):
    import spacy
    from spacy.tokens import DocBin

    s = Sentence("Rais Samia alitembelea Kano .", [
        Token("Rais", 0, 4), Token("Samia", 5, 10), Token("alitembelea", 11, 22), Token("Kano", 23, 27), Token(".", 28, 29),
    ], code)
    items = [Item("m1", s, [make_span(s, 1, 2, "PER"), make_span(s, 3, 4, "LOC")], meta={"split": "test"})]
    with caplog.at_level(logging.WARNING, logger="core.formats"):
        out = write(items, tmp_path / f"{code}.spacy")
    assert any(f"spaCy has no language {code!r}" in r.getMessage() and "'xx'" in r.getMessage() for r in caplog.records)
    (doc,) = DocBin().from_disk(out).get_docs(spacy.blank("xx").vocab)
    assert doc.text == s.text and [(e.text, e.label_) for e in doc.ents] == [("Samia", "PER"), ("Kano", "LOC")]
    assert doc.user_data["labelbridge"]["lang"] == code and doc.user_data["labelbridge"]["requested_lang"] == code
    assert read(out) == items
    assert read(out, lang=code) == items  # reading with the language spaCy lacks works too

    # items without a language, written with an explicit one: the round trip gives them that language
    bare = [i.with_(source=Sentence(s.text, s.tokens, None)) for i in items]
    (back,) = read(write(bare, tmp_path / f"bare-{code}.spacy", lang=code))
    assert back.source.lang == code and spans_of(back) == spans_of(items[0])
