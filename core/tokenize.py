"""Language-aware tokenization into core.data.Sentence (spaCy's rule-based blank pipelines).

spaCy's blank tokenizers know each language's punctuation, clitics and abbreviations
("Mr.", "l'Europe", "del"), which whitespace splitting does not; token boundaries decide what
a span can cover, so every sentence that is not pre-tokenized goes through here. Only the
tokenizer runs (no model), so it is fast and needs no download.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Iterable

import spacy
import spacy.util
from spacy.language import Language

from core.data import Sentence, Token
from core.errors import ConfigError

__all__ = ["TokenizerUnavailable", "tokenize", "tokenize_batch", "spacy_lang_code"]

log = logging.getLogger(__name__)

MULTILINGUAL = "xx"  # spaCy's language-neutral tokenizer, used for languages spaCy lacks


class TokenizerUnavailable(RuntimeError):
    """spaCy knows the language but its tokenizer needs a package that is not installed."""


@lru_cache(maxsize=None)
def spacy_lang_code(lang: str) -> str:
    """The spaCy language code for an ISO 639-1/3 code or a locale (``en_US``, ``pt-BR``, ``spa``).

    Falls back to ``xx`` (with a warning) when spaCy has no tokenizer for the language.
    """
    base = lang.strip().replace("_", "-").split("-")[0].lower()
    if not base:
        raise ConfigError(f"empty language code {lang!r}")
    try:
        return spacy.util.get_lang_class(base).lang or base
    except ImportError:
        log.warning("spaCy has no tokenizer for language %r; using the multilingual 'xx' tokenizer", lang)
        return MULTILINGUAL


@lru_cache(maxsize=None)
def _blank(code: str) -> Language:
    try:
        return spacy.blank(code)
    except ImportError as exc:  # e.g. Japanese needs SudachiPy, Thai needs PyThaiNLP
        raise TokenizerUnavailable(f"spaCy's tokenizer for {code!r} needs an extra package: {exc}") from exc


def _to_sentence(doc, text: str, lang: str) -> Sentence:
    tokens = [Token(t.text, t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]
    return Sentence(text, tokens, lang)


def tokenize(text: str, lang: str) -> Sentence:
    """One text as a Sentence with character offsets; whitespace tokens are dropped."""
    return _to_sentence(_blank(spacy_lang_code(lang))(text), text, lang)


def tokenize_batch(texts: Iterable[str], lang: str) -> list[Sentence]:
    """Many texts of one language (one cached tokenizer, streamed through spaCy's pipe)."""
    texts = list(texts)
    nlp = _blank(spacy_lang_code(lang))
    return [_to_sentence(doc, text, lang) for doc, text in zip(nlp.pipe(texts), texts)]
