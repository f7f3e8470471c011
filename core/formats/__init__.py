"""File formats of LabelBridge: one registry of readers and writers, picked by name.

    items = read("en.conll02")                      # format guessed from the extension
    write(items, "en.jsonl")
    write(items, "en_ds", fmt="hf", labels=["LOC", "MISC", "ORG", "PER"])

Formats: ``conll`` (.conll .conll02 .conll03 .iob .bio .txt), ``jsonl`` (.jsonl),
``labelstudio`` (.json), ``spacy`` (.spacy), ``hf`` (a folder or .parquet). Readers raise
``FormatError`` (a ValueError naming file and line/item); repairs go to a ``ReadReport``
(or the ``core.formats`` logger). Writers are atomic: nothing partial is left on error.
"""

from core.formats.base import (
    FORMATS,
    Format,
    FormatError,
    ReadReport,
    ReadWarning,
    find_split,
    get_format,
    guess_format,
    iter_read,
    read,
    register_format,
    write,
)

# Importing the format modules registers them (heavy libraries load only when used).
from core.formats import conll, docbin, hf, jsonl, labelstudio  # noqa: E402,F401  isort: skip
from core.formats.labelstudio import labelstudio_config  # noqa: E402

__all__ = [
    "FORMATS",
    "Format",
    "FormatError",
    "ReadReport",
    "ReadWarning",
    "find_split",
    "get_format",
    "guess_format",
    "iter_read",
    "labelstudio_config",
    "read",
    "register_format",
    "write",
]
