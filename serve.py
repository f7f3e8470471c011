"""The web server: the Streamlit app (app.py) plus the two routes that keep the login
cookie out of reach of page scripts.

    streamlit run serve.py

``POST /lb-session`` exchanges a one-time code (services.users.issue_cookie_code, handed to
the page after a login) for the session cookie, set HttpOnly, SameSite=Strict and, when the
request came over HTTPS (directly or through a proxy's X-Forwarded-Proto), Secure.
``POST /lb-session/end`` clears it. ``streamlit run app.py`` still works, without a login
that survives a reload.
"""

from __future__ import annotations

import json

import streamlit as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.config import REPO_ROOT
from services.users import redeem_cookie_code

COOKIE = "labelbridge_session"
SESSION_S = 12 * 3600


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"


async def set_session(request: Request) -> JSONResponse:
    try:
        code = json.loads(await request.body() or b"{}").get("code")
    except (ValueError, AttributeError):
        code = None
    token = redeem_cookie_code(code) if isinstance(code, str) else None
    if token is None:
        return JSONResponse({"ok": False}, status_code=400)
    response = JSONResponse({"ok": True})
    response.set_cookie(COOKIE, token, max_age=SESSION_S, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


async def end_session(request: Request) -> JSONResponse:
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


app = st.App(
    REPO_ROOT / "app.py",
    routes=[Route("/lb-session", set_session, methods=["POST"]), Route("/lb-session/end", end_session, methods=["POST"])],
)
