"""CoNLL-2002/2003 column files: one token per line, a tag column, blank lines between sentences.

Reading keeps everything a byte-exact rewrite needs in ``item.meta["conll"]`` (only what
differs from the defaults: tab separator, tag in the last column, IOB2, one blank line
after each sentence): the separator, extra columns (POS, chunk, ...), the scheme, CRLF line
ends, and the ``# comment`` / ``-DOCSTART-`` lines and extra blank lines around each
sentence. The writer puts them back in place, so conll -> conll (and conll -> jsonl ->
conll) is exact.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from core.data import Item, Sentence, SpanError
from core.formats.base import FormatError, ReadReport, read_utf8, register_format
from core.tags import SCHEMES, TagError, detect_scheme, spans_to_tags, tags_to_spans

__all__ = ["read_conll", "write_conll"]

SEPARATORS = {"tab": "\t", "space": " "}
_TAG_LIKE = re.compile(r"^(O|[A-Z]-\S+)$")
_ID_COMMENT = re.compile(r"^(#\s*(?:sent_)?id\s*=\s*)(.*?)\s*$")
DOCSTART = "-DOCSTART-"


def _split(line: str, sep: str) -> list[str]:
    return [c.strip() for c in line.split("\t")] if sep == "\t" else line.split()


def _is_docstart(line: str) -> bool:
    return line.split(maxsplit=1)[0] == DOCSTART if line.strip() else False


def _row_like(cols: list[str], ncols: int | None, tag_column: int) -> bool:
    if len(cols) < 2 or (ncols is not None and len(cols) != ncols) or not -len(cols) <= tag_column < len(cols):
        return False
    return bool(_TAG_LIKE.match(cols[tag_column]))


class _Sentence:
    __slots__ = ("rows", "lines", "before", "blank_after")

    def __init__(self, before: list[str]):
        self.rows: list[list[str]] = []
        self.lines: list[int] = []  # 1-based line number of each row
        self.before = before
        self.blank_after = 0


def read_conll(
    path: Path,
    report: ReadReport,
    *,
    tag_column: int = -1,
    sep: str = "auto",
    scheme: str = "auto",
    skip_comments: bool = False,
    lang: str | None = None,
) -> list[Item]:
    """Read a CoNLL file. ``tag_column`` is 0-based (negative counts from the end; column 0
    is the token); ``sep`` is auto, tab or space; ``scheme`` is auto (detect_scheme over the
    whole file), IOB1, IOB2 or BIOES; ``skip_comments`` drops comments, -DOCSTART- lines and
    the file layout instead of keeping them in item.meta."""
    if scheme != "auto" and scheme not in SCHEMES:
        raise FormatError(path, None, f"unknown tag scheme {scheme!r}; expected auto, {', '.join(SCHEMES)}")
    if sep != "auto" and sep not in SEPARATORS:
        raise FormatError(path, None, f"unknown separator {sep!r}; expected auto, tab or space")
    text = read_utf8(path)
    final_newline = text.endswith("\n")
    lines = text.split("\n")
    if final_newline:
        lines.pop()
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")  # Windows line ends, kept on rewrite
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if sep == "auto":
        sep_char = "\t" if any("\t" in ln for ln in lines if not ln.startswith("#")) else " "
    else:
        sep_char = SEPARATORS[sep]

    sentences: list[_Sentence] = []
    pending: list[str] = []  # comment/docstart/blank lines waiting for the next sentence
    current: _Sentence | None = None
    ncols: int | None = None
    first_row_line = 0

    def finish() -> None:
        nonlocal current
        if current is not None:
            sentences.append(current)
            current = None

    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            if current is not None:
                current.blank_after = 1
                finish()
            elif sentences and not pending:
                sentences[-1].blank_after += 1
            else:
                pending.append(line)
            continue
        if _is_docstart(line):
            finish()
            pending.append(line)
            continue
        cols = _split(line, sep_char)
        if current is None and line.startswith("#") and not _row_like(cols, ncols, tag_column):
            pending.append(line)  # a comment; "#<sep>O" is the token "#"
            continue
        if ncols is None:
            ncols, first_row_line = len(cols), lineno
            if ncols < 2:
                what = "a tab" if sep_char == "\t" else "spaces"
                raise FormatError(path, lineno, f"line {lineno} has 1 column, expected a token and a tag separated by {what}")
            tag_index = tag_column if tag_column >= 0 else ncols + tag_column
            if not 0 < tag_index < ncols:
                raise FormatError(
                    path, lineno, f"tag column {tag_column} does not exist or is the token column (line {lineno} has {ncols} columns)"
                )
        elif len(cols) != ncols:
            k = len(cols)
            raise FormatError(
                path, lineno, f"line {lineno} has {k} column{'s' if k != 1 else ''}, expected {ncols} (as on line {first_row_line})"
            )
        if not cols[0]:
            raise FormatError(path, lineno, f"line {lineno} has an empty token")
        if current is None:
            current = _Sentence(pending)
            pending = []
        current.rows.append(cols)
        current.lines.append(lineno)
    finish()
    if not sentences:
        raise FormatError(path, None, "empty file: no sentences (token lines) found")
    assert ncols is not None
    tag_index = tag_column if tag_column >= 0 else ncols + tag_column

    if scheme == "auto":
        flat: list[str] = []
        for s in sentences:
            flat.extend(r[tag_index] for r in s.rows)
            flat.append("O")
        scheme = detect_scheme(flat)

    items: list[Item] = []
    seen: dict[str, int] = {}
    stem = path.stem
    for n, s in enumerate(sentences, start=1):
        words = [r[0] for r in s.rows]
        tags = [r[tag_index] for r in s.rows]
        try:
            sentence = Sentence.from_words(words, lang)
        except SpanError as exc:
            raise FormatError(path, s.lines[0], str(exc)) from None
        try:
            spans, issues = tags_to_spans(sentence, tags, scheme)
        except TagError as exc:
            pos = exc.position if exc.position is not None else 0
            raise FormatError(path, s.lines[pos], f"unknown tag {tags[pos]!r} for scheme {scheme}") from None
        for issue in issues:
            report.warn(path, s.lines[issue.position], issue.message)

        item_id = f"{stem}:{n}"
        for c in s.before:
            m = _ID_COMMENT.match(c)
            if m and m.group(2):
                item_id = m.group(2)
        if item_id in seen:
            raise FormatError(path, s.lines[0], f"sentence id {item_id!r} is already used by the sentence on line {seen[item_id]}")
        seen[item_id] = s.lines[0]

        meta: dict[str, Any] = {}
        if sep_char != "\t":
            meta["sep"] = sep_char
        if tag_index != ncols - 1:
            meta["tag_column"] = tag_index
        if ncols > 2:
            meta["columns"] = [[c for i, c in enumerate(r) if i not in (0, tag_index)] for r in s.rows]
        if scheme != "IOB2":
            meta["scheme"] = scheme
        if crlf:
            meta["newline"] = "\r\n"
        if not skip_comments:
            if s.before:
                meta["before"] = s.before
            if s.blank_after != 1:
                meta["blank_after"] = s.blank_after
            if n == len(sentences):
                if pending:
                    meta["trailing"] = pending
                if not final_newline:
                    meta["final_newline"] = False
        items.append(Item(item_id, sentence, spans, meta={"conll": meta} if meta else {}))
    return items


def _starts_with_docstart(item: Item, side: str) -> bool:
    before = (item.meta.get("conll", {}) or {}).get("before", []) if side == "source" else []
    return bool(before) and _is_docstart(before[0])


def write_conll(
    items: Sequence[Item],
    path: Path,
    *,
    scheme: str | None = None,
    sep: str | None = None,
    side: str = "source",
) -> None:
    """Write one token per line. ``scheme`` defaults to the scheme the item was read in
    (else IOB2); ``sep`` (tab or space) to the item's separator (else tab); ``side`` picks
    the source or the target sentence (the layout in meta belongs to the source)."""
    if scheme is not None and scheme not in SCHEMES:
        raise FormatError(path, None, f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if sep is not None and sep not in SEPARATORS:
        raise FormatError(path, None, f"unknown separator {sep!r}; expected tab or space")
    if side not in ("source", "target"):
        raise FormatError(path, None, f"side must be source or target, not {side!r}")
    out: list[str] = []
    last = len(items) - 1
    for k, item in enumerate(items):
        where = f"item {item.id!r}"
        if side == "source":
            sentence, spans = item.source, item.source_spans
            cm: dict[str, Any] = item.meta.get("conll", {}) or {}
        else:
            if item.target is None:
                raise FormatError(path, where, "has no target sentence to write")
            sentence, spans, cm = item.target, item.target_spans, {}
        if not sentence.tokens:
            raise FormatError(path, where, "has no tokens; CoNLL cannot represent an empty sentence")
        sep_char = SEPARATORS[sep] if sep else cm.get("sep", "\t")
        tags = spans_to_tags(len(sentence), spans, scheme or cm.get("scheme", "IOB2"))
        columns = cm.get("columns")
        if columns is not None and len(columns) != len(sentence):
            raise FormatError(
                path, where, f"meta conll.columns describe {len(columns)} tokens but the sentence has {len(sentence)}"
            )
        ncols = 2 + (len(columns[0]) if columns else 0)
        tag_index = cm.get("tag_column", ncols - 1)
        for line in cm.get("before", []):
            m = _ID_COMMENT.match(line)
            out.append(f"{m.group(1)}{item.id}" if m else line)
        for i, tok in enumerate(sentence.tokens):
            if sep_char in tok.text or "\n" in tok.text or (sep_char == " " and "\t" in tok.text):
                raise FormatError(path, where, f"token {i} {tok.text!r} contains the column separator or a newline")
            extra = iter(columns[i]) if columns else iter(())
            row = [tok.text if c == 0 else tags[i] if c == tag_index else next(extra) for c in range(ncols)]
            out.append(sep_char.join(row))
        blank = cm.get("blank_after", 1)
        if k < last and blank == 0 and not _starts_with_docstart(items[k + 1], side):
            blank = 1  # only a -DOCSTART- line may follow a sentence without a blank line
        out.extend([""] * blank)
        if k == last:
            out.extend(cm.get("trailing", []))
    first = (items[0].meta.get("conll", {}) or {}) if items and side == "source" else {}
    newline = first.get("newline", "\n")
    text = "".join(line + newline for line in out)
    if items and side == "source" and (items[-1].meta.get("conll", {}) or {}).get("final_newline") is False:
        text = text.removesuffix(newline)
    path.write_text(text, encoding="utf-8", newline="")


register_format(
    "conll",
    reader=read_conll,
    writer=write_conll,
    extensions=(".conll", ".conll02", ".conll03", ".iob", ".bio", ".txt"),
)
