"""``python -m core.cli users ...``: accounts for the login of the web app
(``LABELBRIDGE_AUTH=on``): add, list, set-role, passwd.

Passwords are read with a hidden prompt (or one line of standard input with
``--password-stdin``, for scripts) and stored as Argon2id hashes (core.auth).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from cli.common import CliError, add_db, db_url
from core.auth import hash_password
from db.engine import init_db, session_scope
from db.errors import QueryError
from db.models import USER_ROLES as ROLES
from db.users import create_user, list_users, set_password_hash, set_user_role


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise CliError("the two passwords differ")
    if len(password) < 8:
        raise CliError("the password needs at least 8 characters")
    return password


def _session(args: argparse.Namespace):  # noqa: ANN202
    url = db_url(args)
    init_db(url)
    return session_scope(url)


def _add(args: argparse.Namespace) -> int:
    password = _password(args)
    try:
        with _session(args) as s:
            create_user(s, args.name, args.role, hash_password(password))
    except QueryError as exc:
        raise CliError(str(exc)) from exc
    print(f"added {args.name} ({args.role})")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _session(args) as s:
        users = list_users(s)
    for u in users:
        print(f"{u.name}\t{u.role}\t{'password set' if u.has_password else 'no password'}")
    return 0


def _set_role(args: argparse.Namespace) -> int:
    try:
        with _session(args) as s:
            set_user_role(s, args.name, args.role)
    except QueryError as exc:
        raise CliError(str(exc)) from exc
    print(f"{args.name} is now {args.role} (their login sessions were ended)")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = _password(args)
    try:
        with _session(args) as s:
            set_password_hash(s, args.name, hash_password(password))
    except QueryError as exc:
        raise CliError(str(exc)) from exc
    print(f"password of {args.name} changed (their login sessions were ended)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("users", help="accounts for the web app's login (LABELBRIDGE_AUTH=on)")
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    p = sub.add_parser("add", help="add a user with a password")
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES, default="annotator")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=_add)
    p = sub.add_parser("list", help="list users and roles")
    p.set_defaults(func=_list)
    p = sub.add_parser("set-role", help="change a user's role")
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    p.set_defaults(func=_set_role)
    p = sub.add_parser("passwd", help="set a user's password")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=_passwd)
    for p in sub.choices.values():
        add_db(p, "--url")
