"""Logins and sessions: throttled failures, no user-name enumeration by timing, sessions
ended on a password or role change, one-time cookie codes, the HttpOnly cookie route."""

from __future__ import annotations

import pytest

from db import users
from db.engine import dispose_engine, init_db, session_scope
from services import users as login


@pytest.fixture()
def url(tmp_path, monkeypatch):
    from argon2 import PasswordHasher

    from core import auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))  # fast in tests
    login.reset_login_throttle()
    db_url = f"sqlite:///{tmp_path / 'auth.db'}"
    init_db(db_url)
    with session_scope(db_url) as s:
        users.create_user(s, "rita", "reviewer", auth.hash_password("right-password"))
    yield db_url
    login.reset_login_throttle()
    dispose_engine(db_url)


def test_failed_logins_are_throttled_per_user_and_per_address(url, monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(login.time, "monotonic", lambda: clock[0])
    with session_scope(url) as s:
        for _ in range(login.FREE_FAILURES):
            assert login.check_login(s, "rita", "wrong", "10.0.0.1").error == "Unknown user name or wrong password."
        locked = login.check_login(s, "rita", "right-password", "10.0.0.2")  # the right password, too soon: refused
        assert locked.user is None and "Too many failed logins" in locked.error and locked.retry_after_s == pytest.approx(login.BASE_DELAY_S)
        other = login.check_login(s, "bob", "x", "10.0.0.1")  # the same address, another name: refused too
        assert other.user is None and "Too many" in other.error
        clock[0] += login.BASE_DELAY_S + 1
        assert login.check_login(s, "rita", "right-password", "10.0.0.2").user.name == "rita"
        assert login.check_login(s, "rita", "wrong", "10.0.0.3").error.startswith("Unknown")  # a success clears the count


def test_an_unknown_name_costs_a_password_hash_like_a_known_one(url, monkeypatch) -> None:
    from core import auth

    checked = []
    real = login.verify_password
    monkeypatch.setattr(login, "verify_password", lambda stored, pw: checked.append(stored) or real(stored, pw))
    with session_scope(url) as s:
        assert login.check_login(s, "nobody", "whatever").user is None
        assert login.check_login(s, "rita", "wrong").user is None
    assert len(checked) == 2 and all(h.startswith("$argon2") for h in checked)
    assert auth.verify_password(checked[0], "whatever") is False


def test_a_password_or_role_change_ends_the_users_sessions(url) -> None:
    with session_scope(url) as s:
        token = users.create_login_session(s, "rita")
        assert users.user_for_session(s, token).role == "reviewer"
        users.set_user_role(s, "rita", "annotator")
        assert users.user_for_session(s, token) is None  # a demoted reviewer logs in again
        token = users.create_login_session(s, "rita")
        users.set_user_role(s, "rita", "annotator")  # no change: the session stays
        assert users.user_for_session(s, token) is not None
        users.set_password_hash(s, "rita", None)
        assert users.user_for_session(s, token) is None


def test_a_cookie_code_is_spent_once_and_expires(monkeypatch) -> None:
    code = login.issue_cookie_code("tok-1")
    assert login.redeem_cookie_code(code) == "tok-1" and login.redeem_cookie_code(code) is None
    clock = [5000.0]
    monkeypatch.setattr(login.time, "monotonic", lambda: clock[0])
    late = login.issue_cookie_code("tok-2")
    clock[0] += login.COOKIE_CODE_S + 1
    assert login.redeem_cookie_code(late) is None and login.redeem_cookie_code("made-up") is None


def test_the_session_route_sets_an_httponly_cookie_from_a_code() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    import serve

    client = TestClient(Starlette(routes=[Route("/lb-session", serve.set_session, methods=["POST"]), Route("/lb-session/end", serve.end_session, methods=["POST"])]))
    assert client.post("/lb-session", json={"code": "forged"}).status_code == 400
    response = client.post("/lb-session", json={"code": login.issue_cookie_code("tok-3")})
    cookie = response.headers["set-cookie"]
    assert response.status_code == 200 and "labelbridge_session=tok-3" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here
    secure = client.post("/lb-session", json={"code": login.issue_cookie_code("tok-4")}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in secure.headers["set-cookie"]
    assert 'labelbridge_session=""' in client.post("/lb-session/end").headers["set-cookie"]
