"""Per-request plumbing: the read session, a write transaction, the signed-in user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, g
from flask_login import current_user
from sqlalchemy.orm import Session

from worker.config import Config
from worker.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["watchfloor_runtime"]
    return rt


def config() -> Config:
    return runtime().config.current()


def db() -> Session:
    """One read session per request, closed at its end."""
    if "db" not in g:
        g.db = runtime().sessions()
    session: Session = g.db
    return session


@contextmanager
def write() -> Iterator[Session]:
    """A transaction for a store command: committed when the block ends without error."""
    with runtime().sessions.begin() as session:
        yield session


def role_required(*roles: str) -> Callable[[F], F]:
    """Refuse (403) a signed-in user whose role is not one of ``roles``: checked on the
    server for every request, whatever the page showed."""

    def decorate(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if getattr(current_user, "role", None) not in roles:
                abort(403)
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


TRIAGE_ROLES = ("analyst", "admin")
