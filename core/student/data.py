"""From Items to model inputs: word tags, silver masking, first-subword labels, windows.

* Labels sit on the FIRST subword of each word; the other subwords get -100 (no loss),
  so a word counts once however the tokenizer cuts it, and prediction reads the same
  position back.
* A sentence longer than the subword budget is split into consecutive windows of whole
  words (never truncated); predictions of the windows are stitched back by word offset.
* Silver spans (projection, teacher, an earlier student) whose confidence is below
  ``silver_threshold`` are masked (-100 on their words) rather than taught as ``O``: a
  doubtful projection may well be right, and teaching "not an entity" there would be
  the worse error.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

from core.data import Item, Sentence, Span
from core.student.config import WORD_FORMS, StudentError, TrainConfig
from core.tags import spans_to_tags

__all__ = [
    "IGNORE",
    "SILVER_SOURCES",
    "Example",
    "WORD_FORMS",
    "Window",
    "build_windows",
    "choose_word_form",
    "examples_from_items",
    "is_silver_source",
    "item_is_gold",
    "label_list",
    "split_windows",
    "word_form",
    "word_pieces",
]

IGNORE = -100  # PyTorch's ignore_index for cross-entropy
SILVER_SOURCES = ("projection", "teacher", "student")  # span sources that were not checked by a person


def is_silver_source(source: str) -> bool:
    """``projection:<method>``, ``teacher``, ``student:<version>`` are silver; gold/human are not."""
    return source.split(":", 1)[0] in SILVER_SOURCES


def item_is_gold(item: Item, side: str = "target") -> bool:
    """Whether an item's labels on ``side`` were given or checked by a person.

    ``item.meta["gold"]`` (a bool) decides when present; otherwise an item is silver as soon
    as one of its spans on that side comes from a silver source.
    """
    flag = item.meta.get("gold")
    if isinstance(flag, bool):
        return flag
    spans = item.target_spans if side == "target" else item.source_spans
    return not any(is_silver_source(s.source) for s in spans)


@dataclass(frozen=True)
class Example:
    """One sentence to learn from: a tag per word (None = masked) and a loss weight."""

    key: str  # item id, for messages
    words: tuple[str, ...]
    tags: tuple[str | None, ...]
    weight: float
    image: str | None = None
    gold: bool = False  # given or checked by a person (item_is_gold)


def side_of(item: Item, side: str) -> tuple[Sentence, list[Span]]:
    if side == "target":
        if item.target is None:
            raise StudentError(f"item {item.id}: no target sentence to train on (side='target')")
        return item.target, item.target_spans
    return item.source, item.source_spans


def examples_from_items(items: Sequence[Item], config: TrainConfig) -> list[Example]:
    """Training examples of ``config.side``, weighted gold/silver, low-confidence silver masked."""
    examples = []
    for item in items:
        sentence, spans = side_of(item, config.side)
        if len(sentence) == 0:
            continue
        try:
            tags: list[str | None] = list(spans_to_tags(len(sentence), spans))
        except Exception as exc:  # TagError: overlapping or out-of-range spans
            raise StudentError(f"item {item.id}: {exc}") from exc
        for span in spans:
            if is_silver_source(span.source) and span.confidence is not None and span.confidence < config.silver_threshold:
                tags[span.start : span.end] = [None] * len(span)
        gold = item_is_gold(item, config.side)
        examples.append(
            Example(
                key=item.id,
                words=tuple(sentence.words),
                tags=tuple(tags),
                weight=config.w_gold if gold else config.w_silver,
                image=item.image,
                gold=gold,
            )
        )
    return examples


MAX_GOLD_REPEATS = 20  # a few corrected sentences are not seen more often than this per epoch


def balance_gold(examples: Sequence[Example], share: float | None) -> list[Example]:
    """The gold examples repeated (at most MAX_GOLD_REPEATS times) until they make at least
    ``share`` of the epoch.

    Why: a reviewer's first 50 corrections among 950 machine-labelled sentences are one pass
    in twenty; the silver outweighs them, and where the machine labels are poor a student on
    the 50 corrections alone does better. Repeating the gold keeps every silver sentence
    (what the corrections do not cover) while the corrections set the direction."""
    if share is None:
        return list(examples)
    gold = [ex for ex in examples if ex.gold]
    n_silver = len(examples) - len(gold)
    if not gold or not n_silver:
        return list(examples)
    repeats = min(MAX_GOLD_REPEATS, max(1, math.ceil(share * n_silver / ((1.0 - share) * len(gold)))))
    return list(examples) + gold * (repeats - 1)


def label_list(examples: Sequence[Example]) -> list[str]:
    """``O`` then ``B-X, I-X`` for every entity type X seen, sorted (stable across runs)."""
    types = sorted({t[2:] for ex in examples for t in ex.tags if t and t != "O"})
    return ["O"] + [f"{prefix}-{label}" for label in types for prefix in ("B", "I")]


# ----------------------------------------------------------------------- subwords


# How the encoder reads a word (TrainConfig.word_form, one of WORD_FORMS). "as-is": unchanged (students saved
# before the option); "nfc": Unicode NFC, lossless (text typed or stored decomposed, e.g. Yoruba
# tone marks as combining characters, is cut into far more subwords than the composed form);
# "no-marks": NFC with every combining mark dropped (ẹ̀ -> e, ị -> i), lossy; "auto": chosen
# on the training text by choose_word_form and stored with the model.
NO_MARKS_GAIN = 0.10  # drop the marks only where that saves at least this share of the subwords


def word_form(word: str, form: str) -> str:
    """``word`` as the encoder reads it under ``form`` (a concrete form: not "auto")."""
    if form == "as-is":
        return word
    if form == "nfc":
        return unicodedata.normalize("NFC", word)
    if form == "no-marks":
        bare = "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))
        return unicodedata.normalize("NFC", bare) or word  # a lone mark keeps its form: every word keeps a position
    raise StudentError(f"word form {form!r}: expected one of {', '.join(f for f in WORD_FORMS if f != 'auto')}")


def choose_word_form(tokenizer: Any, sentences: Sequence[Sequence[str]]) -> str:
    """"no-marks" where the encoder's vocabulary covers the unmarked words clearly better (at
    least NO_MARKS_GAIN fewer subwords over these sentences), else "nfc".

    Why: multilingual vocabularies are learnt from web text, where tone marks and underdots
    are often left out (Yoruba, Igbo). Marked words then fall apart into single characters:
    Yoruba in MasakhaNER2 takes 3.4 subwords per word as written, 1.6 without marks; Igbo
    2.3 and 1.9. Each sentence then costs twice the compute and reaches the encoder as pieces
    it never learnt words from. Where the vocabulary has the marked words (Spanish, German),
    dropping marks costs subwords and the rule keeps them. Only the words and the tokenizer
    are read, never labels: what decides is the language's spelling, not the annotations."""
    counts = {form: sum(len(p) for sentence in word_pieces(tokenizer, sentences, form) for p in sentence) for form in ("nfc", "no-marks")}
    if counts["nfc"] and counts["no-marks"] <= (1.0 - NO_MARKS_GAIN) * counts["nfc"]:
        return "no-marks"
    return "nfc"


def word_pieces(tokenizer: Any, sentences: Sequence[Sequence[str]], form: str = "as-is") -> list[list[list[int]]]:
    """Subword ids of every word of every sentence (no special tokens), each word read in
    ``form`` (WORD_FORMS; never "auto").

    Words are tokenized as pre-split words, exactly as in one call on the whole sentence.
    A word the tokenizer turns into nothing (a lone control character) becomes the
    unknown token, so every word keeps a position to carry its label.
    """
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
    out: list[list[list[int]]] = []
    batch = 256
    for start in range(0, len(sentences), batch):
        chunk = [[word_form(w, form) for w in words] for words in sentences[start : start + batch]]
        if not any(chunk):
            out.extend([[] for _ in chunk])
            continue
        nonempty = [i for i, words in enumerate(chunk) if words]
        enc = tokenizer([chunk[i] for i in nonempty], is_split_into_words=True, add_special_tokens=False)
        pieces_of: dict[int, list[list[int]]] = {}
        for row, i in enumerate(nonempty):
            pieces: list[list[int]] = [[] for _ in chunk[i]]
            for token_id, word in zip(enc["input_ids"][row], enc.word_ids(row)):
                if word is not None:
                    pieces[word].append(token_id)
            pieces_of[i] = [p or [unk] for p in pieces]
        out.extend(pieces_of.get(i, []) for i in range(len(chunk)))
    return out


def special_frame(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a single sequence."""
    enc = tokenizer(["a"], is_split_into_words=True)
    word_ids = enc.word_ids()
    positions = [i for i, w in enumerate(word_ids) if w is not None]
    ids = enc["input_ids"]
    return list(ids[: positions[0]]), list(ids[positions[-1] + 1 :])


def split_windows(piece_counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive word ranges ``[start, end)`` whose subwords fit the budget.

    A single word longer than the budget gets a window of its own (its subwords are cut
    to the budget; only the first one carries the label).
    """
    if budget < 1:
        raise StudentError(f"subword budget {budget} leaves no room for words")
    windows: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, count in enumerate(piece_counts):
        count = min(count, budget)
        if used + count > budget and i > start:
            windows.append((start, i))
            start, used = i, 0
        used += count
    if start < len(piece_counts):
        windows.append((start, len(piece_counts)))
    return windows


@dataclass(frozen=True)
class Window:
    """Model input for the words ``[word_start, word_end)`` of sentence ``sentence``."""

    sentence: int
    word_start: int
    word_end: int
    input_ids: tuple[int, ...]
    first_positions: tuple[int, ...]  # index in input_ids of each word's first subword
    labels: tuple[int, ...]  # per input id: label id or IGNORE
    weight: float
    image: str | None


def build_windows(
    tokenizer: Any,
    sentences: Sequence[Sequence[str]],
    max_subwords: int,
    *,
    tags: Sequence[Sequence[str | None]] | None = None,
    label_ids: dict[str, int] | None = None,
    weights: Sequence[float] | None = None,
    images: Sequence[str | None] | None = None,
    reserved: int = 0,
    form: str = "as-is",
) -> list[Window]:
    """Windows of every sentence; with ``tags`` the first subword of each word gets its label.

    ``reserved`` positions of the budget are kept free (the image prefix token); words are
    read in ``form`` (word_form).
    """
    prefix, suffix = special_frame(tokenizer)
    budget = max_subwords - len(prefix) - len(suffix) - reserved
    all_pieces = word_pieces(tokenizer, sentences, form)
    windows: list[Window] = []
    for s, pieces in enumerate(all_pieces):
        for start, end in split_windows([len(p) for p in pieces], budget):
            ids = list(prefix)
            firsts: list[int] = []
            labels = [IGNORE] * len(prefix)
            for w in range(start, end):
                word_ids = pieces[w][:budget]
                firsts.append(len(ids))
                tag = tags[s][w] if tags is not None else None
                if tag is not None and label_ids is not None:
                    if tag not in label_ids:
                        raise StudentError(f"sentence {s}: tag {tag!r} is not among the model's labels")
                    first_label = label_ids[tag]
                else:
                    first_label = IGNORE
                ids.extend(word_ids)
                labels.extend([first_label] + [IGNORE] * (len(word_ids) - 1))
            ids.extend(suffix)
            labels.extend([IGNORE] * len(suffix))
            windows.append(
                Window(
                    sentence=s,
                    word_start=start,
                    word_end=end,
                    input_ids=tuple(ids),
                    first_positions=tuple(firsts),
                    labels=tuple(labels),
                    weight=weights[s] if weights is not None else 1.0,
                    image=images[s] if images is not None else None,
                )
            )
    return windows
