"""What every file format shares: the error and warning types, the registry, atomic writes.

A format is a reader and a writer registered under one name (like spaCy's ``convert``
registry), so callers pick formats by name and never import a format module directly.
Readers raise ``FormatError`` naming the file and the line or item; repairs they make are
collected in a ``ReadReport`` instead of being silent. Writers write into a temporary
sibling path that is renamed over the target only when the writer finished, so a failing
writer never leaves a partial file or folder behind.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

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
    "read",
    "write",
    "read_utf8",
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


Reader = Callable[..., list[Item]]  # reader(path, report, **options)
Writer = Callable[..., None]  # writer(items, path, **options); path is a temporary sibling


@dataclass(frozen=True)
class Format:
    name: str
    reader: Reader
    writer: Writer
    extensions: tuple[str, ...]  # lower-case suffixes including the dot
    folder: bool = False  # also the format of a folder (and of a path without suffix)
    translations: bool = False  # its files can carry a translation of each sentence

    @property
    def read_options(self) -> tuple[str, ...]:
        return _keyword_options(self.reader)

    @property
    def write_options(self) -> tuple[str, ...]:
        return _keyword_options(self.writer)


def _keyword_options(func: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(p.name for p in inspect.signature(func).parameters.values() if p.kind is p.KEYWORD_ONLY)


FORMATS: dict[str, Format] = {}


def register_format(
    name: str, *, reader: Reader, writer: Writer, extensions: Sequence[str] = (), folder: bool = False, translations: bool = False
) -> Format:
    """Add a format to the registry (format modules call this when they are imported)."""
    fmt = Format(name, reader, writer, tuple(e.lower() for e in extensions), folder, translations)
    FORMATS[name] = fmt
    return fmt


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; expected one of {', '.join(sorted(FORMATS))}") from None


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
    path = Path(path)
    fmt_obj = get_format(fmt or guess_format(path))
    _check_options(fmt_obj, fmt_obj.read_options, options, "reader")
    if not path.exists():
        raise FormatError(path, None, "no such file or folder")
    own = report is None
    rep = ReadReport() if own else report
    items = fmt_obj.reader(path, rep, **options)
    if own:
        for w in rep.warnings:
            logger.warning("%s", w)
    return items


def _is_dataset_folder(p: Path) -> bool:
    return any((p / n).is_file() for n in ("dataset_info.json", "state.json", "dataset_dict.json"))


def write(items: Sequence[Item], path: str | os.PathLike[str], fmt: str | None = None, **options: Any) -> Path:
    """Write items to ``path`` atomically: a temporary sibling is renamed over the target.

    Every item is validated first; a bad item raises FormatError naming the output file
    and the item, and nothing is created.
    """
    path = Path(path)
    fmt_obj = get_format(fmt or guess_format(path))
    _check_options(fmt_obj, fmt_obj.write_options, options, "writer")
    for item in items:
        try:
            item.validate()
        except SpanError as exc:
            raise FormatError(path, f"item {item.id!r}", str(exc)) from None
    if path.is_dir() and any(path.iterdir()) and not _is_dataset_folder(path):
        raise FormatError(path, None, "is a folder that is not a saved dataset; refusing to replace it")

    missing = path.parent
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    created_parent = None if path.parent.exists() else missing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        fmt_obj.writer(list(items), tmp, **options)
        _replace(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if created_parent is not None:
            shutil.rmtree(created_parent, ignore_errors=True)
        if isinstance(exc, FormatError) and exc.path == str(tmp):  # name the file the caller asked for
            raise FormatError(path, exc.line if exc.line is not None else exc.item, exc.message) from None
        raise
    return path


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


def read_utf8(path: Path) -> str:
    """The file's text; a non-UTF-8 byte is reported with its line and byte offset."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError(
            path, line, f"not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start} ({exc.reason})"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


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
