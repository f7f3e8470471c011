"""spaCy ``DocBin`` (``.spacy``): the training-data format of ``spacy train``.

Each item becomes a ``Doc`` whose words and trailing spaces rebuild the sentence text
exactly (runs of whitespace other than one space become whitespace tokens, as spaCy's own
tokenizer makes them) and whose ``doc.ents`` are the spans. The item id, meta, language
and span sources/confidences ride along in ``doc.user_data["labelbridge"]``, so a DocBin
written here reads back to the same items; DocBins from elsewhere read fine without it.

A doc with sentence boundaries (``spacy convert -n 10`` groups ten sentences per doc, as
spaCy recommends for training) reads as one item per sentence, with the id
``<doc id>:<sentence number>``; a doc without them (or with one sentence) stays one item
with the doc's id. An entity that crosses a sentence boundary keeps the sentences it
touches together in one item, with a warning in the ReadReport, so no entity is lost.

spaCy has no pipeline for many languages (``sw``, ``ha``, ``zu``: MasakhaNER's); a DocBin
needs only a vocab, so such a language code is written with the multi-language ``xx``
pipeline, a logged warning, and the requested language kept in the user_data.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Sequence

from core.data import Item, Sentence, SpanError, Token, make_span
from core.formats.base import FormatError, ReadReport, register_format

__all__ = ["read_docbin", "write_docbin"]

logger = logging.getLogger(__name__)

USER_DATA_KEY = "labelbridge"
MULTILINGUAL = "xx"
LANG_CODE = re.compile(r"[a-z]{2,3}")  # an ISO 639-1/3 code; anything else spaCy lacks is an error


def _words_spaces(sentence: Sentence) -> tuple[list[str], list[bool], list[int]]:
    """spaCy words and spaces for a sentence, and the doc index of each sentence token."""
    words: list[str] = []
    spaces: list[bool] = []
    index: list[int] = []

    def gap(g: str) -> None:
        if g.strip():
            raise SpanError(f"text {g!r} between tokens is not whitespace, which a spaCy Doc cannot represent")
        if g.startswith(" ") and words and not spaces[-1]:
            spaces[-1] = True
            g = g[1:]
        if g:
            words.append(g)
            spaces.append(False)

    pos = 0
    for tok in sentence.tokens:
        gap(sentence.text[pos:tok.start])
        index.append(len(words))
        words.append(tok.text)
        spaces.append(False)
        pos = tok.end
    gap(sentence.text[pos:])
    return words, spaces, index


def _lists(value: Any) -> Any:
    """spaCy reads user_data back with tuples for lists; give meta its JSON shape again."""
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _blank(lang: str, path: Path) -> tuple[Any, bool]:
    """``spacy.blank(lang)``, or the ``xx`` pipeline (and True) for a language code spaCy
    lacks: a DocBin needs only a vocab, and the words are already tokenized."""
    import spacy

    try:
        return spacy.blank(lang), False
    except (ImportError, ValueError, KeyError) as exc:
        if not LANG_CODE.fullmatch(lang):
            raise FormatError(path, None, f"spaCy has no language {lang!r}: {exc}") from None
    return spacy.blank(MULTILINGUAL), True


def write_docbin(items: Sequence[Item], path: Path, *, lang: str | None = None, side: str = "source") -> None:
    """Write a ``.spacy`` DocBin. ``lang`` picks ``spacy.blank(lang)`` (default: the first
    sentence language found, else ``xx``); ``side`` writes the source or target sentences."""
    from spacy.tokens import Doc, DocBin
    from spacy.tokens import Span as SpacySpan

    if side not in ("source", "target"):
        raise FormatError(path, None, f"side must be source or target, not {side!r}")
    pairs = []
    for item in items:
        sentence = item.source if side == "source" else item.target
        if sentence is None:
            raise FormatError(path, f"item {item.id!r}", "has no target sentence to write")
        pairs.append((item, sentence, item.source_spans if side == "source" else item.target_spans))
    lang = lang or next((s.lang for _, s, _ in pairs if s.lang), None) or MULTILINGUAL
    nlp, fallback = _blank(lang, path)
    if fallback:
        logger.warning(
            "spaCy has no language %r; writing the DocBin with the multi-language %r pipeline "
            "and keeping %r in each doc's user_data[%r]", lang, MULTILINGUAL, lang, USER_DATA_KEY,
        )
    db = DocBin(store_user_data=True)
    for item, sentence, spans in pairs:
        try:
            words, spaces, index = _words_spaces(sentence)
        except ValueError as exc:
            raise FormatError(path, f"item {item.id!r}", str(exc)) from None
        doc = Doc(nlp.vocab, words=words, spaces=spaces)
        doc.ents = [SpacySpan(doc, index[s.start], index[s.end - 1] + 1, label=s.label) for s in spans]
        extra = {
            "id": item.id,
            "lang": sentence.lang,
            "meta": item.meta if side == "source" else {},
            "image": item.image,
            "spans": [[s.source, s.confidence] for s in sorted(spans, key=lambda s: s.start)],
        }
        if fallback:
            extra["requested_lang"] = lang
        doc.user_data[USER_DATA_KEY] = extra
        db.add(doc)
    db.to_disk(path)


def _has_words(doc: Any, start: int, end: int) -> bool:
    return any(t.text.strip() for t in doc[start:end])


def _parts(doc: Any, path: Path, where: str, report: ReadReport) -> list[tuple[int, int, int]]:
    """The token ranges ``[start, end)`` a doc reads as, each with its first sentence's number.

    Without sentence boundaries the doc is one part. Sentences are parts of their own unless
    an entity crosses into the next one (they stay together, with a warning, rather than
    lose the entity) or one holds only whitespace (it joins its neighbour).
    """
    if len(doc) == 0 or not doc.has_annotation("SENT_START"):
        return [(0, len(doc), 1)]
    inside = {i: e for e in doc.ents for i in range(e.start + 1, e.end)}  # token -> the entity it continues
    sents = list(doc.sents)
    parts = [[sents[0].start, sents[0].end, 1]]
    for k, sent in enumerate(sents[1:], start=2):
        crossing = inside.get(sent.start)
        if crossing is not None:
            report.warn(
                path, where, f"entity {crossing.text!r} {crossing.label_} crosses from sentence {k - 1} into "
                f"sentence {k}; kept those sentences together as one item",
            )
        if crossing is not None or not _has_words(doc, sent.start, sent.end) or not _has_words(doc, *parts[-1][:2]):
            parts[-1][1] = sent.end
        else:
            parts.append([sent.start, sent.end, k])
    return [(start, end, k) for start, end, k in parts]


def read_docbin(path: Path, report: ReadReport, *, lang: str | None = None) -> list[Item]:
    """Read a ``.spacy`` DocBin with ``spacy.blank(lang or "xx")``'s vocab; ents become spans,
    and a doc with sentence boundaries becomes one item per sentence."""
    from spacy.tokens import DocBin

    nlp, _ = _blank(lang or MULTILINGUAL, path)
    try:
        docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    except Exception as exc:  # spaCy raises zlib, msgpack or ValueError errors for a foreign file
        raise FormatError(path, None, f"not a spaCy DocBin: {type(exc).__name__}: {exc}") from None
    if not docs:
        raise FormatError(path, None, "empty DocBin: no docs")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for n, doc in enumerate(docs, start=1):
        extra = _lists(doc.user_data.get(USER_DATA_KEY) or {})
        doc_id = str(extra.get("id") or f"{path.stem}:{n}")
        sources = extra.get("spans") or []
        if len(sources) != len(doc.ents):
            sources = [["gold", None]] * len(doc.ents)
        parts = _parts(doc, path, f"doc {n} (id {doc_id!r})", report)
        whole = len(parts) == 1
        for start, end, k in parts:
            item_id = doc_id if whole else f"{doc_id}:{k}"
            where = f"doc {n} (id {item_id!r})" if whole else f"doc {n} sentence {k} (id {item_id!r})"
            if item_id in seen:
                raise FormatError(path, where, f"id {item_id!r} is already used by doc {seen[item_id]}")
            seen[item_id] = n
            offset = 0 if whole else doc[start].idx
            text = doc.text if whole else doc.text[offset:doc[end - 1].idx + len(doc[end - 1].text)]
            tokens: list[Token] = []
            index: dict[int, int] = {}
            for t in doc[start:end]:
                if t.text.strip():
                    index[t.i] = len(tokens)
                    tokens.append(Token(t.text, t.idx - offset, t.idx - offset + len(t.text)))
            sentence = Sentence(text, tokens, extra.get("lang") or lang or extra.get("requested_lang"))
            spans = []
            for ent, (source, confidence) in zip(doc.ents, sources):
                if not start <= ent.start < end:
                    continue
                inside = [index[i] for i in range(ent.start, ent.end) if i in index]
                if not inside:
                    raise FormatError(path, where, f"entity {ent.text!r} {ent.label_} covers only whitespace")
                try:
                    spans.append(make_span(sentence, inside[0], inside[-1] + 1, ent.label_, source, confidence))
                except SpanError as exc:
                    raise FormatError(path, where, str(exc)) from None
            items.append(Item(item_id, sentence, spans, image=extra.get("image"), meta=dict(_lists(extra.get("meta") or {}))))
    return items


register_format("spacy", reader=read_docbin, writer=write_docbin, extensions=(".spacy",), images=True)
