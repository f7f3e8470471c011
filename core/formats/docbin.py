"""spaCy ``DocBin`` (``.spacy``): the training-data format of ``spacy train``.

Each item becomes a ``Doc`` whose words and trailing spaces rebuild the sentence text
exactly (runs of whitespace other than one space become whitespace tokens, as spaCy's own
tokenizer makes them) and whose ``doc.ents`` are the spans. The item id, meta, language
and span sources/confidences ride along in ``doc.user_data["labelbridge"]``, so a DocBin
written here reads back to the same items; DocBins from elsewhere read fine without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from core.data import Item, Sentence, SpanError, Token, make_span
from core.formats.base import FormatError, ReadReport, register_format

__all__ = ["read_docbin", "write_docbin"]

USER_DATA_KEY = "labelbridge"


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


def _blank(lang: str, path: Path) -> Any:
    import spacy

    try:
        return spacy.blank(lang)
    except (ImportError, ValueError, KeyError) as exc:
        raise FormatError(path, None, f"spaCy has no language {lang!r}: {exc}") from None


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
    lang = lang or next((s.lang for _, s, _ in pairs if s.lang), None) or "xx"
    nlp = _blank(lang, path)
    db = DocBin(store_user_data=True)
    for item, sentence, spans in pairs:
        try:
            words, spaces, index = _words_spaces(sentence)
        except ValueError as exc:
            raise FormatError(path, f"item {item.id!r}", str(exc)) from None
        doc = Doc(nlp.vocab, words=words, spaces=spaces)
        doc.ents = [SpacySpan(doc, index[s.start], index[s.end - 1] + 1, label=s.label) for s in spans]
        doc.user_data[USER_DATA_KEY] = {
            "id": item.id,
            "lang": sentence.lang,
            "meta": item.meta if side == "source" else {},
            "image": item.image,
            "spans": [[s.source, s.confidence] for s in sorted(spans, key=lambda s: s.start)],
        }
        db.add(doc)
    db.to_disk(path)


def read_docbin(path: Path, report: ReadReport, *, lang: str | None = None) -> list[Item]:
    """Read a ``.spacy`` DocBin with ``spacy.blank(lang or "xx")``'s vocab; ents become spans."""
    from spacy.tokens import DocBin

    nlp = _blank(lang or "xx", path)
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
        item_id = str(extra.get("id") or f"{path.stem}:{n}")
        where = f"doc {n} (id {item_id!r})"
        if item_id in seen:
            raise FormatError(path, where, f"id {item_id!r} is already used by doc {seen[item_id]}")
        seen[item_id] = n
        tokens: list[Token] = []
        index: dict[int, int] = {}
        for t in doc:
            if t.text.strip():
                index[t.i] = len(tokens)
                tokens.append(Token(t.text, t.idx, t.idx + len(t.text)))
        sentence = Sentence(doc.text, tokens, extra.get("lang") or lang)
        sources = extra.get("spans") or []
        if len(sources) != len(doc.ents):
            sources = [["gold", None]] * len(doc.ents)
        spans = []
        for ent, (source, confidence) in zip(doc.ents, sources):
            inside = [index[i] for i in range(ent.start, ent.end) if i in index]
            if not inside:
                raise FormatError(path, where, f"entity {ent.text!r} {ent.label_} covers only whitespace")
            try:
                spans.append(make_span(sentence, inside[0], inside[-1] + 1, ent.label_, source, confidence))
            except SpanError as exc:
                raise FormatError(path, where, str(exc)) from None
        items.append(Item(item_id, sentence, spans, image=extra.get("image"), meta=dict(extra.get("meta") or {})))
    return items


register_format("spacy", reader=read_docbin, writer=write_docbin, extensions=(".spacy",))
