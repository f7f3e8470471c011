"""Label Studio JSON: a list of tasks, NER regions as ``labels`` results with character offsets.

Task layout (Label Studio "Basic JSON" import, see labelstud.io/guide/predictions):
``{"data": {"id", "text", "translation"?, "image"?, ...}, "annotations": [{"result": [...]}]}``
or ``"predictions": [{"model_version", "score", "result": [...]}]``; a result is
``{"id", "from_name": "label", "to_name": "text", "type": "labels",
"value": {"start", "end", "text", "labels": [LABEL], "score"?}}`` (``label_translation`` /
``translation`` for spans on the translation). Gold and human spans are exported as an
annotation, model spans (teacher, projection, student) as one prediction whose
``model_version`` is their source. Character spans are snapped to tokens on import:
whitespace tokens, or ``data["tokens"]`` when present (exported when whitespace
tokenization would not reproduce the tokens); every snap that moved a span is reported.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Sequence

from core.data import Item, Sentence, Span, SpanError, check_spans, tokenize_whitespace
from core.formats.base import FormatError, ReadReport, read_utf8, register_format
from core.formats.jsonl import JsonDataError, dump_json, sentence_from_json, span_from_char_offsets

__all__ = ["read_labelstudio", "write_labelstudio", "labelstudio_config", "item_to_task"]

SOURCE_TEXT, TARGET_TEXT = "text", "translation"
FROM_NAME = {SOURCE_TEXT: "label", TARGET_TEXT: "label_translation"}
_ID_PREFIX = {SOURCE_TEXT: "s", TARGET_TEXT: "t"}  # result ids must be unique within a task


def labelstudio_config(labels: Sequence[str], *, translation: bool = False, image: bool = False) -> str:
    """The labeling config XML that matches the tasks ``write_labelstudio`` exports."""
    opts = "".join(f'    <Label value="{escape(lb, quote=True)}"/>\n' for lb in sorted(set(labels)))
    parts = ["<View>\n"]
    if image:
        parts.append('  <Image name="image" value="$image"/>\n')
    parts.append(f'  <Labels name="label" toName="text">\n{opts}  </Labels>\n')
    parts.append('  <Text name="text" value="$text" granularity="word"/>\n')
    if translation:
        parts.append(f'  <Labels name="label_translation" toName="translation">\n{opts}  </Labels>\n')
        parts.append('  <Text name="translation" value="$translation" granularity="word"/>\n')
    parts.append("</View>\n")
    return "".join(parts)


def _is_human(source: str) -> bool:
    return source == "gold" or source.startswith("human")


def _needs_tokens(s: Sentence) -> bool:
    return tokenize_whitespace(s.text) != s.tokens


def _results(sentence: Sentence, spans: Sequence[Span], to_name: str, with_score: bool) -> list[dict[str, Any]]:
    out = []
    for i, s in enumerate(spans):
        value: dict[str, Any] = {"start": s.char_start, "end": s.char_end, "text": s.text(sentence), "labels": [s.label]}
        if with_score and s.confidence is not None:
            value["score"] = s.confidence
        out.append({"id": f"{_ID_PREFIX[to_name]}{i}", "from_name": FROM_NAME[to_name], "to_name": to_name, "type": "labels", "value": value})
    return out


def item_to_task(item: Item) -> dict[str, Any]:
    """One Label Studio task for an item."""
    data: dict[str, Any] = {"id": item.id, "text": item.source.text}
    if _needs_tokens(item.source):
        data["tokens"] = [{"text": t.text, "start": t.start, "end": t.end} for t in item.source.tokens]
    if item.source.lang:
        data["lang"] = item.source.lang
    if item.target is not None:
        data["translation"] = item.target.text
        if _needs_tokens(item.target):
            data["translation_tokens"] = [{"text": t.text, "start": t.start, "end": t.end} for t in item.target.tokens]
        if item.target.lang:
            data["translation_lang"] = item.target.lang
    if item.image is not None:
        data["image"] = item.image
    if item.meta:
        data["meta"] = item.meta
    task: dict[str, Any] = {"data": data}
    all_spans = list(item.source_spans) + list(item.target_spans)
    if not all_spans:
        return task
    human = all(_is_human(s.source) for s in all_spans)
    result = _results(item.source, item.source_spans, SOURCE_TEXT, not human)
    if item.target is not None:
        result += _results(item.target, item.target_spans, TARGET_TEXT, not human)
    if human:
        task["annotations"] = [{"result": result}]
    else:
        prediction: dict[str, Any] = {"model_version": "+".join(sorted({s.source for s in all_spans})), "result": result}
        scores = [s.confidence for s in all_spans if s.confidence is not None]
        if scores:
            prediction["score"] = sum(scores) / len(scores)
        task["predictions"] = [prediction]
    return task


def write_labelstudio(items: Sequence[Item], path: Path) -> None:
    """A JSON list of tasks that Label Studio imports (use ``labelstudio_config`` for the project)."""
    tasks = [item_to_task(item) for item in items]
    path.write_text(dump_json(tasks, path, "tasks", indent=2) + "\n", encoding="utf-8")


def _same_text(a: str, b: str) -> bool:
    # Label Studio may trim or re-space the stored region text; offsets are authoritative.
    return " ".join(a.split()) == " ".join(b.split())


def _choose_result(task: dict[str, Any], warn: Any) -> tuple[list[Any], str | None]:
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    predictions = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
    if annotations:
        if len(annotations) > 1:
            warn(f"{len(annotations)} annotations; used the last one")
        chosen = annotations[-1]
        user = chosen.get("completed_by")
        if isinstance(user, dict):
            user = user.get("email") or user.get("id")
        source = f"human:{user}" if user not in (None, "") else "gold"
    elif predictions:
        chosen = max(predictions, key=lambda p: p.get("score") if isinstance(p.get("score"), (int, float)) else float("-inf"))
        if len(predictions) > 1:
            warn(f"{len(predictions)} predictions; used the one of model {chosen.get('model_version')!r} (highest score)")
        source = str(chosen.get("model_version") or "prediction")
    else:
        return [], None
    result = chosen.get("result") or []
    if not isinstance(result, list):
        raise JsonDataError("\"result\" must be a list")
    return result, source


def _task_item(task: Any, n: int, stem: str, lang: str | None, warn: Any) -> Item:
    if not isinstance(task, dict):
        raise JsonDataError(f"a task must be a JSON object, not {type(task).__name__}")
    data = task.get("data", task)
    if not isinstance(data, dict):
        raise JsonDataError("\"data\" must be an object")
    if not isinstance(data.get("text"), str):
        raise JsonDataError("data has no \"text\" string")
    raw_id = data.get("id", task.get("id") if "data" in task else None)
    item_id = str(raw_id) if raw_id not in (None, "") else f"{stem}:{n}"
    source = sentence_from_json(data["text"], data.get("tokens"), data.get("lang", lang), "text")
    target = None
    if data.get("translation") is not None:
        target = sentence_from_json(data["translation"], data.get("translation_tokens"), data.get("translation_lang"), "translation")
    result, source_name = _choose_result(task, warn)
    spans: dict[str, list[Span]] = {SOURCE_TEXT: [], TARGET_TEXT: []}
    for k, r in enumerate(result):
        if not isinstance(r, dict) or r.get("type") != "labels":
            continue  # other controls (choices, textarea, ...) are not spans
        to_name = r.get("to_name")
        sentence = source if to_name == SOURCE_TEXT else target if to_name == TARGET_TEXT else None
        if sentence is None:
            warn(f"result {k} labels {to_name!r}, which is not \"text\" or \"translation\"; skipped")
            continue
        value = r.get("value")
        if not isinstance(value, dict):
            raise JsonDataError(f"result {k} has no \"value\" object")
        labels = value.get("labels")
        if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], str) and labels[0]):
            raise JsonDataError(f"result {k} must have exactly one label in value.labels, not {labels!r}")
        start, end = value.get("start"), value.get("end")
        what = f"result {k} ({to_name})"
        span_text = value.get("text")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(sentence.text):
            if isinstance(span_text, str) and not _same_text(span_text, sentence.text[start:end]):
                raise JsonDataError(
                    f"{what} value.text {span_text!r} does not match the task text at [{start}, {end}): "
                    f"{sentence.text[start:end]!r}"
                )
        confidence = value.get("score")
        if confidence is not None and not (isinstance(confidence, (int, float)) and 0.0 <= confidence <= 1.0):
            warn(f"{what} score {confidence!r} is not in [0, 1]; dropped")
            confidence = None
        span = span_from_char_offsets(
            sentence, start, end, labels[0], source_name or "gold",
            float(confidence) if confidence is not None else None, what, warn,
        )
        spans[to_name].append(span)
    try:
        source_spans = check_spans(source, spans[SOURCE_TEXT], "text")
        target_spans = check_spans(target, spans[TARGET_TEXT], "translation") if target is not None else []
    except SpanError as exc:
        raise JsonDataError(str(exc)) from None
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise JsonDataError("data.meta must be an object")
    image = data.get("image")
    return Item(item_id, source, source_spans, target, target_spans, image if isinstance(image, str) else None, meta)


def read_labelstudio(path: Path, report: ReadReport, *, lang: str | None = None) -> list[Item]:
    """Read Label Studio tasks (a list, or one task object); ``lang`` is the source language."""
    try:
        tasks = json.loads(read_utf8(path))
    except json.JSONDecodeError as exc:
        raise FormatError(path, exc.lineno, f"bad JSON: {exc.msg} (column {exc.colno})") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise FormatError(path, None, "expected a JSON list of Label Studio tasks")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for n, task in enumerate(tasks, start=1):
        where = f"task {n}"
        try:
            item = _task_item(task, n, path.stem, lang, lambda m, w=where: report.warn(path, w, m))
        except JsonDataError as exc:
            raise FormatError(path, where, str(exc)) from None
        if item.id in seen:
            raise FormatError(path, where, f"id {item.id!r} is already used by task {seen[item.id]}")
        seen[item.id] = n
        items.append(item)
    if not items:
        raise FormatError(path, None, "empty file: no tasks")
    return items


register_format("labelstudio", reader=read_labelstudio, writer=write_labelstudio, extensions=(".json",), translations=True)
