"""Folders written whole: a reader sees the old folder or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["built_folder"]


@contextlib.contextmanager
def built_folder(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a private sibling folder to fill; on success it replaces ``dest`` by renames (the
    old one is moved aside first, so a reader of it never sees it half-deleted); on an error
    ``dest`` is left as it was and the work folder is removed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield work
        retired = dest.with_name(f".{dest.name}.retired-{os.getpid()}")
        if dest.exists():
            os.replace(dest, retired)
        os.replace(work, dest)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
