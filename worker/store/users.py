"""Console users and API tokens. Passwords are kept as argon2id hashes; API tokens, being
32 random bytes, as their SHA-256. Neither is ever logged or stored in clear."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from worker.models import ROLES, ApiToken, User

TOKEN_PREFIX = "wft_"
_HASHER = PasswordHasher()  # argon2id with the library's current defaults
# verified against when the user does not exist, so a login takes as long either way
_DUMMY_HASH = _HASHER.hash("watchfloor: no such user")


class UserError(ValueError):
    """A user command that cannot be done (unknown user, name taken, bad role)."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    role: str
    auth_epoch: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    name: str
    user: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _record(user: User) -> UserRecord:
    return UserRecord(user.id, user.name, user.role, user.auth_epoch, user.created_at)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r} (use {', '.join(ROLES)})")
    return role


def check_password(password: str) -> str:
    if len(password) < 10:
        raise UserError("a password needs at least 10 characters")
    if len(password) > 1024:
        raise UserError("a password may have at most 1024 characters")
    return password


def add_user(session: Session, name: str, role: str, password: str, now: datetime) -> UserRecord:
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise UserError(f"user {name!r} exists already")
    hashed = _HASHER.hash(check_password(password))
    user = User(name=name, role=check_role(role), password_hash=hashed, created_at=now)
    session.add(user)
    session.flush()
    return _record(user)


def users(session: Session) -> list[UserRecord]:
    return [_record(u) for u in session.scalars(select(User).order_by(User.name))]


def any_user(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is not None


def user(session: Session, user_id: int) -> UserRecord | None:
    row = session.get(User, user_id)
    return _record(row) if row else None


def by_name(session: Session, name: str) -> UserRecord | None:
    row = session.scalar(select(User).where(User.name == name))
    return _record(row) if row else None


def remove_user(session: Session, name: str) -> None:
    if not session.execute(delete(User).where(User.name == name)).rowcount:  # type: ignore[attr-defined]
        raise UserError(f"no user {name!r}")


def set_password(session: Session, name: str, password: str) -> None:
    """A new password ends every session of the user (its auth epoch moves on)."""
    hashed = _HASHER.hash(check_password(password))
    changed = session.execute(
        update(User)
        .where(User.name == name)
        .values(password_hash=hashed, auth_epoch=User.auth_epoch + 1)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        raise UserError(f"no user {name!r}")


def authenticate(session: Session, name: str, password: str) -> UserRecord | None:
    """The user whose name and password these are, else None (in about the same time)."""
    row = session.scalar(select(User).where(User.name == name))
    try:
        _HASHER.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _HASHER.check_needs_rehash(row.password_hash):
        row.password_hash = _HASHER.hash(password)
    return _record(row)


# --- API tokens ----------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def add_token(session: Session, name: str, user_name: str, now: datetime) -> str:
    """A new token for ``user_name``; the token itself is returned once and never stored."""
    owner = by_name(session, user_name)
    if owner is None:
        raise UserError(f"no user {user_name!r}")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise UserError(f"token {name!r} exists already")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, user_id=owner.id, token_hash=token_hash(token), created_at=now))
    session.flush()
    return token


def tokens(session: Session) -> list[TokenRecord]:
    rows = session.execute(
        select(ApiToken, User.name, User.role)
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.name)
    )
    return [
        TokenRecord(t.id, t.name, name, role, t.created_at, t.last_used_at, t.revoked_at)
        for t, name, role in rows
    ]


def revoke_token(session: Session, name: str, now: datetime) -> None:
    changed = session.execute(
        update(ApiToken)
        .where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        raise UserError(f"no live token {name!r}")


def token_user(session: Session, token: str, now: datetime) -> UserRecord | None:
    """The user a live token belongs to; records when it was last used."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    api_token, owner = row
    api_token.last_used_at = now
    return _record(owner)
