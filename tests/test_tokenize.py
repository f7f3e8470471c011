import importlib.util

import pytest

from core.tokenize import TokenizerUnavailable, spacy_lang_code, tokenize, tokenize_batch


def test_english_rules_and_offsets():
    text = "I don't know,  Mr. Smith.\n"
    s = tokenize(text, "en")
    assert s.words == ["I", "do", "n't", "know", ",", "Mr.", "Smith", "."]
    assert s.lang == "en"
    s.validate()  # every token's offsets point at its own text
    assert [text[t.start : t.end] for t in s.tokens] == s.words


def test_spanish_and_german_rules():
    assert tokenize("¿Dónde está el Sr. García?", "es").words == ["¿", "Dónde", "está", "el", "Sr.", "García", "?"]
    assert tokenize("Das Haus, z.B. im Dorf.", "de").words == ["Das", "Haus", ",", "z.B.", "im", "Dorf", "."]


def test_whitespace_tokens_are_dropped():
    s = tokenize("  a \t\n b  ", "en")
    assert s.words == ["a", "b"]
    assert (s.tokens[0].start, s.tokens[1].start) == (2, 7)


def test_language_codes():
    assert spacy_lang_code("en_US") == "en"
    assert spacy_lang_code("pt-BR") == "pt"
    assert spacy_lang_code("spa") == "es"  # ISO 639-3
    assert spacy_lang_code("sw") == "xx"  # spaCy has no Swahili tokenizer
    with pytest.raises(ValueError, match="empty language code"):
        spacy_lang_code(" ")


def test_unknown_language_uses_multilingual_tokenizer():
    s = tokenize("Rais wa Kenya, Bw. Ruto.", "sw")
    assert s.lang == "sw"
    assert s.words[:4] == ["Rais", "wa", "Kenya", ","]
    s.validate()


def test_batch_equals_single_and_empty_text():
    texts = ["The cat sat.", "", "Mrs. Jones (MEP) left!"]
    batch = tokenize_batch(texts, "en")
    assert [b.words for b in batch] == [tokenize(t, "en").words for t in texts]
    assert batch[1].tokens == [] and batch[1].text == ""


@pytest.mark.skipif(importlib.util.find_spec("sudachipy") is not None, reason="SudachiPy is installed")
def test_missing_tokenizer_dependency_is_named():
    with pytest.raises(TokenizerUnavailable, match="'ja'.*Sudachi"):
        tokenize("東京に行きます。", "ja")
