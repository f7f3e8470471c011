"""Users, their password hashes and their login sessions (only a SHA-256 of each session
token is stored). Hashing and checking passwords is services.users' job (core.auth)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import models as orm
from db import review_models as rm
from db.codecs import utc
from db.errors import DuplicateError, NotFoundError, check_choice, check_user
from db.models import USER_ROLES

__all__ = [
    "UserInfo",
    "create_user",
    "get_user",
    "list_users",
    "set_user_role",
    "set_password_hash",
    "get_password_hash",
    "create_login_session",
    "user_for_session",
    "end_login_session",
    "revoke_login_sessions",
]


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    role: str
    has_password: bool
    created_at: datetime


def _info(u: orm.User) -> UserInfo:
    return UserInfo(u.id, u.name, u.role, u.password_hash is not None, utc(u.created_at))


def _row(s: Session, name: str) -> orm.User:
    u = s.scalars(select(orm.User).where(orm.User.name == name).execution_options(populate_existing=True)).first()
    if u is None:
        raise NotFoundError(f"no user named {name!r}")
    return u


def create_user(s: Session, name: str, role: str = "annotator", password_hash: str | None = None) -> UserInfo:
    """A new user (hash with core.auth.hash_password). Raises DuplicateError."""
    name = check_user(name)
    check_choice(role, USER_ROLES, "role")
    if s.scalar(select(orm.User.id).where(orm.User.name == name)) is not None:
        raise DuplicateError(f"a user named {name!r} already exists")
    u = orm.User(name=name, role=role, password_hash=password_hash)
    s.add(u)
    try:
        s.flush()
    except IntegrityError as exc:
        raise DuplicateError(f"a user named {name!r} already exists") from exc
    return _info(u)


def get_user(s: Session, name: str) -> UserInfo | None:
    u = s.scalars(select(orm.User).where(orm.User.name == name).execution_options(populate_existing=True)).first()
    return _info(u) if u is not None else None


def list_users(s: Session) -> list[UserInfo]:
    return [_info(u) for u in s.scalars(select(orm.User).order_by(orm.User.name).execution_options(populate_existing=True))]


def set_user_role(s: Session, name: str, role: str) -> UserInfo:
    """Change a role; a changed role ends the user's login sessions (they log in again)."""
    check_choice(role, USER_ROLES, "role")
    u = _row(s, name)
    if u.role != role:
        u.role = role
        revoke_login_sessions(s, name)
    s.flush()
    return _info(u)


def set_password_hash(s: Session, name: str, password_hash: str | None) -> None:
    """Store a new hash (None removes the password) and end every login session of the user."""
    u = _row(s, name)
    u.password_hash = password_hash
    revoke_login_sessions(s, name)
    s.flush()


def get_password_hash(s: Session, name: str) -> str | None:
    """The stored hash (None: no such user or no password)."""
    return s.scalar(select(orm.User.password_hash).where(orm.User.name == name))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_login_session(s: Session, user_name: str, hours: float = 12.0) -> str:
    """A new random session token for a logged-in user (only its hash is stored)."""
    user_id = s.scalar(select(orm.User.id).where(orm.User.name == user_name))
    if user_id is None:
        raise NotFoundError(f"no user named {user_name!r}")
    token = secrets.token_urlsafe(32)
    now = orm.utcnow()
    s.execute(delete(rm.AuthSession).where(rm.AuthSession.expires_at < now))
    s.add(rm.AuthSession(token_sha256=_token_hash(token), user_id=user_id, created_at=now, expires_at=now + timedelta(hours=hours)))
    s.flush()
    return token


def user_for_session(s: Session, token: str | None) -> UserInfo | None:
    """The user of a valid, unexpired session token, else None."""
    if not token:
        return None
    row = s.execute(
        select(orm.User.name, rm.AuthSession.expires_at)
        .join(rm.AuthSession, rm.AuthSession.user_id == orm.User.id)
        .where(rm.AuthSession.token_sha256 == _token_hash(token))
    ).first()
    if row is None or utc(row.expires_at) < orm.utcnow():
        return None
    return get_user(s, row.name)


def end_login_session(s: Session, token: str | None) -> None:
    if token:
        s.execute(delete(rm.AuthSession).where(rm.AuthSession.token_sha256 == _token_hash(token)))


def revoke_login_sessions(s: Session, name: str) -> int:
    """End every login session of a user; returns how many there were."""
    user_id = s.scalar(select(orm.User.id).where(orm.User.name == name))
    if user_id is None:
        return 0
    res = s.execute(delete(rm.AuthSession).where(rm.AuthSession.user_id == user_id).execution_options(synchronize_session=False))
    return int(res.rowcount or 0)
