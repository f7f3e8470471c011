"""Hugging Face ``datasets``: a ``save_to_disk`` folder, or one ``.parquet`` file.

Columns: ``id``, ``tokens``, ``ner_tags`` (a ``ClassLabel`` whose names are the IOB2 tags,
``O`` first, then ``B-``/``I-`` per label in sorted order, as token-classification
training scripts expect) and, only when some item has them: ``text`` (when the text is not
the tokens joined by single spaces), ``lang``, ``translation_tokens``,
``translation_ner_tags``, ``translation_text``, ``translation_lang``, ``alignment``,
``image`` and ``meta`` (JSON text, so conll layout survives conll -> hf -> conll).
Reading maps ClassLabel ints back to tag names and also accepts string tags.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

from core.data import Item, Link, Sentence, SpanError
from core.formats.base import FormatError, ReadReport, register_format, sentence_from_words
from core.tags import SCHEMES, TagError, detect_scheme, spans_to_tags, tags_to_spans

__all__ = ["read_hf", "write_hf", "iob2_tag_names"]


def iob2_tag_names(labels: Sequence[str]) -> list[str]:
    """``O`` then ``B-X``, ``I-X`` for each label X in sorted order."""
    return ["O"] + [f"{p}-{lb}" for lb in sorted(set(labels)) for p in "BI"]


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    import datasets

    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _needs_text(s: Sentence) -> bool:
    return s.text != " ".join(s.words) or Sentence.from_words(s.words).tokens != s.tokens


def write_hf(items: Sequence[Item], path: Path, *, labels: Sequence[str] | None = None) -> None:
    """Write a dataset folder, or a parquet file when the path ends in ``.parquet``.

    ``labels`` fixes the label set (and so the ClassLabel ids) across splits; by default
    it is the labels found in the items.
    """
    import datasets
    from datasets import ClassLabel, Features, List, Value

    found = {s.label for it in items for s in list(it.source_spans) + list(it.target_spans)}
    if labels is not None:
        missing = found - set(labels)
        if missing:
            bad = next(it for it in items if {s.label for s in list(it.source_spans) + list(it.target_spans)} & missing)
            raise FormatError(path, f"item {bad.id!r}", f"label(s) {', '.join(sorted(missing))} not in the given labels")
    names = iob2_tag_names(labels if labels is not None else sorted(found))
    index = {n: i for i, n in enumerate(names)}
    tag_feature = List(ClassLabel(names=names))

    def tag_ids(sentence: Sentence, spans: Sequence[Any]) -> list[int]:
        return [index[t] for t in spans_to_tags(len(sentence), spans, "IOB2")]

    features: dict[str, Any] = {"id": Value("string"), "tokens": List(Value("string")), "ner_tags": tag_feature}
    rows: dict[str, list[Any]] = {
        "id": [it.id for it in items],
        "tokens": [it.source.words for it in items],
        "ner_tags": [tag_ids(it.source, it.source_spans) for it in items],
    }
    targets = [it.target for it in items]

    def optional(name: str, feature: Any, values: list[Any]) -> None:
        if any(v is not None for v in values):
            features[name], rows[name] = feature, values

    optional("text", Value("string"), [it.source.text if _needs_text(it.source) else None for it in items])
    optional("lang", Value("string"), [it.source.lang for it in items])
    optional("translation_tokens", List(Value("string")), [t.words if t is not None else None for t in targets])
    optional("translation_ner_tags", tag_feature,
             [tag_ids(it.target, it.target_spans) if it.target is not None else None for it in items])
    optional("translation_text", Value("string"), [t.text if t is not None and _needs_text(t) else None for t in targets])
    optional("translation_lang", Value("string"), [t.lang if t is not None else None for t in targets])
    optional("alignment", List({"src": Value("int32"), "tgt": Value("int32"), "score": Value("float64")}),
             [[{"src": a.src, "tgt": a.tgt, "score": a.score} for a in it.alignment] if it.alignment else None for it in items])
    optional("image", Value("string"), [it.image for it in items])
    extra_names = list(dict.fromkeys(c for it in items for c in (it.meta.get(EXTRA_COLUMNS) or {}) if c not in KNOWN_COLUMNS))
    for col in extra_names:  # the columns a read dataset had beyond ours (pos_tags, ...), written back
        values = [(it.meta.get(EXTRA_COLUMNS) or {}).get(col) for it in items]
        optional(col, _feature_of(values), values)
    meta_json = []
    for it in items:
        meta = {k: v for k, v in it.meta.items() if k != EXTRA_COLUMNS} if extra_names else it.meta
        try:
            meta_json.append(json.dumps(meta, ensure_ascii=False, allow_nan=False) if meta else None)
        except (TypeError, ValueError) as exc:
            raise FormatError(path, f"item {it.id!r}", f"meta cannot be written as JSON: {exc}") from None
    optional("meta", Value("string"), meta_json)

    with _quiet_datasets():
        ds = datasets.Dataset.from_dict(rows, features=Features(features))
        if path.suffix.lower() == ".parquet":
            ds.to_parquet(str(path))
        else:
            ds.save_to_disk(str(path))


def _feature_of(values: list[Any]) -> Any:
    """The datasets feature of an extra column's values (None for a missing value)."""
    from datasets import List, Value

    def scalar(v: Any) -> str:
        return "bool" if isinstance(v, bool) else "int64" if isinstance(v, int) else "float64" if isinstance(v, float) else "string"

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, list) for v in present):
        inner = {scalar(x) for v in present for x in v}
        return List(Value(inner.pop() if len(inner) == 1 else "string"))
    kinds = {scalar(v) for v in present}
    return Value(kinds.pop() if len(kinds) == 1 else "string")


def _load(path: Path, split: str | None) -> tuple[list[dict[str, Any]], Any]:
    import datasets

    if path.is_dir():
        try:
            with _quiet_datasets():
                ds = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise FormatError(path, None, f"not a dataset saved with save_to_disk: {exc}") from None
        if isinstance(ds, datasets.DatasetDict):
            if split is None and len(ds) == 1:
                split = next(iter(ds))
            if split not in ds:
                raise FormatError(path, None, f"choose a split ({', '.join(ds)}), not {split!r}")
            ds = ds[split]
        elif split is not None:
            raise FormatError(path, None, f"has no splits; got split={split!r}")
        return ds.to_list(), ds.features
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(path, None, f"not a parquet file: {exc}") from None
    return table.to_pylist(), datasets.Features.from_arrow_schema(table.schema)


# The columns this format reads and writes; any other column is kept in meta[EXTRA_COLUMNS].
KNOWN_COLUMNS = frozenset({
    "id", "tokens", "ner_tags", "text", "lang", "translation_tokens", "translation_ner_tags", "translation_text",
    "translation_lang", "alignment", "image", "meta",
})  # fmt: skip
EXTRA_COLUMNS = "hf_columns"


def _tag_names(features: Any, column: str, path: Path) -> list[str] | None:
    """ClassLabel names of a tag column, or None when it holds strings."""
    from datasets import ClassLabel, Value

    feature = features[column]
    inner = getattr(feature, "feature", None)
    if isinstance(inner, ClassLabel):
        return list(inner.names)
    if isinstance(inner, Value) and inner.dtype in ("string", "large_string"):
        return None
    raise FormatError(path, None, f"column {column!r} must be a list of ClassLabel ids or of tag strings, found {feature}")


def _label_names(feature: Any) -> list[str] | None:
    """ClassLabel names of a column (or of its list elements), else None."""
    from datasets import ClassLabel

    inner = getattr(feature, "feature", feature)
    return list(inner.names) if isinstance(inner, ClassLabel) else None


def _named(value: Any, names: list[str] | None) -> Any:
    if names is None:
        return value
    if isinstance(value, list):
        return [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in value]
    return names[value] if isinstance(value, int) and 0 <= value < len(names) else value


def read_hf(
    path: Path,
    report: ReadReport,
    *,
    scheme: str = "auto",
    split: str | None = None,
    lang: str | None = None,
) -> list[Item]:
    """Read a dataset folder or parquet file; ``scheme`` is auto (detected), IOB1, IOB2 or BIOES."""
    if scheme != "auto" and scheme not in SCHEMES:
        raise FormatError(path, None, f"unknown tag scheme {scheme!r}; expected auto, {', '.join(SCHEMES)}")
    rows, features = _load(path, split)
    if not rows:
        raise FormatError(path, None, "empty dataset: no rows")
    for col in ("tokens", "ner_tags"):
        if col not in features:
            raise FormatError(path, None, f"has no {col!r} column (columns: {', '.join(features)})")
    names = {c: _tag_names(features, c, path) for c in ("ner_tags", "translation_ner_tags") if c in features}
    extras = {c: _label_names(features[c]) for c in features if c not in KNOWN_COLUMNS}
    if extras:
        report.warn(path, None, f"kept the column{'s' if len(extras) > 1 else ''} {', '.join(extras)} in each item's meta "
                    f"{EXTRA_COLUMNS!r} (ClassLabel ids as names); the hf writer writes {'them' if len(extras) > 1 else 'it'} back")  # fmt: skip

    def tags_of(row: dict[str, Any], col: str, where: str) -> list[str] | None:
        raw = row.get(col)
        if raw is None:
            return None
        col_names = names[col]
        if col_names is None:
            return list(raw)
        bad = [i for i in raw if not (isinstance(i, int) and 0 <= i < len(col_names))]
        if bad:
            raise FormatError(path, where, f"{col} holds id {bad[0]!r}, outside the {len(col_names)} ClassLabel names")
        return [col_names[i] for i in raw]

    tag_rows = []
    for i, row in enumerate(rows):
        where = f"row {i}"
        tag_rows.append((tags_of(row, "ner_tags", where), tags_of(row, "translation_ner_tags", where)))
    if scheme == "auto":
        flat: list[str] = []
        for src, tgt in tag_rows:
            for tags in (src, tgt):
                flat.extend((tags or []) + ["O"])
        scheme = detect_scheme(flat)

    items: list[Item] = []
    seen: dict[str, int] = {}
    for i, (row, (src_tags, tgt_tags)) in enumerate(zip(rows, tag_rows)):
        item_id = str(row["id"]) if row.get("id") not in (None, "") else f"{path.stem}:{i + 1}"
        where = f"row {i} (id {item_id!r})"
        if item_id in seen:
            raise FormatError(path, where, f"id {item_id!r} is already used by row {seen[item_id]}")
        seen[item_id] = i

        def sentence_spans(tokens: Any, text: Any, tags: list[str] | None, sent_lang: Any, side: str) -> tuple[Sentence, list[Any]]:
            try:
                sentence = sentence_from_words(text, list(tokens or []), sent_lang)
            except SpanError as exc:
                raise FormatError(path, where, f"{side}: {exc}") from None
            if tags is None:
                return sentence, []
            try:
                spans, issues = tags_to_spans(sentence, tags, scheme)
            except TagError as exc:
                raise FormatError(path, where, f"{side}: {exc}") from None
            for issue in issues:
                report.warn(path, where, f"{side}: {issue.message}")
            return sentence, spans

        source, source_spans = sentence_spans(row["tokens"], row.get("text"), src_tags, row.get("lang") or lang, "tokens")
        target, target_spans = None, []
        if row.get("translation_tokens") is not None:
            target, target_spans = sentence_spans(
                row["translation_tokens"], row.get("translation_text"), tgt_tags, row.get("translation_lang"), "translation"
            )
        alignment = [Link(a["src"], a["tgt"], a["score"]) for a in row.get("alignment") or []]
        try:
            meta = json.loads(row["meta"]) if row.get("meta") else {}
        except json.JSONDecodeError as exc:
            raise FormatError(path, where, f"meta is not JSON: {exc.msg}") from None
        if extras:
            meta = {**meta, EXTRA_COLUMNS: {c: _named(row.get(c), n) for c, n in extras.items()}}
        item = Item(item_id, source, source_spans, target, target_spans, row.get("image"), meta, alignment)
        try:
            item.validate()
        except SpanError as exc:
            raise FormatError(path, where, str(exc)) from None
        items.append(item)
    return items


register_format("hf", reader=read_hf, writer=write_hf, extensions=(".parquet",), folder=True, images=True)
