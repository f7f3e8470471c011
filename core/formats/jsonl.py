"""JSON Lines: one item per line, the full data model (the lossless exchange format).

A line is ``{"id", "text", "tokens": [{"text","start","end"}], "spans": [{"start","end",
"label","char_start","char_end","source","confidence"}], "translation": {"text","tokens",
"spans","lang"}, "alignment": [[src,tgt,score]], "image", "meta", "lang"}`` where span
``start``/``end`` are token indices. Reading also accepts hand-written minimal lines: only
``"text"`` (whitespace tokens), ``"tokens"`` as a list of strings, and spans given by
character offsets only (snapped outward to whole tokens, reported when that moved them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from core.data import Item, Link, Sentence, Span, SpanError, Token, check_spans, make_span, snap_char_span
from core.errors import LabelBridgeError
from core.formats.base import FormatError, Progress, ReadReport, iter_text_lines, register_format, sentence_from_words

__all__ = ["read_jsonl", "write_jsonl", "item_to_json", "item_from_json", "sentence_from_json", "spans_from_json"]

Warn = Callable[[str], None]


class JsonDataError(LabelBridgeError):
    """A JSON value that does not describe a sentence, span or item (the caller adds file and line)."""


def sentence_from_json(text: Any, tokens: Any, lang: str | None, what: str = "sentence") -> Sentence:
    """A sentence from ``text`` and/or ``tokens`` (strings, or dicts with text/start/end)."""
    if text is not None and not isinstance(text, str):
        raise JsonDataError(f"{what} \"text\" must be a string, not {type(text).__name__}")
    if tokens is None:
        if text is None:
            raise JsonDataError(f"{what} needs \"text\" or \"tokens\"")
        return Sentence.from_text(text, lang)
    if not isinstance(tokens, list):
        raise JsonDataError(f"{what} \"tokens\" must be a list")
    try:
        if all(isinstance(t, str) for t in tokens):
            return sentence_from_words(text, tokens, lang)
        if text is None:
            raise JsonDataError(f"{what} tokens with offsets need the \"text\" they point into")
        toks = []
        for i, t in enumerate(tokens):
            if not (isinstance(t, dict) and isinstance(t.get("text"), str) and _is_int(t.get("start")) and _is_int(t.get("end"))):
                raise JsonDataError(f"{what} token {i} must be a string or {{\"text\", \"start\", \"end\"}}, not {t!r}")
            toks.append(Token(t["text"], t["start"], t["end"]))
        sentence = Sentence(text, toks, lang)
        sentence.validate(what)
        return sentence
    except SpanError as exc:
        raise JsonDataError(f"{what} tokens do not match the text: {exc}") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _confidence(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not 0.0 <= v <= 1.0:
        raise JsonDataError(f"{what} confidence {v!r} is not a number in [0, 1]")
    return float(v)


def span_from_char_offsets(
    sentence: Sentence, char_start: Any, char_end: Any, label: str, source: str, confidence: float | None,
    what: str, warn: Warn,
) -> Span:
    """Snap character offsets outward to whole tokens; warn when that moved them."""
    if not (_is_int(char_start) and _is_int(char_end)):
        raise JsonDataError(f"{what} character offsets must be integers, not {char_start!r}, {char_end!r}")
    if not 0 <= char_start < char_end <= len(sentence.text):
        raise JsonDataError(
            f"{what} character offsets [{char_start}, {char_end}) are outside the text (length {len(sentence.text)})"
        )
    try:
        start, end = snap_char_span(sentence, char_start, char_end)
    except SpanError as exc:
        raise JsonDataError(f"{what}: {exc}") from None
    span = make_span(sentence, start, end, label, source, confidence)
    if (span.char_start, span.char_end) != (char_start, char_end):
        warn(
            f"{what} {label} [{char_start}, {char_end}) {sentence.text[char_start:char_end]!r} snapped to "
            f"token boundaries [{span.char_start}, {span.char_end}) {span.text(sentence)!r}"
        )
    return span


def spans_from_json(sentence: Sentence, raw: Any, what: str, warn: Warn) -> list[Span]:
    """Spans given by token offsets (``start``/``end``) or only by ``char_start``/``char_end``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise JsonDataError(f"{what} \"spans\" must be a list")
    spans: list[Span] = []
    for i, s in enumerate(raw):
        sw = f"{what} span {i}"
        if not isinstance(s, dict):
            raise JsonDataError(f"{sw} must be an object, not {s!r}")
        label = s.get("label")
        if not isinstance(label, str) or not label:
            raise JsonDataError(f"{sw} needs a non-empty \"label\"")
        source = s.get("source") or "gold"
        if not isinstance(source, str):
            raise JsonDataError(f"{sw} \"source\" must be a string")
        conf = _confidence(s.get("confidence"), sw)
        has_tok = "start" in s or "end" in s
        has_char = "char_start" in s or "char_end" in s
        if has_tok:
            if not (_is_int(s.get("start")) and _is_int(s.get("end"))):
                raise JsonDataError(f"{sw} token offsets must be integers, not {s.get('start')!r}, {s.get('end')!r}")
            try:
                span = make_span(sentence, s["start"], s["end"], label, source, conf)
            except SpanError as exc:
                raise JsonDataError(f"{sw}: {exc}") from None
            if has_char and (s.get("char_start"), s.get("char_end")) != (span.char_start, span.char_end):
                raise JsonDataError(
                    f"{sw} character offsets [{s.get('char_start')}, {s.get('char_end')}) do not match its tokens "
                    f"[{span.start}, {span.end}), which cover characters [{span.char_start}, {span.char_end})"
                )
        elif has_char:
            span = span_from_char_offsets(sentence, s.get("char_start"), s.get("char_end"), label, source, conf, sw, warn)
        else:
            raise JsonDataError(f"{sw} needs token offsets (start, end) or character offsets (char_start, char_end)")
        spans.append(span)
    try:
        return check_spans(sentence, spans, what)
    except SpanError as exc:
        raise JsonDataError(str(exc)) from None


def item_from_json(obj: Any, default_id: str, warn: Warn, lang: str | None = None) -> Item:
    if not isinstance(obj, dict):
        raise JsonDataError(f"an item must be a JSON object, not {type(obj).__name__}")
    item_id = obj.get("id", default_id)
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or item_id == "":
        raise JsonDataError(f"\"id\" must be a non-empty string, not {item_id!r}")
    item_id = str(item_id)
    src_lang = obj.get("lang", lang)
    source = sentence_from_json(obj.get("text"), obj.get("tokens"), src_lang, "source")
    source_spans = spans_from_json(source, obj.get("spans"), "source", warn)
    target, target_spans = None, []
    tr = obj.get("translation")
    if tr is not None:
        if isinstance(tr, str):
            tr = {"text": tr}
        if not isinstance(tr, dict):
            raise JsonDataError("\"translation\" must be an object or a string")
        target = sentence_from_json(tr.get("text"), tr.get("tokens"), tr.get("lang"), "translation")
        target_spans = spans_from_json(target, tr.get("spans"), "translation", warn)
    alignment = []
    for ln in obj.get("alignment") or []:
        if not (isinstance(ln, list) and len(ln) in (2, 3) and _is_int(ln[0]) and _is_int(ln[1])
                and (len(ln) == 2 or isinstance(ln[2], (int, float)))):
            raise JsonDataError(f"alignment link {ln!r} must be [source token, target token] or [src, tgt, score]")
        alignment.append(Link(ln[0], ln[1], float(ln[2]) if len(ln) == 3 else 1.0))
    image = obj.get("image")
    if image is not None and not isinstance(image, str):
        raise JsonDataError("\"image\" must be a string (path, URL or hash)")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise JsonDataError("\"meta\" must be an object")
    item = Item(item_id, source, source_spans, target, target_spans, image, meta, alignment)
    try:
        item.validate()
    except SpanError as exc:
        raise JsonDataError(str(exc)) from None
    return item


def _tokens_json(s: Sentence) -> list[dict[str, Any]]:
    return [{"text": t.text, "start": t.start, "end": t.end} for t in s.tokens]


def _spans_json(spans: Sequence[Span]) -> list[dict[str, Any]]:
    return [
        {"start": s.start, "end": s.end, "label": s.label, "char_start": s.char_start, "char_end": s.char_end,
         "source": s.source, "confidence": s.confidence}
        for s in spans
    ]


def item_to_json(item: Item) -> dict[str, Any]:
    """The full JSON object of an item (optional keys left out when empty)."""
    d: dict[str, Any] = {
        "id": item.id,
        "text": item.source.text,
        "tokens": _tokens_json(item.source),
        "spans": _spans_json(item.source_spans),
    }
    if item.target is not None:
        tr: dict[str, Any] = {"text": item.target.text, "tokens": _tokens_json(item.target), "spans": _spans_json(item.target_spans)}
        if item.target.lang:
            tr["lang"] = item.target.lang
        d["translation"] = tr
    if item.alignment:
        d["alignment"] = [[ln.src, ln.tgt, ln.score] for ln in item.alignment]
    if item.image is not None:
        d["image"] = item.image
    if item.meta:
        d["meta"] = item.meta
    if item.source.lang:
        d["lang"] = item.source.lang
    return d


def read_jsonl(
    path: Path, report: ReadReport, *, lang: str | None = None, progress: Progress | None = None
) -> Iterator[Item]:
    """Read one item per non-blank line, as they are read (bounded memory); ``lang`` is the
    source language of lines without one. Text encoded twice is reported, not repaired:
    repairing would move the character offsets of the spans."""
    count = 0
    seen: dict[str, int] = {}
    for lineno, line in iter_text_lines(path, report, progress=progress, offsets=True):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(path, lineno, f"bad JSON: {exc.msg} (column {exc.colno})") from None
        try:
            item = item_from_json(obj, f"{path.stem}:{count + 1}", lambda m, n=lineno: report.warn(path, n, m), lang)
        except JsonDataError as exc:
            raise FormatError(path, lineno, str(exc)) from None
        if item.id in seen:
            raise FormatError(path, lineno, f"id {item.id!r} is already used on line {seen[item.id]}")
        seen[item.id] = lineno
        count += 1
        yield item
    if not count:
        raise FormatError(path, None, "empty file: no items")


def write_jsonl(items: Iterable[Item], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for item in items:
            f.write(dump_json(item_to_json(item), path, f"item {item.id!r}") + "\n")


def dump_json(obj: Any, path: Path, where: str, **kwargs: Any) -> str:
    """Strict JSON (no NaN); a value JSON cannot hold is a FormatError naming the item."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, **kwargs)
    except (TypeError, ValueError) as exc:
        raise FormatError(path, where, f"cannot be written as JSON: {exc}") from None


register_format("jsonl", reader=read_jsonl, writer=write_jsonl, extensions=(".jsonl",), translations=True, images=True, streams=True)
