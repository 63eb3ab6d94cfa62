"""``watchfloor user`` and ``watchfloor token``: console logins and API tokens.

Passwords are read from stdin (``--password-stdin``), never from the command line, where
every user of the machine could read them in the process list.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.models import ROLES, utcnow


def register(sub: Any) -> None:
    p = sub.add_parser("user", help="console users: add, list, remove, passwd")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a user")
    add.add_argument("name", help="login name")
    add.add_argument("--role", required=True, choices=ROLES, help="viewer, analyst or admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    actions.add_parser("list", help="users and their roles")
    remove = actions.add_parser("remove", help="remove a user (and their tokens)")
    remove.add_argument("name", help="login name")
    passwd = actions.add_parser("passwd", help="set a new password (ends the user's sessions)")
    passwd.add_argument("name", help="login name")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    p.set_defaults(func=run_user, needs_database=True)

    t = sub.add_parser("token", help="API tokens: add (printed once), list, revoke")
    actions = t.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="make a token for a user; it is printed once")
    add.add_argument("name", help="a name for the token")
    add.add_argument("--user", required=True, help="the user the token acts as")
    actions.add_parser("list", help="tokens (never their value)")
    revoke = actions.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name", help="the token's name")
    t.set_defaults(func=run_token, needs_database=True)


def _password(args: argparse.Namespace) -> str | None:
    if not args.password_stdin:
        print("error: give --password-stdin and the password on stdin", file=sys.stderr)
        return None
    return sys.stdin.readline().rstrip("\r\n")


def run_user(args: argparse.Namespace) -> int:
    from worker.runtime import runtime
    from worker.store import users as users_store
    from worker.store.users import UserError

    rt = runtime()
    try:
        if args.action == "list":
            with rt.sessions() as session:
                for user in users_store.users(session):
                    print(f"{user.name}  {user.role}  since {user.created_at:%Y-%m-%d}")
            return 0
        if args.action == "remove":
            with rt.sessions.begin() as session:
                users_store.remove_user(session, args.name)
            print(f"removed user {args.name}")
            return 0
        password = _password(args)
        if password is None:
            return 1
        with rt.sessions.begin() as session:
            if args.action == "add":
                users_store.add_user(session, args.name, args.role, password, utcnow())
            else:
                users_store.set_password(session, args.name, password)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{'added' if args.action == 'add' else 'updated'} user {args.name}")
    return 0


def run_token(args: argparse.Namespace) -> int:
    from worker.runtime import runtime
    from worker.store import users as users_store
    from worker.store.users import UserError

    rt = runtime()
    try:
        if args.action == "add":
            with rt.sessions.begin() as session:
                token = users_store.add_token(session, args.name, args.user, utcnow())
            print(token)  # the only time it is shown: it is stored hashed
            print(
                f"token {args.name} for {args.user}: keep it now, it is not shown again",
                file=sys.stderr,
            )
            return 0
        if args.action == "revoke":
            with rt.sessions.begin() as session:
                users_store.revoke_token(session, args.name, utcnow())
            print(f"revoked token {args.name}")
            return 0
        with rt.sessions() as session:
            for t in users_store.tokens(session):
                state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "live"
                used = (
                    f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
                )
                print(f"{t.name}  {t.user} ({t.role})  {state}  {used}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
