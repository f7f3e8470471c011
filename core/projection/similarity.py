"""Surface-string evidence for candidate matching (no transliteration, no word lists).

Names and numbers are usually copied or only lightly inflected by translation ("Prodi" ->
"Prodi", "Kommission" ~ "Commission", "1999" -> "1999"), so the character overlap of an
entity and a candidate is evidence independent of the aligner. It is computed per word, as a
soft version of the alignment Dice: each word on one side takes its best character n-gram
similarity on the other side, and the sum over both sides is divided by the total number of
words. Words made only of punctuation are ignored on both sides.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Sequence

from core.projection.common import is_punct

__all__ = ["normalize_word", "word_similarity", "soft_dice"]


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


def soft_dice(source_words: Sequence[str], target_words: Sequence[str], floor: float = 0.0) -> float:
    """Soft word-level Dice of two phrases: best similarity per word, both directions.

    Similarities at or below ``floor`` count as 0, so that shared short n-grams between
    unrelated words do not add up.
    """
    src = [w for w in source_words if not is_punct(w)]
    tgt = [w for w in target_words if not is_punct(w)]
    if not src or not tgt:
        return 0.0
    sims = [[word_similarity(s, t) for t in tgt] for s in src]
    src_best = sum(v if (v := max(row)) > floor else 0.0 for row in sims)
    tgt_best = sum(v if (v := max(sims[i][j] for i in range(len(src)))) > floor else 0.0 for j in range(len(tgt)))
    return (src_best + tgt_best) / (len(src) + len(tgt))
