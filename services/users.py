"""Logging in: checking a password (Argon2id, core.auth), throttling failed attempts, and
handing a session token to the browser's cookie without any page script seeing it.

Failed logins are counted per user name and per address: after ``FREE_FAILURES`` failures
within ``WINDOW_S`` every further attempt is refused for a delay that doubles with each
failure (at most ``MAX_DELAY_S``), and an unknown name costs the same password hash as a
known one, so the answer's timing does not tell which names exist.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.auth import hash_password, needs_rehash, verify_password
from db.users import UserInfo, get_password_hash, get_user, set_password_hash

__all__ = ["LoginResult", "check_login", "issue_cookie_code", "redeem_cookie_code", "reset_login_throttle"]

FREE_FAILURES = 5
WINDOW_S = 15 * 60
BASE_DELAY_S = 30.0
MAX_DELAY_S = 15 * 60
COOKIE_CODE_S = 60.0  # a cookie code is redeemed by the browser at once, or never

_lock = threading.Lock()
_failures: dict[str, list[float]] = {}  # "user:NAME" / "addr:IP" -> times of recent failures
_codes: dict[str, tuple[str, float]] = {}  # one-time code -> (session token, expiry)
_dummy_hash: str | None = None


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: UserInfo | None
    error: str | None = None  # what to tell the person (never which part was wrong)
    retry_after_s: float = 0.0


def _keys(name: str, address: str | None) -> list[str]:
    return [f"user:{name.casefold()}"] + ([f"addr:{address}"] if address else [])


def _wait_s(key: str, now: float) -> float:
    recent = [t for t in _failures.get(key, []) if now - t < WINDOW_S]
    _failures[key] = recent
    if len(recent) < FREE_FAILURES:
        return 0.0
    delay = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (len(recent) - FREE_FAILURES))
    return max(0.0, recent[-1] + delay - now)


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def check_login(s: Session, name: str, password: str, address: str | None = None) -> LoginResult:
    """The user when the password matches (re-hashing an outdated hash); else an error
    that says only "unknown name or wrong password", or how long to wait after too many
    failures for this name or this address."""
    now = time.monotonic()
    with _lock:
        wait = max(_wait_s(key, now) for key in _keys(name, address))
    if wait > 0:
        return LoginResult(None, f"Too many failed logins: try again in {wait:.0f} s.", wait)
    stored = get_password_hash(s, name) if name else None
    ok = verify_password(stored if stored is not None else _dummy(), password) and stored is not None
    if not ok:
        with _lock:
            for key in _keys(name, address):
                _failures.setdefault(key, []).append(now)
        return LoginResult(None, "Unknown user name or wrong password.")
    with _lock:
        for key in _keys(name, address):
            _failures.pop(key, None)
    if needs_rehash(stored):
        set_password_hash(s, name, hash_password(password))
    return LoginResult(get_user(s, name))


def reset_login_throttle() -> None:
    """Forget every failed attempt (tests, or an admin after an incident)."""
    with _lock:
        _failures.clear()


def issue_cookie_code(token: str) -> str:
    """A one-time code the browser exchanges (serve.py, ``POST /lb-session``) for an HttpOnly
    cookie holding ``token``: the token itself never passes through page scripts."""
    code = secrets.token_urlsafe(24)
    now = time.monotonic()
    with _lock:
        for old in [c for c, (_, exp) in _codes.items() if exp < now]:
            _codes.pop(old, None)
        _codes[code] = (token, now + COOKIE_CODE_S)
    return code


def redeem_cookie_code(code: str) -> str | None:
    """The token of a valid, unused code (the code is spent); None otherwise."""
    with _lock:
        found = _codes.pop(code, None)
    if found is None or found[1] < time.monotonic():
        return None
    return found[0]
