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
from typing import Any, Iterable, Iterator

from core.data import Item, Sentence, SpanError
from core.formats.base import FormatError, Progress, ReadReport, iter_text_lines, register_format
from core.metrics import WRITTEN_TAGS
from core.tags import SCHEMES, SchemeDetector, TagError, spans_to_tags, tags_to_spans

__all__ = ["read_conll", "write_conll"]

SEPARATORS = {"tab": "\t", "space": " "}
_TAG_LIKE = re.compile(r"^(O|[A-Z]-\S+)$")
_ID_COMMENT = re.compile(r"^(#\s*(?:sent_)?id\s*=\s*)(.*?)\s*$")
DOCSTART = "-DOCSTART-"
# Twitter-2015/2017 multimodal NER: an ``IMGID:<id>`` line before each sentence names its
# picture, ``<id>.jpg`` in the corpus's image folder (matched on import, core.transfer).
_IMGID = re.compile(r"^IMGID:(\S+)\s*$")


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


def _scan(path: Path) -> tuple[bool, bool, bool]:
    """One cheap pass over the bytes: (a tab in a non-comment line, Windows line ends
    throughout, the file ends with a newline)."""
    tab = False
    lines = crlf = 0
    last = b""
    with path.open("rb") as f:
        for raw in f:
            lines += 1
            crlf += raw.endswith(b"\r\n")
            if not tab and b"\t" in raw and not raw.startswith(b"#"):
                tab = True
            last = raw
    return tab, lines > 0 and crlf == lines - (0 if last.endswith(b"\n") else 1) and crlf > 0, last.endswith(b"\n")


def _sentences(
    path: Path, lines: Iterable[tuple[int, str]], sep_char: str, tag_column: int, trailing: list[str]
) -> Iterator[tuple[_Sentence, int, int]]:
    """Each sentence of the file with (number of columns, tag column index), as read; the
    lines after the last sentence are left in ``trailing``."""
    pending: list[str] = []  # comment/docstart/blank lines waiting for the next sentence
    current: _Sentence | None = None
    previous: _Sentence | None = None
    ncols: int | None = None
    tag_index = 0
    first_row_line = 0
    for lineno, line in lines:
        if not line.strip():
            if current is not None:
                current.blank_after = 1
                previous, current = current, None
                yield previous, ncols, tag_index  # type: ignore[misc]
            elif previous is not None and not pending:
                previous.blank_after += 1  # read when the next sentence is built (after this yield)
            else:
                pending.append(line)
            continue
        if _is_docstart(line):
            if current is not None:
                previous, current = current, None
                yield previous, ncols, tag_index  # type: ignore[misc]
            pending.append(line)
            continue
        cols = _split(line, sep_char)
        if current is None and line.startswith("#") and not _row_like(cols, ncols, tag_column):
            pending.append(line)  # a comment; "#<sep>O" is the token "#"
            continue
        if current is None and _IMGID.match(line):
            pending.append(line)  # kept in place like a comment; _item reads the image from it
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
    if current is not None:
        yield current, ncols, tag_index  # type: ignore[misc]
    trailing.extend(pending)


def read_conll(
    path: Path,
    report: ReadReport,
    *,
    tag_column: int = -1,
    sep: str = "auto",
    scheme: str = "auto",
    skip_comments: bool = False,
    lang: str | None = None,
    fix_encoding: bool = False,
    progress: Progress | None = None,
) -> Iterator[Item]:
    """Read a CoNLL file, one sentence at a time (bounded memory). ``tag_column`` is 0-based
    (negative counts from the end; column 0 is the token); ``sep`` is auto, tab or space;
    ``scheme`` is auto (detect_scheme over the whole file, in a first pass), IOB1, IOB2 or
    BIOES; ``skip_comments`` drops comments, -DOCSTART- lines and the file layout instead of
    keeping them in item.meta; ``fix_encoding`` repairs text encoded twice."""
    if scheme != "auto" and scheme not in SCHEMES:
        raise FormatError(path, None, f"unknown tag scheme {scheme!r}; expected auto, {', '.join(SCHEMES)}")
    if sep != "auto" and sep not in SEPARATORS:
        raise FormatError(path, None, f"unknown separator {sep!r}; expected auto, tab or space")
    has_tab, crlf, final_newline = _scan(path)
    sep_char = ("\t" if has_tab else " ") if sep == "auto" else SEPARATORS[sep]
    if scheme == "auto":
        detector = SchemeDetector()
        found = False
        for s, _ncols, tag_index in _sentences(path, iter_text_lines(path), sep_char, tag_column, []):
            detector.feed(r[tag_index] for r in s.rows)
            detector.feed(("O",))
            found = True
        if not found:
            raise FormatError(path, None, "empty file: no sentences (token lines) found")
        scheme = detector.scheme()

    seen: dict[str, int] = {}
    stem = path.stem
    trailing: list[str] = []
    lines = iter_text_lines(path, report, fix_encoding=fix_encoding, progress=progress)
    held: Item | None = None  # one item of lookahead: the last one carries the file's end
    prev_sentence: _Sentence | None = None
    for n, (s, ncols, tag_index) in enumerate(_sentences(path, lines, sep_char, tag_column, trailing), start=1):
        if held is not None and prev_sentence is not None:
            yield _with_blank_after(held, prev_sentence.blank_after, skip_comments)
        prev_sentence = s
        held = _item(path, report, s, n, stem, seen, ncols, tag_index, sep_char, scheme, crlf, skip_comments, lang)
    if held is None or prev_sentence is None:
        raise FormatError(path, None, "empty file: no sentences (token lines) found")
    held = _with_blank_after(held, prev_sentence.blank_after, skip_comments)
    if not skip_comments:
        conll = dict(held.meta.get("conll", {}))
        if trailing:
            conll["trailing"] = trailing
        if not final_newline:
            conll["final_newline"] = False
        if conll:
            held = held.with_(meta={**held.meta, "conll": conll})
    yield held


def _with_blank_after(item: Item, blank_after: int, skip_comments: bool) -> Item:
    """The blank lines after a sentence are known only once the next one starts."""
    if skip_comments or blank_after == 1:
        return item
    item.meta.setdefault("conll", {})["blank_after"] = blank_after
    return item


def _item(
    path: Path, report: ReadReport, s: _Sentence, n: int, stem: str, seen: dict[str, int], ncols: int, tag_index: int,
    sep_char: str, scheme: str, crlf: bool, skip_comments: bool, lang: str | None,
) -> Item:  # fmt: skip
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
    image = None
    for c in s.before:
        m = _ID_COMMENT.match(c)
        if m and m.group(2):
            item_id = m.group(2)
        if found := _IMGID.match(c):
            image = found.group(1) if "." in found.group(1) else f"{found.group(1)}.jpg"
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
    if not skip_comments and s.before:
        meta["before"] = s.before
    item_meta: dict[str, Any] = {"conll": meta} if meta else {}
    if issues and scheme == "IOB2":
        item_meta[WRITTEN_TAGS] = {"source": tags}  # scored as written (core.metrics)
    return Item(item_id, sentence, spans, meta=item_meta, image=image)


def _starts_with_docstart(item: Item, side: str) -> bool:
    before = (item.meta.get("conll", {}) or {}).get("before", []) if side == "source" else []
    return bool(before) and _is_docstart(before[0])


def write_conll(
    items: Iterable[Item],
    path: Path,
    *,
    scheme: str | None = None,
    sep: str | None = None,
    side: str = "source",
) -> None:
    """Write one token per line, item by item (bounded memory). ``scheme`` defaults to the
    scheme the item was read in (else IOB2); ``sep`` (tab or space) to the item's separator
    (else tab); ``side`` picks the source or the target sentence (the layout in meta belongs
    to the source)."""
    if scheme is not None and scheme not in SCHEMES:
        raise FormatError(path, None, f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if sep is not None and sep not in SEPARATORS:
        raise FormatError(path, None, f"unknown separator {sep!r}; expected tab or space")
    if side not in ("source", "target"):
        raise FormatError(path, None, f"side must be source or target, not {side!r}")
    with path.open("w", encoding="utf-8", newline="") as f:
        newline: str | None = None
        started = False
        last: Item | None = None
        it = iter(items)
        item = next(it, None)
        while item is not None:
            following = next(it, None)
            if newline is None:
                newline = ((item.meta.get("conll", {}) or {}) if side == "source" else {}).get("newline", "\n")
            for line in _item_lines(path, item, following, side, scheme, sep):
                f.write(newline + line if started else line)  # the newline of the line before
                started = True
            last, item = item, following
        if started and not (side == "source" and (last.meta.get("conll", {}) or {}).get("final_newline") is False):  # type: ignore[union-attr]
            f.write(newline)  # type: ignore[arg-type]


def _item_lines(path: Path, item: Item, following: Item | None, side: str, scheme: str | None, sep: str | None) -> list[str]:
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
        raise FormatError(path, where, f"meta conll.columns describe {len(columns)} tokens but the sentence has {len(sentence)}")
    ncols = 2 + (len(columns[0]) if columns else 0)
    tag_index = cm.get("tag_column", ncols - 1)
    out: list[str] = []
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
    if following is not None and blank == 0 and not _starts_with_docstart(following, side):
        blank = 1  # only a -DOCSTART- line may follow a sentence without a blank line
    out.extend([""] * blank)
    if following is None:
        out.extend(cm.get("trailing", []))
    return out


register_format(
    "conll",
    reader=read_conll,
    writer=write_conll,
    streams=True,
    extensions=(".conll", ".conll02", ".conll03", ".iob", ".bio", ".txt"),
)
