"""Channel state: consecutive errors, last success, and why a channel was disabled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.models import ChannelState
from worker.store import ERROR_MAX, insert_ignore


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    id: str
    error_count: int
    last_error: str | None
    last_success_at: datetime | None
    disabled_reason: str | None


def lock(session: Session, channel_id: str) -> None:
    """Serialise per-channel decisions across workers (a row lock on PostgreSQL; SQLite
    already serialises writing transactions)."""
    _ensure(session, channel_id)
    session.execute(select(ChannelState.id).where(ChannelState.id == channel_id).with_for_update())


def health(session: Session, channel_id: str) -> ChannelHealth:
    state = session.get(ChannelState, channel_id)
    if state is None:
        return ChannelHealth(channel_id, 0, None, None, None)
    return ChannelHealth(
        state.id, state.error_count, state.last_error, state.last_success_at, state.disabled_reason
    )


def record_success(session: Session, channel_id: str, now: datetime) -> None:
    state = _state(session, channel_id)
    state.error_count, state.last_success_at = 0, now


def record_failure(
    session: Session, channel_id: str, message: str, *, disable: bool = False
) -> ChannelHealth:
    """One more consecutive error; ``disable`` when the receiver says it is gone."""
    state = _state(session, channel_id)
    state.error_count += 1
    state.last_error = message[:ERROR_MAX]
    if disable:
        state.disabled_reason = message[:ERROR_MAX]
    return health(session, channel_id)


def _ensure(session: Session, channel_id: str) -> None:
    insert_ignore(session, ChannelState.__table__, [{"id": channel_id, "error_count": 0}], ["id"])


def _state(session: Session, channel_id: str) -> ChannelState:
    """The channel's row, created without a race: two first deliveries may record at once."""
    _ensure(session, channel_id)
    state = session.get(ChannelState, channel_id, populate_existing=True)
    if state is None:  # pragma: no cover - inserted just above, in this transaction
        raise LookupError(f"channel state {channel_id!r} vanished")
    return state
