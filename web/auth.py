"""Logins: argon2-checked passwords, sessions that end when the password changes, failed
logins throttled (Flask-Limiter), and health for the orchestrator."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import UserMixin, current_user, login_user, logout_user
from sqlalchemy import text

from web.deps import db, write
from worker.store import users as users_store
from worker.store.users import UserRecord

blueprint = Blueprint("auth", __name__)
limiter = Limiter(key_func=get_remote_address, default_limits=[])
LOGIN_LIMIT = "5 per minute;20 per hour"  # failed attempts per client address


class ConsoleUser(UserMixin):  # type: ignore[misc]  # flask-login ships no type hints
    def __init__(self, record: UserRecord) -> None:
        self.record = record
        self.name, self.role = record.name, record.role

    def get_id(self) -> str:
        """The session holds the user, the auth epoch (a password change ends it) and when
        the user was made: SQLite hands a removed user's id to the next one, whose epoch
        starts at 0 too, and the removed user's sessions must not become the new one's."""
        return f"{self.record.id}:{self.record.auth_epoch}:{_stamp(self.record)}"

    @property
    def can_triage(self) -> bool:
        return self.role in ("analyst", "admin")


def load_user(session_id: str) -> ConsoleUser | None:
    parts = session_id.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    ident, epoch, stamp = parts
    record = users_store.user(db(), int(ident))
    if record is None or record.auth_epoch != int(epoch) or _stamp(record) != stamp:
        return None
    return ConsoleUser(record)


def _stamp(record: UserRecord) -> str:
    return record.created_at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")  # digits only


@blueprint.get("/healthz")
def healthz() -> Any:
    try:
        db().execute(text("SELECT 1"))
    except Exception:  # any failure is the answer: not healthy
        return jsonify(status="fail", database="unreachable"), 503
    return jsonify(status="ok")


@blueprint.get("/login")
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("pages.alerts"))
    no_users = not users_store.any_user(db())  # the first hour: say how to make one
    return render_template(
        "login.html", next=_safe_next(request.args.get("next")), no_users=no_users
    )


@blueprint.post("/login")
@limiter.limit(LOGIN_LIMIT, methods=["POST"], deduct_when=lambda r: r.status_code == 401)
def login_post() -> Any:
    name = request.form.get("name", "")[:64]
    password = request.form.get("password", "")[:1024]
    with write() as session:
        record = users_store.authenticate(session, name, password)
    if record is None:
        page = render_template("login.html", error="Wrong name or password.", name=name)
        return page, 401
    target = _safe_next(request.form.get("next")) or url_for("pages.alerts")
    # a new session: nothing from before the login (a CSRF token another may have planted
    # with the cookie) carries over into the signed-in one
    cookie_session.clear()
    login_user(ConsoleUser(record))
    return redirect(target)


@blueprint.post("/logout")
def logout() -> Any:
    logout_user()
    cookie_session.clear()  # the CSRF token too: the next login starts afresh
    return redirect(url_for("auth.login"))


@blueprint.app_errorhandler(429)
def throttled(_error: Any) -> Any:
    if request.path.startswith("/api/"):
        return jsonify(error="too many requests"), 429
    page = render_template("login.html", error="Too many failed logins: wait a minute.")
    return page, 429


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: a login never redirects elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    # browsers take a backslash for a slash (/\evil.example is //evil.example) and drop
    # tabs and newlines (/<tab>/evil.example too)
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
