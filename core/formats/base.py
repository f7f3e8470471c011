"""What every file format shares: the error and warning types, the registry, atomic writes.

A format is a reader and a writer registered under one name (like spaCy's ``convert``
registry), so callers pick formats by name and never import a format module directly.
Readers raise ``FormatError`` naming the file and the line or item; repairs they make are
collected in a ``ReadReport`` instead of being silent. Writers write into a temporary
sibling path that is renamed over the target only when the writer finished, so a failing
writer never leaves a partial file or folder behind.

Line formats (CoNLL, JSONL) stream: ``iter_read`` yields items as the file is read and
``write`` hands a streaming writer a lazily validated iterator, so a 50 MB file converts in
bounded memory. ``iter_text_lines`` is their one way to read a file: UTF-8 errors name the
line and byte, and text encoded twice (mojibake, "EspaÃ±a") is found with ftfy and reported
with its first line, or repaired with ``fix_encoding``.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from core.data import Item, Sentence, SpanError, Token
from core.errors import ConfigError, LabelBridgeError

__all__ = [
    "FormatError",
    "ReadWarning",
    "ReadReport",
    "Format",
    "FORMATS",
    "register_format",
    "get_format",
    "guess_format",
    "find_split",
    "read",
    "iter_read",
    "write",
    "read_utf8",
    "iter_text_lines",
    "sentence_from_words",
]

logger = logging.getLogger("core.formats")

Where = int | str | None  # a 1-based line number, an item label ("task 3", "row 5"), or nothing


def _locate(path: str | os.PathLike[str], where: Where) -> str:
    if isinstance(where, int):
        return f"{path}:{where}"
    if where:
        return f"{path}: {where}"
    return f"{path}"


class FormatError(LabelBridgeError):
    """Bad input or output for a file format; ``str()`` names the file and the line or item."""

    def __init__(self, path: str | os.PathLike[str], line_or_item: Where, message: str):
        self.path = str(path)
        self.line = line_or_item if isinstance(line_or_item, int) else None
        self.item = line_or_item if isinstance(line_or_item, str) else None
        self.message = message
        super().__init__(f"{_locate(path, line_or_item)}: {message}")


@dataclass(frozen=True, slots=True)
class ReadWarning:
    """A repair a reader made (a tag sequence fixed, a span snapped to tokens)."""

    path: str
    where: Where
    message: str

    def __str__(self) -> str:
        return f"{_locate(self.path, self.where)}: {self.message}"


@dataclass(slots=True)
class ReadReport:
    """Collects the warnings of one or more reads (pass it to ``read(..., report=...)``)."""

    warnings: list[ReadWarning] = field(default_factory=list)

    def warn(self, path: str | os.PathLike[str], where: Where, message: str) -> None:
        self.warnings.append(ReadWarning(str(path), where, message))


Reader = Callable[..., Iterable[Item]]  # reader(path, report, **options); a generator when the format streams
Writer = Callable[..., None]  # writer(items, path, **options); path is a temporary sibling
Progress = Callable[[int, int], None]  # progress(bytes read, bytes in the file)
# companions(items, **writer options) -> {suffix: text}: files a peer needs beside the output (a labeling config)
Companions = Callable[[Sequence[Item]], dict[str, str]]


@dataclass(frozen=True)
class Format:
    name: str
    reader: Reader
    writer: Writer
    extensions: tuple[str, ...]  # lower-case suffixes including the dot
    folder: bool = False  # also the format of a folder (and of a path without suffix)
    translations: bool = False  # its files can carry a translation of each sentence
    images: bool = False  # its files keep each item's image reference
    companions: Companions | None = None  # written beside the output by ``write``
    streams: bool = False  # reader yields items as it reads (takes ``progress``); writer consumes an iterator

    @property
    def read_options(self) -> tuple[str, ...]:
        return tuple(o for o in _keyword_options(self.reader) if o != "progress")

    @property
    def write_options(self) -> tuple[str, ...]:
        return _keyword_options(self.writer)


def _keyword_options(func: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(p.name for p in inspect.signature(func).parameters.values() if p.kind is p.KEYWORD_ONLY)


FORMATS: dict[str, Format] = {}


def register_format(
    name: str,
    *,
    reader: Reader,
    writer: Writer,
    extensions: Sequence[str] = (),
    folder: bool = False,
    translations: bool = False,
    images: bool = False,
    companions: Companions | None = None,
    streams: bool = False,
) -> Format:
    """Add a format to the registry (format modules call this when they are imported)."""
    fmt = Format(name, reader, writer, tuple(e.lower() for e in extensions), folder, translations, images, companions, streams)
    FORMATS[name] = fmt
    return fmt


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; expected one of {', '.join(sorted(FORMATS))}") from None


SPLIT_NAMES = {"train": ("train",), "dev": ("dev", "valid"), "test": ("test",)}  # Twitter-2015/2017 call dev "valid"
SPLIT_SUFFIXES = (".conll", ".txt", ".conll02", ".jsonl")


def find_split(folder: str | os.PathLike[str], split: str) -> Path | None:
    """A corpus folder's ``train``/``dev``/``test`` file (CoNLL-2003, CoNLL-2002, MasakhaNER2,
    Twitter layouts: ``test.conll``, ``dev.txt``, ``valid.txt``, ...), or None."""
    for stem in SPLIT_NAMES.get(split, (split,)):
        for suffix in SPLIT_SUFFIXES:
            path = Path(folder) / f"{stem}{suffix}"
            if path.is_file():
                return path
    return None


def guess_format(path: str | os.PathLike[str]) -> str:
    """The format name for a path from its extension; a folder (or no suffix) is ``hf``."""
    p = Path(path)
    suffix = p.suffix.lower()
    for fmt in FORMATS.values():
        if suffix and suffix in fmt.extensions:
            return fmt.name
    if p.is_dir() or (not suffix and not p.is_file()):
        for fmt in FORMATS.values():
            if fmt.folder:
                return fmt.name
    known = sorted({e for f in FORMATS.values() for e in f.extensions})
    raise FormatError(
        p, None, f"cannot tell the format from the extension {suffix or '(none)'!r}; "
        f"name it (one of {', '.join(sorted(FORMATS))}) or use one of {', '.join(known)}"
    )


def _check_options(fmt: Format, allowed: tuple[str, ...], options: dict[str, Any], what: str) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"{fmt.name} {what} has no option {', '.join(unknown)}; its options: {', '.join(allowed) or '(none)'}"
        )


def read(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    report: ReadReport | None = None,
    **options: Any,
) -> list[Item]:
    """Read items from ``path`` in format ``fmt`` (guessed from the extension when None).

    Repairs are appended to ``report`` when given, otherwise logged as warnings
    (``path:line: message``) on the ``core.formats`` logger.
    """
    own = report is None
    rep = ReadReport() if own else report
    items = list(iter_read(path, fmt, report=rep, **options))
    if own:
        for w in rep.warnings:
            logger.warning("%s", w)
    return items


def iter_read(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    report: ReadReport | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> Iterator[Item]:
    """The items of ``path`` one by one: read as they are yielded when the format streams
    (bounded memory; ``progress(bytes read, file size)`` is called as it reads), else read
    whole first. Bad input raises FormatError when the iteration reaches it; warnings go to
    ``report`` (pass one to see them: this function does not log)."""
    path = Path(path)
    fmt_obj = get_format(fmt or guess_format(path))
    _check_options(fmt_obj, fmt_obj.read_options, options, "reader")
    if not path.exists():
        raise FormatError(path, None, "no such file or folder")
    rep = ReadReport() if report is None else report
    if fmt_obj.streams:
        return iter(fmt_obj.reader(path, rep, progress=progress, **options))
    return iter(list(fmt_obj.reader(path, rep, **options)))


def _is_dataset_folder(p: Path) -> bool:
    return any((p / n).is_file() for n in ("dataset_info.json", "state.json", "dataset_dict.json"))


def _validated(items: Iterable[Item], path: Path) -> Iterator[Item]:
    for item in items:
        try:
            item.validate()
        except SpanError as exc:
            raise FormatError(path, f"item {item.id!r}", str(exc)) from None
        yield item


def write(items: Iterable[Item], path: str | os.PathLike[str], fmt: str | None = None, **options: Any) -> Path:
    """Write items to ``path`` atomically: a temporary sibling is renamed over the target.

    Every item is validated (a bad item raises FormatError naming the output file and the
    item) and nothing is created on error. A streaming format's writer takes ``items`` as
    an iterator (pass a generator from ``iter_read`` to convert in bounded memory); others
    get a list.
    """
    path = Path(path)
    fmt_obj = get_format(fmt or guess_format(path))
    _check_options(fmt_obj, fmt_obj.write_options, options, "writer")
    stream = fmt_obj.streams and fmt_obj.companions is None
    if not stream:
        items = list(_validated(items, path))
    if path.is_dir() and any(path.iterdir()) and not _is_dataset_folder(path):
        raise FormatError(path, None, "is a folder that is not a saved dataset; refusing to replace it")

    missing = path.parent
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    created_parent = None if path.parent.exists() else missing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        fmt_obj.writer(_validated(items, path) if stream else items, tmp, **options)
        _replace(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if created_parent is not None:
            shutil.rmtree(created_parent, ignore_errors=True)
        if isinstance(exc, FormatError) and exc.path == str(tmp):  # name the file the caller asked for
            raise FormatError(path, exc.line if exc.line is not None else exc.item, exc.message) from None
        raise
    if fmt_obj.companions is not None:
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        for suffix, text in fmt_obj.companions(items, **options).items():  # type: ignore[arg-type]
            companion = path.with_name(stem + suffix)
            tmp = companion.with_name(f".{companion.name}.tmp-{uuid.uuid4().hex[:8]}")
            try:
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, companion)
            finally:
                _remove(tmp)
    return path


def companion_paths(path: str | os.PathLike[str], fmt: str) -> dict[str, Path]:
    """The files ``write`` puts beside ``path`` for format ``fmt``: {suffix: path}."""
    path = Path(path)
    fmt_obj = get_format(fmt)
    if fmt_obj.companions is None:
        return {}
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return {suffix: path.with_name(stem + suffix) for suffix in fmt_obj.companions([])}


def _replace(tmp: Path, path: Path) -> None:
    if not tmp.is_dir():
        if path.is_dir():
            raise FormatError(path, None, "is a folder; the output of this format is a single file")
        os.replace(tmp, path)
        return
    if path.exists() and not path.is_dir():
        raise FormatError(path, None, "is a file; the output of this format is a folder")
    if not path.exists():
        os.replace(tmp, path)
        return
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()


# --- helpers shared by the readers -------------------------------------------------------


class _Mojibake:
    """Counts (and with ``fix`` repairs) lines that ftfy finds encoded twice; reports once."""

    def __init__(self, path: Path, report: ReadReport | None, fix: bool, offsets: bool = False):
        self.path, self.report, self.fix, self.offsets = path, report, fix, offsets
        self.count, self.first, self.sample, self.fixed = 0, 0, "", ""

    def check(self, lineno: int, line: str) -> str:
        if line.isascii() or self.report is None:
            return line
        from ftfy import fix_encoding
        from ftfy.badness import is_bad

        if not is_bad(line):
            return line
        repaired = fix_encoding(line)
        if repaired == line:
            return line
        self.count += 1
        if self.count == 1:
            self.first, self.sample, self.fixed = lineno, line.strip()[:60], repaired.strip()[:60]
        return repaired if self.fix else line

    def done(self) -> None:
        if not self.count or self.report is None:
            return
        lines = f"{self.count} line{'s' if self.count != 1 else ''}"
        if self.fix:
            self.report.warn(self.path, self.first, f"repaired text encoded twice (mojibake) on {lines}: {self.sample!r} -> {self.fixed!r}")
        elif self.offsets:  # a repair would shift the character offsets the file's spans use
            self.report.warn(self.path, self.first, f"{lines} look UTF-8 encoded twice (mojibake), the first {self.sample!r} "
                             f"(meant {self.fixed!r}?); repair the file and its character offsets before importing it")  # fmt: skip
        else:
            self.report.warn(self.path, self.first, f"{lines} look UTF-8 encoded twice (mojibake), the first {self.sample!r} "
                             f"(meant {self.fixed!r}?); repair with --fix-encoding (fix_encoding=True)")  # fmt: skip


def iter_text_lines(
    path: Path,
    report: ReadReport | None = None,
    *,
    fix_encoding: bool = False,
    progress: Progress | None = None,
    offsets: bool = False,
) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its "\n" or "\r\n") of each line, in bounded memory.

    A non-UTF-8 byte is a FormatError with its line and byte offset; a leading BOM is
    dropped. With ``report`` each line is checked for mojibake (module docstring);
    ``offsets``: the format locates spans by character offsets, so it is reported only."""
    size = path.stat().st_size
    offset = 0
    moji = _Mojibake(path, report, fix_encoding and not offsets, offsets)
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(
                    path, lineno, f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at byte offset {offset + exc.start} ({exc.reason})"
                ) from None
            offset += len(raw)
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            if line.endswith("\n"):
                line = line[:-2] if line.endswith("\r\n") else line[:-1]
            if progress is not None and lineno % 20000 == 0:
                progress(offset, size)
            yield lineno, moji.check(lineno, line)
    if progress is not None:
        progress(size, size)
    moji.done()


def read_utf8(path: Path, report: ReadReport | None = None, *, fix_encoding: bool = False, offsets: bool = False) -> str:
    """The file's text (whole); errors and mojibake as ``iter_text_lines`` reports them."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError(
            path, line, f"not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start} ({exc.reason})"
        ) from None
    text = text[1:] if text.startswith("\ufeff") else text
    if report is None or text.isascii():
        return text
    moji = _Mojibake(path, report, fix_encoding and not offsets, offsets)
    lines = [moji.check(n, line) for n, line in enumerate(text.split("\n"), start=1)]
    moji.done()
    return "\n".join(lines) if moji.fix else text


def sentence_from_words(text: str | None, words: Sequence[str], lang: str | None = None) -> Sentence:
    """Tokens ``words`` located in ``text`` in order (single-space join when text is None).

    Raises SpanError naming the first word that is not found where expected; only
    whitespace may separate the words.
    """
    if text is None:
        return Sentence.from_words(words, lang)
    tokens: list[Token] = []
    pos = 0
    for i, w in enumerate(words):
        if not isinstance(w, str) or not w.strip():
            raise SpanError(f"token {i} {w!r} is empty or not a string")
        start = pos
        while start < len(text) and text[start].isspace() and not text.startswith(w, start):
            start += 1
        if not text.startswith(w, start):
            raise SpanError(
                f"token {i} {w!r} does not match the text at character {start} "
                f"({text[start:start + len(w) + 10]!r})"
            )
        tokens.append(Token(w, start, start + len(w)))
        pos = start + len(w)
    if text[pos:].strip():
        raise SpanError(f"text after the last token is not covered by tokens: {text[pos:pos + 20]!r}")
    return Sentence(text, tokens, lang)
