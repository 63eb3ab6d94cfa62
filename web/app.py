"""The Flask app: sessions, CSRF, login throttling, security headers, blueprints."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from common.durations import format_duration
from worker.runtime import Runtime, build_runtime
from worker.settings import Settings, load_settings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PUBLIC_ENDPOINTS = frozenset(
    {"auth.login", "auth.login_post", "auth.healthz", "static", "websub.verify", "websub.push"}
)
TOKEN_ENDPOINTS = frozenset({"api.alerts", "api.watchlist_feed"})  # Bearer token, no session


def secret_key(settings: Settings) -> str:
    """The configured key, else one generated once into var/secret_key (mode 0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.var_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key)
        return key


def create_app(rt: Runtime | None = None) -> Flask:
    rt = rt or build_runtime(load_settings())
    settings = rt.settings
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        SESSION_COOKIE_NAME="watchfloor_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=64 * 1024,  # a form post, never an upload
        # failed logins are counted where every web process sees them: Redis when the
        # deployment has one, else this process (the embedded single-process console)
        RATELIMIT_STORAGE_URI=(
            settings.broker_url if settings.broker_url.startswith("redis") else "memory://"
        ),
        RATELIMIT_HEADERS_ENABLED=True,
    )
    app.extensions["watchfloor_runtime"] = rt
    csrf = CSRFProtect(app)
    _login_manager(app)
    from web import api, auth, pages, stream, triage, websub

    auth.limiter.init_app(app)
    for module in (auth, pages, triage, api, stream, websub):
        app.register_blueprint(module.blueprint)
    csrf.exempt(websub.blueprint)  # a hub posts pushes; their HMAC is the check
    app.before_request(_require_login)
    app.after_request(_security_headers)
    app.teardown_appcontext(_close_session)
    app.register_error_handler(CSRFError, _csrf_refused)
    app.jinja_env.globals["csrf_field"] = _csrf_field
    app.jinja_env.filters["when"] = _when
    app.jinja_env.filters["duration"] = format_duration
    return app


def _login_manager(app: Flask) -> None:
    from web.auth import load_user

    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.session_protection = "strong"
    manager.user_loader(load_user)


def _require_login() -> Any:
    """Nothing but health and the login page without a session (tokens for the API)."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS or endpoint in TOKEN_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        return None
    if request.path.startswith("/api/"):
        return jsonify(error="authentication required"), 401
    return redirect(
        url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    )


def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint not in ("static",):
        response.headers.setdefault("Cache-Control", "no-store")  # a desk's intelligence
    return response


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return f"Refused: {error.description}", 403


def _csrf_field() -> Any:
    from flask_wtf.csrf import generate_csrf
    from markupsafe import Markup, escape

    return Markup(f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">')


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def static_dir() -> Path:
    return Path(__file__).with_name("static")
