"""Logging in: checking a password (Argon2id, core.auth) and the login sessions."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.auth import hash_password, needs_rehash, verify_password
from db.users import UserInfo, get_password_hash, get_user, set_password_hash

__all__ = ["check_login"]


def check_login(s: Session, name: str, password: str) -> UserInfo | None:
    """The user when the password matches (re-hashing an outdated hash), else None."""
    stored = get_password_hash(s, name)
    if stored is None or not verify_password(stored, password):
        return None
    if needs_rehash(stored):
        set_password_hash(s, name, hash_password(password))
    return get_user(s, name)
