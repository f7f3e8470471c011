"""Who is using the app: log in with a user name and password, or single-user mode.

``LABELBRIDGE_AUTH`` = on/1/true/yes: everyone logs in (passwords hashed with Argon2id,
core.auth); a login lasts 12 hours and survives reloads through a session cookie holding
a random token (the database keeps only its SHA-256). When the variable is unset or off,
the app runs in single-user mode for local use: no login, the name typed in the sidebar
is recorded with every edit, and that person may use every page.

Roles: annotator (Review), reviewer (also Agreement, Adjudicate, Export), admin (also
Projects and Users). app.py builds the navigation from the role, so a page outside it
cannot be opened; the pages check the role again with ``require_role``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

from core.auth import hash_password
from core.highlight import escape_markdown
from db.engine import session_scope
from db.errors import QueryError
from db.users import (
    create_login_session,
    create_user,
    end_login_session,
    get_user,
    list_users,
    set_password_hash,
    set_user_role,
    user_for_session,
)
from services.users import check_login, issue_cookie_code

AUTH_ENV = "LABELBRIDGE_AUTH"
COOKIE = "labelbridge_session"
SESSION_HOURS = 12
ROLE_RANK = {"annotator": 0, "reviewer": 1, "admin": 2}

_COOKIE_JS = """
export default function ({ data }) {
  // The session token never reaches this script: it gets a one-time code, which serve.py
  // exchanges for an HttpOnly cookie. Each code and each logout is sent once.
  if (!data) return;
  const sent = (window.__lbCookie = window.__lbCookie || new Set());
  const once = (key, path, body) => {
    if (sent.has(key)) return;
    sent.add(key);
    fetch(path, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
  };
  if (data.code) once(`code:${data.code}`, "/lb-session", { code: data.code });
  else if (data.clear) once(`end:${data.clear}`, "/lb-session/end");
}
"""
_cookie_component = st.components.v2.component("labelbridge.session_cookie", js=_COOKIE_JS)


def auth_enabled() -> bool:
    return os.environ.get(AUTH_ENV, "").strip().lower() in ("1", "on", "true", "yes")


@dataclass(frozen=True, slots=True)
class CurrentUser:
    name: str
    role: str
    logged_in: bool  # False in single-user mode

    def can(self, role: str) -> bool:
        """At least ``role`` (annotator < reviewer < admin)."""
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]


def current_user(url: str | None = None) -> CurrentUser | None:
    """The person using this session (None: auth is on and nobody is logged in yet).

    The session token and the role are checked against the database on every run, so a
    changed password or role (which ends the user's sessions) takes effect at once.
    """
    if not auth_enabled():
        return CurrentUser((st.session_state.get("user_name") or "reviewer").strip() or "reviewer", "admin", False)
    found = st.session_state.get("auth_user")
    token = found["token"] if found else st.context.cookies.get(COOKIE)
    if not isinstance(token, str) or not token or (found is None and st.session_state.get("auth_logged_out")):
        return None
    with session_scope(url) as s:
        user = user_for_session(s, token)
    if user is None:
        if found is not None:
            st.session_state.pop("auth_user", None)
            st.session_state.auth_logged_out = (st.session_state.get("auth_logged_out") or 0) + 1  # clears the stale cookie
            st.session_state.login_error = "Your session ended (your password or role changed, or it expired). Log in again."
        return None
    st.session_state.auth_user = {"name": user.name, "role": user.role, "token": token}
    return CurrentUser(user.name, user.role, True)


def _log_in(url: str | None, name: str, role: str) -> None:
    with session_scope(url) as s:
        token = create_login_session(s, name, SESSION_HOURS)
    st.session_state.auth_user = {"name": name, "role": role, "token": token}
    st.session_state.auth_cookie_code = issue_cookie_code(token)
    st.session_state.pop("auth_logged_out", None)


def _on_login(url: str | None) -> None:
    name = (st.session_state.get("login_name") or "").strip()
    password = st.session_state.get("login_password") or ""
    st.session_state.login_password = ""
    if not name or not password:
        st.session_state.login_error = "Give your user name and password."
        return
    with session_scope(url) as s:
        result = check_login(s, name, password, st.context.ip_address)
    if result.user is None:
        st.session_state.login_error = result.error
        return
    _log_in(url, result.user.name, result.user.role)


def _on_first_admin(url: str | None) -> None:
    name = (st.session_state.get("first_name") or "").strip()
    password = st.session_state.get("first_password") or ""
    if not name or len(password) < 8:
        st.session_state.login_error = "Give a user name and a password of at least 8 characters."
        return
    try:
        with session_scope(url) as s:
            if any(u.has_password for u in list_users(s)):
                st.session_state.login_error = "An account already exists: log in with it."
                return
            if get_user(s, name) is None:
                create_user(s, name, "admin", hash_password(password))
            else:
                set_user_role(s, name, "admin")
                set_password_hash(s, name, hash_password(password))
    except QueryError as exc:
        st.session_state.login_error = str(exc)
        return
    _log_in(url, name, "admin")


def login_screen(url: str | None) -> None:
    """The login form (or, on a new installation, the form creating the first admin)."""
    st.title("Log in to LabelBridge")
    if error := st.session_state.pop("login_error", None):
        st.error(error)
    with session_scope(url) as s:
        has_accounts = any(u.has_password for u in list_users(s))
    if not has_accounts:
        st.info("No account exists yet. Create the first administrator (or use `python -m core.cli users add NAME --role admin`).")
        with st.form("first_admin"):
            st.text_input("User name", key="first_name")
            st.text_input("Password", type="password", key="first_password", help="At least 8 characters.")
            st.form_submit_button("Create administrator", type="primary", on_click=_on_first_admin, args=(url,))
        return
    with st.form("login"):
        st.text_input("User name", key="login_name")
        st.text_input("Password", type="password", key="login_password")
        st.form_submit_button("Log in", type="primary", on_click=_on_login, args=(url,))


def _on_logout(url: str | None) -> None:
    found = st.session_state.pop("auth_user", None)
    if found:
        with session_scope(url) as s:
            end_login_session(s, found.get("token"))
    st.session_state.auth_logged_out = st.session_state.get("auth_logged_out") or 0
    st.session_state.auth_logged_out += 1
    st.session_state.pop("auth_cookie_code", None)
    for key in ("item_id", "review_conflict", "review_correction"):
        st.session_state.pop(key, None)


def sidebar_user(url: str | None, user: CurrentUser) -> None:
    """Who is logged in, and the log-out button."""
    if user.logged_in:
        st.sidebar.markdown(f"Logged in as **{escape_markdown(user.name)}** ({user.role})")
        st.sidebar.button("Log out", on_click=_on_logout, args=(url,), key="logout")


def cookie_writer() -> None:
    """Keep the browser's session cookie in step with the login: after a login the page gets
    a one-time code that serve.py turns into an HttpOnly cookie; after a logout, a request
    that clears it."""
    code = st.session_state.get("auth_cookie_code")
    if code and st.session_state.get("auth_user"):
        data = {"code": code}
    elif st.session_state.get("auth_logged_out"):
        data = {"clear": st.session_state.auth_logged_out}
    else:
        return
    with st.sidebar:
        _cookie_component(key="session_cookie", data=data, height="content")


def require_role(role: str, url: str | None = None) -> CurrentUser:
    """Stop the page (with a message) unless the user has at least ``role``."""
    user = current_user(url)
    if user is None:
        st.error("Log in first.")
        st.stop()
    if not user.can(role):
        st.error(f"This page needs the {role} role; you are logged in as {escape_markdown(user.name)} ({user.role}).")
        st.stop()
    return user


def project_or_info(user: CurrentUser) -> int | None:
    """The project chosen in the sidebar, or None after saying how to get one (only an
    admin can open the Projects page, so others are not linked there)."""
    project_id = st.session_state.get("project_id")
    if project_id is None:
        if user.can("admin"):
            st.info("No project selected. Create or pick one on the Projects page.")
            st.page_link("pages/projects.py", label="Go to Projects", icon=":material/folder:")
        else:
            st.info("No project yet: an administrator creates projects and imports items.")
    return project_id
