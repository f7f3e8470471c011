import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.data import Item, Sentence, make_span
from core.translate import (
    ApertiumTranslator,
    TranslationError,
    TranslatorUnavailable,
    UnknownLanguage,
    _strip_apertium_marks,
    back_translate,
    language_codes,
    load_translator,
    m2m_code,
    nllb_code,
    translate_items,
)

# --- language codes ---------------------------------------------------------------------


def test_nllb_codes():
    assert nllb_code("en") == "eng_Latn"
    assert nllb_code("spa") == "spa_Latn"  # ISO 639-3
    assert nllb_code("es-MX") == "spa_Latn"  # locale
    assert nllb_code("ger") == "deu_Latn"  # ISO 639-2/B
    assert nllb_code("ar") == "arb_Arab"  # macrolanguage -> NLLB's individual language
    assert nllb_code("yo") == "yor_Latn"
    assert nllb_code("fon") == "fon_Latn"  # only an ISO 639-3 code
    assert nllb_code("zho_Hant") == "zho_Hant"  # NLLB codes pass through
    with pytest.raises(UnknownLanguage, match="no NLLB-200 code known for 'qq'.*spa_Latn"):
        nllb_code("qq")


def test_iso_and_m2m_codes():
    assert language_codes("en_US") == ("en", "eng")
    assert language_codes("glg") == ("gl", "glg")
    assert language_codes("luo") == (None, "luo")
    assert m2m_code("eng") == "en" and m2m_code("ast") == "ast"
    with pytest.raises(UnknownLanguage, match="'xyz'"):
        language_codes("xyz")


def test_unknown_translator_spec():
    with pytest.raises(TranslationError, match="unknown translator 'google'"):
        load_translator("google")
    with pytest.raises(TranslationError, match="hf: translators only"):
        load_translator("apertium", num_beams=2)


# --- Apertium ---------------------------------------------------------------------------


def test_apertium_marks_are_removed():
    assert _strip_apertium_marks("Señor  *Kumar *Ponnambalam", "Mr Kumar Ponnambalam") == "Señor Kumar Ponnambalam"
    assert _strip_apertium_marks("a -40*ºC , el *PPE-*DE", "to -40ºC , the PPE-DE") == "a -40ºC , el PPE-DE"
    assert _strip_apertium_marks("las regiones más move# away", "x") == "las regiones más move away"
    assert _strip_apertium_marks("no @subject a #puesto", "not subject to") == "no subject a puesto"
    # symbols the source really has survive
    assert _strip_apertium_marks("con @*john", "with @john") == "con @john"


def test_missing_apertium_is_named():
    with pytest.raises(TranslatorUnavailable, match="apt-get install apertium apertium-eng-spa"):
        ApertiumTranslator(executable="apertium-not-installed-here")


def _apertium_with(*modes: str) -> ApertiumTranslator:
    if shutil.which("apertium") is None:
        pytest.skip("apertium is not installed (apt-get install apertium apertium-eng-spa)")
    translator = ApertiumTranslator()
    missing = [m for m in modes if m not in translator.modes]
    if missing:
        pytest.skip(f"Apertium modes {missing} are not installed (apt-get install apertium-eng-spa)")
    return translator


@pytest.mark.integration
def test_apertium_en_es_and_back():
    apertium = _apertium_with("eng-spa", "spa-eng")
    es = apertium.translate(["The European Commission approved the proposal.", "", "The dog barks."], "en", "es")
    assert es[0].lower() == "la comisión europea aprobó la propuesta."
    assert es[1] == ""
    assert "perro" in es[2]
    en = apertium.translate(["La Comisión Europea aprobó la propuesta.", "El perro ladra."], "es", "en")
    assert en == ["The European Commission approved the proposal.", "The dog barks."]


@pytest.mark.integration
def test_apertium_unknown_words_lose_their_marks():
    apertium = _apertium_with("eng-spa")
    [out] = apertium.translate(["Mr Kumar Ponnambalam visited the Xyzzyq waterways."], "en", "es")
    assert "Ponnambalam" in out and "Xyzzyq" in out
    assert not any(mark in out for mark in "*#@")


@pytest.mark.integration
def test_apertium_batch_keeps_sentence_identity(europarl_dir, monkeypatch):
    apertium = _apertium_with("eng-spa")
    sentences, words = [], []
    for line in (europarl_dir / "en-europarl.test.conll02").read_text(encoding="utf-8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(" ".join(words))
            words = []
        if len(sentences) == 50:
            break
    runs = []
    run = apertium._run
    monkeypatch.setattr(apertium, "_run", lambda mode, text: runs.append(mode) or run(mode, text))
    batch = apertium.translate(sentences, "en", "es")
    assert runs == ["eng-spa"]  # one Apertium process for the batch, no one-by-one fallback
    assert len(batch) == 50
    # Any shift of sentence identity carries through to the end, so 10 evenly spaced
    # sentences translated one by one catch it (~0.45 CPU-seconds per Apertium start).
    probe = list(range(0, 50, 5)) + [49]
    with ThreadPoolExecutor(2) as pool:
        one_by_one = list(pool.map(lambda i: apertium.translate([sentences[i]], "en", "es")[0], probe))
    assert [batch[i] for i in probe] == one_by_one


@pytest.mark.integration
def test_apertium_pairs_and_missing_pair():
    apertium = _apertium_with("eng-spa", "spa-eng_US")
    assert apertium.mode("en", "es") == "eng-spa"
    assert apertium.mode("spa", "en_US") == "spa-eng_US"
    with pytest.raises(TranslatorUnavailable, match="no en->de pair.*apertium-eng-deu"):
        apertium.mode("en", "de")


# --- transformers seq2seq (tiny random models built here) -------------------------------


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    corpus = ["the cat sat on the mat", "el gato se sentó en la alfombra", "a dog barks", "un perro ladra"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>", ">>spa<<"]))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    tok.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    config = MarianConfig(
        vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, forced_eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-marian")
    tokenizer.save_pretrained(folder)
    MarianMTModel(config).save_pretrained(folder)
    return folder


def test_hf_marian_translates_batches(tiny_marian):
    translator = load_translator(f"hf:{tiny_marian}", batch_size=2, num_beams=2, max_length=8)
    assert translator.family == "marian-multi"  # the vocabulary has a >>spa<< target token
    assert translator.generation_setup("en", "es") == (">>spa<< ", {})
    texts = ["the cat sat", "", "a dog barks on the mat", "the mat"]
    out = translator.translate(texts, "en", "es")
    assert len(out) == 4 and out[1] == ""
    assert all(isinstance(t, str) and t and t == " ".join(t.split()) for t in (out[0], out[2], out[3]))
    vocab = set(translator.tokenizer.get_vocab())
    assert all(w in vocab for t in out for w in t.split())  # decoded from the model's own vocabulary
    assert out == translator.translate(texts, "en", "es")  # deterministic (beam search, eval mode)
    with pytest.raises(UnknownLanguage, match=">>deu<<"):
        translator.translate(["the cat"], "en", "de")


def test_hf_nllb_language_tokens(tmp_path):
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "▁": 4}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab["▁" + ch] = len(vocab)
    tokenizer = NllbTokenizer(vocab=vocab, merges=[])  # adds the 200 NLLB language tokens
    config = M2M100Config(
        vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    tokenizer.save_pretrained(tmp_path)
    M2M100ForConditionalGeneration(config).save_pretrained(tmp_path)

    translator = load_translator(f"hf:{tmp_path}", num_beams=1, max_length=6)
    assert translator.family == "nllb"
    prefix, extra = translator.generation_setup("en", "yo")
    assert prefix == "" and extra == {"forced_bos_token_id": translator.tokenizer.convert_tokens_to_ids("yor_Latn")}
    assert translator.tokenizer("the cat").input_ids[0] == translator.tokenizer.convert_tokens_to_ids("eng_Latn")
    out = translator.translate(["the cat", "a dog"], "en", "yo")
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    with pytest.raises(UnknownLanguage, match="qq"):
        translator.translate(["the cat"], "en", "qq")


def test_hf_missing_model_is_named(tmp_path):
    with pytest.raises(TranslatorUnavailable, match="cannot load translation model"):
        load_translator(f"hf:{tmp_path / 'nothing-here'}")


# --- translations the user brings -------------------------------------------------------


def _items(*ids: str) -> list[Item]:
    items = []
    for i, key in enumerate(ids):
        s = Sentence.from_words(["Sentence", str(i), "."], "en")
        items.append(Item(key, s, [make_span(s, 0, 1, "MISC")], meta={"k": i}))
    return items


def test_provided_tsv_by_id(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("id\ttranslation\nb\tLa frase  1.\na\tLa frase 0.\nextra\tNo se usa.\n", encoding="utf-8")
    items = _items("a", "b")
    out = translate_items(items, load_translator(f"provided:{path}"), "en", "es")
    assert [it.target.words for it in out] == [["La", "frase", "0", "."], ["La", "frase", "1", "."]]
    assert out[0].target.lang == "es" and out[0].meta == {"k": 0, "translator": "provided:t.tsv"}
    assert out[0].source_spans == items[0].source_spans and items[0].target is None
    with pytest.raises(TranslationError, match="t.tsv: no translation for item c"):
        translate_items(_items("a", "c"), load_translator(f"provided:{path}"), "en", "es")


def test_provided_jsonl_and_lines(tmp_path):
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(
        json.dumps({"id": "a", "translation": "Uno."}) + "\n" + json.dumps({"id": 7, "translation": "Dos."}) + "\n",
        encoding="utf-8",
    )
    out = translate_items(_items("a", "7"), load_translator(f"provided:{jsonl}"), "en", "es")
    assert [it.target.text for it in out] == ["Uno.", "Dos."]

    lines = tmp_path / "t.txt"
    lines.write_text("Uno.\r\nDos.\n", encoding="utf-8")
    translator = load_translator(f"provided:{lines}")
    out = translate_items(_items("x", "y"), translator, "en", "es", batch_size=1)
    assert [it.target.text for it in out] == ["Uno.", "Dos."]
    assert translator.translate(["one", "two"], "en", "es") == ["Uno.", "Dos."]
    with pytest.raises(TranslationError, match="2 lines for 3 sentences; item z has none"):
        translate_items(_items("x", "y", "z"), translator, "en", "es")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.tsv", "a\tUno.\nb Dos.\n", r"bad.tsv:2: expected id<TAB>translation"),
        ("bad.tsv", "a\tUno.\na\tOtra.\n", r"bad.tsv:2: id a appears twice"),
        ("bad.tsv", "a\t  \n", r"bad.tsv:1: empty translation for id a"),
        ("bad.jsonl", '{"id": "a", "translation": "x"}\n{"id": "b"\n', r"bad.jsonl:2: not valid JSON"),
        ("bad.jsonl", '{"id": "a", "text": "x"}\n', r"bad.jsonl:1: expected"),
        ("bad.txt", "Uno.\n\nDos.\n", r"bad.txt:2: empty translation"),
    ],
)
def test_provided_file_errors_name_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TranslationError, match=message):
        load_translator(f"provided:{path}")


def test_provided_missing_file(tmp_path):
    with pytest.raises(TranslatorUnavailable, match="does not exist"):
        load_translator(f"provided:{tmp_path / 'none.tsv'}")


# --- translate_items / back_translate with any translator --------------------------------


class Upper:
    """A stand-in translator that upper-cases (the batching logic is what is tested here)."""

    name = "upper"

    def __init__(self):
        self.calls: list[list[str]] = []

    def translate(self, texts, src, tgt):
        self.calls.append(list(texts))
        return [t.upper() for t in texts]


def test_translate_items_batches_and_resets_target():
    items = _items("a", "b", "c")
    old_target = Sentence.from_words(["old"])
    items[0] = items[0].with_(target=old_target, target_spans=[make_span(old_target, 0, 1, "PER")])
    translator = Upper()
    out = translate_items(items, translator, "en", "de", batch_size=2)
    assert translator.calls == [["Sentence 0 .", "Sentence 1 ."], ["Sentence 2 ."]]
    assert out[0].target.words == ["SENTENCE", "0", "."] and out[0].target_spans == [] and out[0].alignment == []
    for it in out:
        it.validate()


def test_back_translation_is_stored():
    translator = Upper()
    items = translate_items(_items("a"), translator, "en", "de")
    back = back_translate(items, translator, "en", "de")
    assert back[0].meta["back_translation"] == "SENTENCE 0 ."
    assert back[0].target == items[0].target
    with pytest.raises(TranslationError, match="item b has no target"):
        back_translate(_items("b"), translator, "en", "de")


def test_translator_returning_wrong_count_is_an_error():
    class Short(Upper):
        def translate(self, texts, src, tgt):
            return super().translate(texts, src, tgt)[:-1]

    with pytest.raises(TranslationError, match="1 translations for 2 sentences"):
        translate_items(_items("a", "b"), Short(), "en", "de")
