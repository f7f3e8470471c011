"""The storage layer's errors, and the argument checks that raise them."""

from __future__ import annotations

import json
from typing import Any, Sequence

from core.errors import LabelBridgeError

__all__ = [
    "QueryError",
    "NotFoundError",
    "DuplicateError",
    "ItemImportError",
    "JobCancelledError",
    "check_json",
    "check_choice",
    "check_user",
]


class QueryError(LabelBridgeError):
    """A request the database layer refuses (bad value, unknown name, wrong state)."""


class NotFoundError(QueryError, LookupError):
    """No project/item/user/job with that name or id."""


class DuplicateError(QueryError):
    """A unique name (project, user, model version) that already exists."""


class ItemImportError(QueryError):
    """An import refused as a whole; ``errors`` names every bad item (by position and id)."""

    def __init__(self, errors: list[str]):
        shown = "; ".join(errors[:5]) + (f"; ... and {len(errors) - 5} more" if len(errors) > 5 else "")
        super().__init__(f"import refused, nothing was stored: {shown}")
        self.errors = errors


class JobCancelledError(QueryError):
    """The job was cancelled; the worker should stop."""


def check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"{what} is not JSON-serializable: {exc}") from exc


def check_choice(value: str | None, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise QueryError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
    return value  # type: ignore[return-value]


def check_user(user: str) -> str:
    if not isinstance(user, str) or not user.strip():
        raise QueryError("a user name is required for every edit")
    return user.strip()
