"""Users (admin only): accounts, roles and passwords for the login (LABELBRIDGE_AUTH=on)."""

from __future__ import annotations

import streamlit as st

from core.auth import hash_password
from core.config import settings
from db.engine import session_scope
from db.errors import QueryError
from db.users import create_user, list_users, set_password_hash, set_user_role
from pages._auth import ROLE_RANK, auth_enabled, require_role
from pages._common import ensure_navigation

URL = settings().db_url
ROLES = list(ROLE_RANK)


def _add() -> None:
    name = (st.session_state.get("new_user_name") or "").strip()
    password = st.session_state.get("new_user_password") or ""
    role = st.session_state.get("new_user_role") or "annotator"
    if not name or len(password) < 8:
        st.session_state.users_error = "Give a user name and a password of at least 8 characters."
        return
    try:
        with session_scope(URL) as s:
            create_user(s, name, role, hash_password(password))
    except QueryError as exc:
        st.session_state.users_error = str(exc)
        return
    st.session_state.new_user_name = ""
    st.session_state.new_user_password = ""
    st.session_state.users_info = f"Added {name} ({role})."


def _change(name: str) -> None:
    role = st.session_state.get(f"role:{name}")
    password = st.session_state.get(f"password:{name}") or ""
    try:
        with session_scope(URL) as s:
            if role:
                set_user_role(s, name, role)
            if password:
                if len(password) < 8:
                    st.session_state.users_error = "A password needs at least 8 characters."
                    return
                set_password_hash(s, name, hash_password(password))
    except QueryError as exc:
        st.session_state.users_error = str(exc)
        return
    st.session_state[f"password:{name}"] = ""
    st.session_state.users_info = f"Saved {name}."


def main() -> None:
    st.title("Users")
    me = require_role("admin", URL)
    if not auth_enabled():
        st.info("Single-user mode: nobody logs in. Set LABELBRIDGE_AUTH=on to require these accounts.")
    if error := st.session_state.pop("users_error", None):
        st.error(error)
    if info := st.session_state.pop("users_info", None):
        st.success(info)
    with session_scope(URL) as s:
        users = list_users(s)
    st.dataframe(
        [{"User": u.name, "Role": u.role, "Password": "set" if u.has_password else "none", "Since": u.created_at} for u in users],
        hide_index=True,
        width="stretch",
    )
    with st.form("add_user", clear_on_submit=False):
        st.markdown("**Add a user**")
        c1, c2, c3 = st.columns([2, 2, 1])
        c1.text_input("User name", key="new_user_name")
        c2.text_input("Password", type="password", key="new_user_password", help="At least 8 characters.")
        c3.selectbox("Role", ROLES, key="new_user_role")
        st.form_submit_button("Add user", on_click=_add)
    for u in users:
        with st.expander(f"{u.name} · {u.role}"):
            c1, c2, c3 = st.columns([1, 2, 1])
            c1.selectbox("Role", ROLES, index=ROLES.index(u.role), key=f"role:{u.name}", disabled=u.name == me.name and me.logged_in)
            c2.text_input("New password", type="password", key=f"password:{u.name}")
            c3.button("Save", key=f"save:{u.name}", on_click=_change, args=(u.name,))


ensure_navigation()
main()
