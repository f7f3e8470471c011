"""Back-translation refinement of word alignment.

Given a source sentence S, its target T and the back-translation B (T translated back into
the source language), a same-language aligner links S-B (easy: shared words), the
cross-lingual aligner links B-T (B is what T's translator made of T, so it tends to follow
T closely), and composing the two (S -> B -> T) gives a second, independent opinion on
S-T. Policy, with ``d`` the direct link score and ``c`` the composed score (the best
product ``score(s, b) * score(b, t)`` over bridge words b):

* a direct link that the composition confirms gets ``1 - (1 - d)(1 - c)`` (noisy-or, so
  it rises but stays in [0, 1]);
* a composed link that the direct aligner lacks is added with score ``c`` when
  ``c >= add_threshold`` and, under ``add_policy="unaligned"`` (default), its source or its
  target word has no direct link yet (it fills gaps without piling many-to-many links on
  words that are already aligned); ``"any"`` adds it regardless, ``"none"`` never adds;
* an unconfirmed direct link keeps its score, or is dropped when ``drop_below`` is set and
  ``d < drop_below``.

Whether it helps is measured by the projection benchmarks; :func:`compose_links` and
:meth:`BackTranslationAligner.composed` expose the composed links for that.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Sequence

from core.align.base import Aligner, AlignError, check_pairs, links_from_scores
from core.data import Link

__all__ = [
    "StringMatchAligner",
    "compose_links",
    "refine_links",
    "BackTranslationAligner",
    "make_back_translator",
    "back_translator",
    "ADD_POLICIES",
]

ADD_POLICIES = ("unaligned", "any", "none")
BackTranslator = Callable[[list[list[str]]], list[list[str]]]


class StringMatchAligner:
    """Same-language aligner: links words equal after normalisation (case, accents, lemma).

    Repeated words are paired one-to-one, closest relative positions first. Meant for S-B,
    where most content words recur verbatim; ``lemmatize`` (word -> lemma) widens it to
    inflected forms.
    """

    def __init__(
        self, lowercase: bool = True, strip_accents: bool = False, lemmatize: Callable[[str], str] | None = None
    ) -> None:
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.lemmatize = lemmatize
        self.name = "lemma" if lemmatize is not None else "exact"

    def _norm(self, word: str) -> str:
        w = unicodedata.normalize("NFC", word)
        if self.lemmatize is not None:
            w = self.lemmatize(w)
        if self.lowercase:
            w = w.casefold()
        if self.strip_accents:
            w = "".join(ch for ch in unicodedata.normalize("NFD", w) if not unicodedata.combining(ch))
        return w

    def align(self, pairs: list) -> list[list[Link]]:
        check_pairs(pairs, self.name)
        return [self._align_pair(list(p[0]), list(p[1])) for p in pairs]

    def _align_pair(self, src: list[str], tgt: list[str]) -> list[Link]:
        tgt_at: dict[str, list[int]] = {}
        for j, w in enumerate(tgt):
            tgt_at.setdefault(self._norm(w), []).append(j)
        src_at: dict[str, list[int]] = {}
        for i, w in enumerate(src):
            src_at.setdefault(self._norm(w), []).append(i)
        rel = lambda k, n: k / (n - 1) if n > 1 else 0.0  # noqa: E731
        points: dict[tuple[int, int], float] = {}
        for form, rows in src_at.items():
            cols = tgt_at.get(form)
            if not cols:
                continue
            candidates = sorted((abs(rel(i, len(src)) - rel(j, len(tgt))), i, j) for i in rows for j in cols)
            used_i: set[int] = set()
            used_j: set[int] = set()
            for _, i, j in candidates:
                if i not in used_i and j not in used_j:
                    points[(i, j)] = 1.0
                    used_i.add(i)
                    used_j.add(j)
        return links_from_scores(points)


def compose_links(src_bridge: list[Link], bridge_tgt: list[Link]) -> list[Link]:
    """S->B links composed with B->T links: (s, t) with score max over b of the product."""
    by_bridge: dict[int, list[Link]] = {}
    for ln in bridge_tgt:
        by_bridge.setdefault(ln.src, []).append(ln)
    scores: dict[tuple[int, int], float] = {}
    for a in src_bridge:
        for b in by_bridge.get(a.tgt, ()):
            s = a.score * b.score
            if s > scores.get((a.src, b.tgt), -1.0):
                scores[(a.src, b.tgt)] = s
    return links_from_scores(scores)


def refine_links(
    direct: list[Link],
    composed: list[Link],
    add_threshold: float = 0.8,
    add_policy: str = "unaligned",
    drop_below: float | None = None,
) -> list[Link]:
    """Direct links confirmed / completed by composed links (policy in the module docstring)."""
    if add_policy not in ADD_POLICIES:
        raise AlignError(f"unknown add_policy {add_policy!r}; choose one of {list(ADD_POLICIES)}")
    comp = {(ln.src, ln.tgt): ln.score for ln in composed}
    out: dict[tuple[int, int], float] = {}
    for ln in direct:
        c = comp.get((ln.src, ln.tgt))
        if c is not None:
            out[(ln.src, ln.tgt)] = 1.0 - (1.0 - ln.score) * (1.0 - c)
        elif drop_below is None or ln.score >= drop_below:
            out[(ln.src, ln.tgt)] = ln.score
    src_aligned = {ln.src for ln in direct}
    tgt_aligned = {ln.tgt for ln in direct}
    if add_policy != "none":
        for (s, t), c in comp.items():
            if (s, t) in out or c < add_threshold:
                continue
            if add_policy == "any" or s not in src_aligned or t not in tgt_aligned:
                out[(s, t)] = c
    return links_from_scores(out)


def make_back_translator(
    translate: Callable[[list[str]], list[str]], tokenize: Callable[[str], list[str]] | None = None
) -> BackTranslator:
    """Wrap a text translator (target texts -> source-language texts) for word lists.

    ``tokenize`` splits a back-translated text into words (default: words and punctuation
    marks, ``\\w+|[^\\w\\s]``); pass ``lambda t: core.tokenize.tokenize(t, lang).words`` for
    the project's language-aware tokenizer.
    """
    split = tokenize or (lambda text: re.findall(r"\w+|[^\w\s]", text))

    def back_translate(targets: list[list[str]]) -> list[list[str]]:
        texts = translate([" ".join(words) for words in targets])
        if len(texts) != len(targets):
            raise AlignError(f"the translator returned {len(texts)} texts for {len(targets)} sentences")
        return [split(t) for t in texts]

    return back_translate


def back_translator(spec: str, src: str, tgt: str) -> BackTranslator:
    """A translator_fn from core.translate (``"apertium"``, ``"hf:ID"``): target words ->
    back-translation words, tokenized with the source language's tokenizer (core.tokenize)."""
    from core.tokenize import tokenize_batch
    from core.translate import load_translator

    translator = load_translator(spec)

    def back_translate(targets: list[list[str]]) -> list[list[str]]:
        texts = translator.translate([" ".join(words) for words in targets], tgt, src)
        if len(texts) != len(targets):
            raise AlignError(f"translator {spec!r} returned {len(texts)} texts for {len(targets)} sentences")
        return [sentence.words for sentence in tokenize_batch(texts, src)]

    return back_translate


class BackTranslationAligner:
    """Direct links refined with links composed through a back-translation (see module doc).

    Each pair may carry its back-translation as a third element (words); for pairs without
    one, ``translator_fn`` (target word lists -> back-translation word lists) makes it.
    ``same_lang_aligner`` links S-B (default: exact string match); ``bridge_aligner`` links
    B-T (default: the direct aligner).
    """

    def __init__(
        self,
        direct: Aligner,
        translator_fn: BackTranslator | None = None,
        same_lang_aligner: Aligner | None = None,
        bridge_aligner: Aligner | None = None,
        add_threshold: float = 0.8,
        add_policy: str = "unaligned",
        drop_below: float | None = None,
    ) -> None:
        if add_policy not in ADD_POLICIES:
            raise AlignError(f"unknown add_policy {add_policy!r}; choose one of {list(ADD_POLICIES)}")
        self.direct = direct
        self.translator_fn = translator_fn
        self.same_lang = same_lang_aligner or StringMatchAligner()
        self.bridge = bridge_aligner or direct
        self.add_threshold = add_threshold
        self.add_policy = add_policy
        self.drop_below = drop_below
        self.name = f"backtranslation({direct.name},{self.same_lang.name})"

    def back_translations(self, pairs: Sequence) -> list[list[str]]:
        """The back-translation of each pair: its third element, or made by translator_fn."""
        backs: list[list[str] | None] = [list(p[2]) if len(p) > 2 and p[2] is not None else None for p in pairs]
        missing = [k for k, b in enumerate(backs) if b is None]
        if missing:
            if self.translator_fn is None:
                raise AlignError(
                    f"{self.name}: pair {missing[0]} has no back-translation (third element) and no translator_fn was given"
                )
            made = self.translator_fn([list(pairs[k][1]) for k in missing])
            if len(made) != len(missing):
                raise AlignError(f"{self.name}: translator_fn returned {len(made)} back-translations for {len(missing)}")
            for k, b in zip(missing, made):
                backs[k] = list(b)
        return backs  # type: ignore[return-value]

    def composed(self, pairs: list, backs: list[list[str]] | None = None) -> list[list[Link]]:
        """S->B->T composed links of each pair (for measuring the back-translation alone)."""
        check_pairs(pairs, self.name)
        backs = backs if backs is not None else self.back_translations(pairs)
        src_bridge = self.same_lang.align([(list(p[0]), b) for p, b in zip(pairs, backs)])
        bridge_tgt = self.bridge.align([(b, list(p[1])) for p, b in zip(pairs, backs)])
        return [compose_links(sb, bt) for sb, bt in zip(src_bridge, bridge_tgt)]

    def align(self, pairs: list) -> list[list[Link]]:
        check_pairs(pairs, self.name)
        backs = self.back_translations(pairs)
        direct = self.direct.align([(list(p[0]), list(p[1])) for p in pairs])
        composed = self.composed(pairs, backs)
        return [
            refine_links(d, c, self.add_threshold, self.add_policy, self.drop_below) for d, c in zip(direct, composed)
        ]
