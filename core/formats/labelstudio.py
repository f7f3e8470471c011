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


def _results(sentence: Sentence, spans: Sequence[Span], to_name: str, with_score: bool, first: int = 0) -> list[dict[str, Any]]:
    out = []
    for i, s in enumerate(spans, start=first):
        value: dict[str, Any] = {"start": s.char_start, "end": s.char_end, "text": s.text(sentence), "labels": [s.label]}
        if with_score and s.confidence is not None:
            value["score"] = s.confidence
        out.append({"id": f"{_ID_PREFIX[to_name]}{i}", "from_name": FROM_NAME[to_name], "to_name": to_name, "type": "labels", "value": value})
    return out


def item_to_task(item: Item, task_id: int | None = None) -> dict[str, Any]:
    """One Label Studio task for an item.

    Gold and human spans (and every side ``item.labelled_by`` names) are the task's one
    annotation, ``[{"result": []}]`` for a reviewed item without entities, so Label Studio
    shows it as labelled; machine spans are predictions, one per model (its source). The
    task's top-level ``id`` is ``task_id`` (Label Studio and its converter key tasks by it);
    our item id stays in ``data.id``.
    """
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
    task: dict[str, Any] = {"id": task_id} if task_id is not None else {}
    task["data"] = data
    sides = [(SOURCE_TEXT, "source", item.source, item.source_spans)]
    if item.target is not None:
        sides.append((TARGET_TEXT, "target", item.target, item.target_spans))
    annotation: list[dict[str, Any]] = []
    deciders: dict[str, str] = {}  # side -> who decided its labels
    by_model: dict[str, list[dict[str, Any]]] = {}
    model_scores: dict[str, list[float]] = {}
    for to_name, side, sentence, spans in sides:
        decided = item.labelled_by.get(side)
        human = [s for s in spans if decided is not None or _is_human(s.source)]
        machine = [s for s in spans if decided is None and not _is_human(s.source)]
        if decided is not None or human:
            deciders[side] = decided or ("gold" if all(s.source == "gold" for s in human) else human[0].source)
            annotation += _results(sentence, human, to_name, False, len(annotation))
        for s in machine:
            n = len(by_model.get(s.source, []))
            by_model.setdefault(s.source, []).extend(_results(sentence, [s], to_name, True, n))
            if s.confidence is not None:
                model_scores.setdefault(s.source, []).append(s.confidence)
    if deciders:
        entry: dict[str, Any] = {"result": annotation}
        if set(deciders.values()) == {"gold"}:
            entry["ground_truth"] = True
        data["labelled_by"] = deciders
        task["annotations"] = [entry]
    if by_model:
        task["predictions"] = []
        for model, result in sorted(by_model.items()):
            prediction: dict[str, Any] = {"model_version": model, "result": result}
            if model in model_scores:
                prediction["score"] = sum(model_scores[model]) / len(model_scores[model])
            task["predictions"].append(prediction)
    return task


def write_labelstudio(items: Sequence[Item], path: Path, *, labels: Sequence[str] | None = None) -> None:
    """A JSON list of tasks that Label Studio imports; ``write`` puts the labeling config
    that shows them beside it (``<stem>.config.xml``: paste it into the project settings). ``labels``: the label set
    the config offers (default: the labels the items use)."""
    tasks = [item_to_task(item, n) for n, item in enumerate(items, start=1)]
    path.write_text(dump_json(tasks, path, "tasks", indent=2) + "\n", encoding="utf-8")


def labelstudio_companions(items: Sequence[Item], *, labels: Sequence[str] | None = None) -> dict[str, str]:
    """The labeling config for exported tasks, by suffix (see core.formats.write)."""
    labels = set(labels or ()) | {s.label for it in items for s in list(it.source_spans) + list(it.target_spans)}
    translation = any(it.target is not None for it in items)
    return {".config.xml": labelstudio_config(sorted(labels), translation=translation, image=any(it.image for it in items))}


def _same_text(a: str, b: str) -> bool:
    # Label Studio may trim or re-space the stored region text; offsets are authoritative.
    return " ".join(a.split()) == " ".join(b.split())


_RESULT_LISTS = ("annotations", "completions", "predictions")


def _listed(task: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = task.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        raise JsonDataError(f"\"{key}\" must be a list of objects")
    for k, a in enumerate(value):
        if not isinstance(a.get("result", []), list):
            raise JsonDataError(f"{key}[{k}].result must be a list")
    return value


def _newest(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest entry by ``created_at`` (as label-studio-converter picks), else the last."""
    dated = [(str(a.get("created_at") or ""), k) for k, a in enumerate(entries)]
    return entries[max(dated)[1]]


_SIDE = {SOURCE_TEXT: "source", TARGET_TEXT: "target"}


def _choose_results(task: dict[str, Any], data: dict[str, Any], warn: Any) -> tuple[list[tuple[Any, str]], dict[str, str]]:
    """The regions to read, each with its span source, and the sides a person decided.

    A task's labels are its newest annotation that was not skipped (``annotations``, or
    ``completions`` in exports before Label Studio 1.0), an empty one meaning "no
    entities"; a side no annotation decided takes the regions of its best-scored
    prediction. ``data.labelled_by`` ({side: source}, written by LabelBridge) names the
    sides the annotation decided and who decided them; without it an annotation decides
    every side (Label Studio's meaning)."""
    annotations = _listed(task, "annotations") + _listed(task, "completions")
    predictions = _listed(task, "predictions")
    regions: list[tuple[Any, str]] = []
    decided: dict[str, str] = {}  # to_name -> source
    done = [a for a in annotations if not (a.get("was_cancelled") or a.get("skipped"))]
    if done:
        if len(done) > 1:
            warn(f"{len(done)} annotations; used the newest")
        chosen = _newest(done)
        recorded = data.get("labelled_by")
        if isinstance(recorded, dict):
            for to_name, side in _SIDE.items():
                if isinstance(recorded.get(side), str) and recorded[side]:
                    decided[to_name] = recorded[side]
        else:
            user = chosen.get("completed_by")
            if isinstance(user, dict):
                user = user.get("email") or user.get("username") or user.get("id")
            who = "gold" if chosen.get("ground_truth") is True or user in (None, "") else f"human:{user}"
            decided = {to_name: who for to_name in _SIDE}
        regions += [(r, decided.get(r.get("to_name") if isinstance(r, dict) else None, "")) for r in chosen.get("result") or []]
        regions = [(r, src) for r, src in regions if src or not (isinstance(r, dict) and r.get("to_name") in _SIDE)]
    for to_name in _SIDE:
        if to_name in decided:
            continue
        on_side = [p for p in predictions if any(isinstance(r, dict) and r.get("to_name") == to_name for r in p.get("result") or [])]
        if not on_side:
            continue
        best = max(on_side, key=lambda p: p.get("score") if isinstance(p.get("score"), (int, float)) else float("-inf"))
        if len(on_side) > 1:
            warn(f"{len(on_side)} predictions; used the one of model {best.get('model_version')!r} (highest score)")
        model = str(best.get("model_version") or "prediction")
        regions += [(r, model) for r in best.get("result") or [] if isinstance(r, dict) and r.get("to_name") == to_name]
    unknown = [p for p in predictions if any(isinstance(r, dict) and r.get("to_name") not in _SIDE for r in p.get("result") or [])]
    if unknown and not done:
        regions += [(r, "") for r in unknown[0].get("result") or [] if isinstance(r, dict) and r.get("to_name") not in _SIDE]
    return regions, decided


def _min_result(task: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Regions of Label Studio's JSON-MIN export (``{"text", "label": [{start, end, labels}]}``,
    the regions under each labels control's name) as full results, or None."""
    found: list[dict[str, Any]] = []
    for key, to_name in ((FROM_NAME[SOURCE_TEXT], SOURCE_TEXT), (FROM_NAME[TARGET_TEXT], TARGET_TEXT)):
        regions = task.get(key)
        if regions is None:
            continue
        if not isinstance(regions, list) or not all(isinstance(r, dict) and "labels" in r for r in regions):
            raise JsonDataError(f"\"{key}\" must be a list of regions with start, end and labels (JSON-MIN layout)")
        found += [{"type": "labels", "to_name": to_name, "value": r} for r in regions]
    return found if found or any(k in task for k in FROM_NAME.values()) else None


def _task_item(task: Any, n: int, stem: str, lang: str | None, warn: Any) -> Item:
    if not isinstance(task, dict):
        raise JsonDataError(f"a task must be a JSON object, not {type(task).__name__}")
    if "result" in task and "data" not in task:
        raise JsonDataError("this is one annotation, not a task: expected {\"data\": {...}, \"annotations\": [...]}")
    data = task.get("data", task)
    if not isinstance(data, dict):
        raise JsonDataError("\"data\" must be an object")
    if not isinstance(data.get("text"), str):
        keys = ", ".join(sorted(map(str, data))) or "none"
        raise JsonDataError(f"unknown task layout: no \"text\" string in {'data' if 'data' in task else 'the task'} (keys: {keys}); "
                            "the labeling config must use <Text name=\"text\" value=\"$text\"/>")
    raw_id = data.get("id", task.get("id") if "data" in task else None)
    item_id = str(raw_id) if raw_id not in (None, "") else f"{stem}:{n}"
    source = sentence_from_json(data["text"], data.get("tokens"), data.get("lang", lang), "text")
    target = None
    if data.get("translation") is not None:
        target = sentence_from_json(data["translation"], data.get("translation_tokens"), data.get("translation_lang"), "translation")
    if "data" in task:
        regions, decided = _choose_results(task, data, warn)
    elif any(k in task for k in _RESULT_LISTS):
        raise JsonDataError("annotations or predictions without \"data\": unknown task layout")
    else:  # a plain task, or Label Studio's JSON-MIN export
        found = _min_result(task)
        annotator = task.get("annotator")
        who = f"human:{annotator}" if annotator not in (None, "") else "gold"
        regions = [(r, who) for r in found or []]
        decided = {to_name: who for to_name in _SIDE} if found is not None or "annotation_id" in task else {}
    spans: dict[str, list[Span]] = {SOURCE_TEXT: [], TARGET_TEXT: []}
    for k, (r, source_name) in enumerate(regions):
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
    labelled_by = {_SIDE[to_name]: who for to_name, who in decided.items() if to_name == SOURCE_TEXT or target is not None}
    item = Item(item_id, source, source_spans, target, target_spans, image if isinstance(image, str) else None, meta)
    return item.with_(labelled_by=labelled_by) if labelled_by else item


def read_labelstudio(path: Path, report: ReadReport, *, lang: str | None = None) -> list[Item]:
    """Read Label Studio tasks (a list, or one task object); ``lang`` is the source language."""
    try:
        tasks = json.loads(read_utf8(path, report, offsets=True))  # mojibake is reported (offsets forbid repair)
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


register_format(
    "labelstudio", reader=read_labelstudio, writer=write_labelstudio, extensions=(".json",), translations=True, images=True,
    companions=labelstudio_companions,
)
