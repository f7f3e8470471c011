"""Surface-string evidence for candidate matching (no transliteration, no word lists).

Names and numbers are usually copied or only lightly inflected by translation ("Prodi" ->
"Prodi", "Kommission" ~ "Commission", "1999" -> "1999"), so the character overlap of an
entity and a candidate is evidence independent of the aligner. core.projection.matching
turns these word similarities into a coverage Dice (the ``string`` evidence): each word
takes its best similarity on the other side, punctuation ignored.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

__all__ = ["normalize_word", "word_similarity"]


@lru_cache(maxsize=65536)
def normalize_word(word: str) -> str:
    """Lower case, accents removed (NFKD without combining marks), punctuation dropped."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and unicodedata.category(ch)[0] not in "PS")


@lru_cache(maxsize=65536)
def _ngrams(word: str, n: int) -> frozenset[str]:
    padded = f"<{word}>"
    if len(padded) <= n:
        return frozenset({padded})
    return frozenset(padded[i : i + n] for i in range(len(padded) - n + 1))


@lru_cache(maxsize=262144)
def word_similarity(a: str, b: str, n: int = 3) -> float:
    """Dice of the character n-gram sets of two normalized words, in [0, 1]."""
    na, nb = normalize_word(a), normalize_word(b)
    if not na or not nb:
        return 0.0
    if na == nb:
        return 1.0
    if na.isdigit() or nb.isdigit():
        return 0.0  # numbers match exactly or not at all
    ga, gb = _ngrams(na, n), _ngrams(nb, n)
    return 2.0 * len(ga & gb) / (len(ga) + len(gb))
