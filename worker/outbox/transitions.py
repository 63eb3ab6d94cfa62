"""The outbox lifecycle as data: ``transition(state, event, now, policy) -> new state``.

Pure: no database, no clock. The store reads a row's ``RowState``, asks ``transition`` for
the next one, and writes it with an UPDATE that holds only while the row is still in the
state it read (``worker/outbox/store.py``), so two workers can never both win a claim.
Deliveries and digests share it; a digest's members follow their digest (``Follow``).

    new row ─▶ pending | digest | silenced          (worker/planning.py plans which)
    pending|failed, due ─Claim─▶ sending            sending past its lease ─Claim─▶ sending
    sending ─Sent─▶ sent     ─Failed─▶ failed (attempts left) | dead     ─Hold─▶ held
    sending ─Release─▶ pending (its batch ran out of time before sending it: no attempt)
    digest|held, due ─Batch─▶ batched ─Follow(digest sent|dead)─▶ sent | dead
    dead ─Requeue─▶ pending (attempts from 0, the same id)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from alerts.channels.base import ChannelConfig
from alerts.controls import RetryPolicy
from worker.models import DeliveryStatus

S = DeliveryStatus
ERROR_MAX = 500
CLAIMABLE = frozenset({S.PENDING, S.FAILED})  # when due
BATCHABLE = frozenset({S.DIGEST, S.HELD})  # when due


@dataclass(frozen=True, slots=True)
class RowState:
    """The lifecycle fields of one outbox row."""

    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    claimed_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker takes the row for one attempt; a lease older than ``lease`` is stale."""

    lease: timedelta


@dataclass(frozen=True, slots=True)
class Sent:
    pass


@dataclass(frozen=True, slots=True)
class Failed:
    message: str
    permanent: bool = False
    retry_after: float | None = None  # seconds the receiver asked for


@dataclass(frozen=True, slots=True)
class Hold:
    """Over the channel's rate limit: not an attempt; goes out grouped at ``until``."""

    until: datetime
    note: str


@dataclass(frozen=True, slots=True)
class Batch:
    """A due digest-mode or held delivery joins a digest row."""


@dataclass(frozen=True, slots=True)
class Follow:
    """A batched delivery takes its digest's outcome."""

    digest_id: str
    sent: bool
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Requeue:
    """An operator sends a dead row again (``watchfloor deliveries retry``)."""


@dataclass(frozen=True, slots=True)
class Release:
    """A claimed row its worker will not send in time (``worker/outbox/batch.py``): given
    back before its lease could run out under a send, so it is never sent twice."""


Event = Claim | Sent | Failed | Hold | Batch | Follow | Requeue | Release


class IllegalTransition(ValueError):
    """The event does not apply to a row in this state (e.g. claiming a sent row)."""


def claimable(state: RowState, now: datetime, lease: timedelta) -> bool:
    """Due for an attempt, or stuck in ``sending`` past its lease (its worker died): the
    one case of a second send, and it carries the same id."""
    if state.status in CLAIMABLE:
        return state.next_attempt_at <= now
    stale = state.claimed_at is not None and state.claimed_at <= now - lease
    return state.status is S.SENDING and stale


def batchable(state: RowState, now: datetime) -> bool:
    return state.status in BATCHABLE and state.next_attempt_at <= now


def transition(state: RowState, event: Event, now: datetime, policy: RetryPolicy) -> RowState:
    """The row's next state; IllegalTransition when ``event`` cannot happen to it now."""
    if isinstance(event, Claim):
        _expect(claimable(state, now, event.lease), state, event)
        return replace(state, status=S.SENDING, attempts=state.attempts + 1, claimed_at=now)
    if isinstance(event, Sent):
        _expect(state.status is S.SENDING, state, event)
        return replace(state, status=S.SENT, sent_at=now, last_error=None)
    if isinstance(event, Failed):
        _expect(state.status is S.SENDING, state, event)
        return _failed(state, event, now, policy)
    if isinstance(event, Hold):
        _expect(state.status is S.SENDING, state, event)
        held = replace(_unsent(state), status=S.HELD, next_attempt_at=event.until)
        return replace(held, last_error=event.note)
    if isinstance(event, Release):
        _expect(state.status is S.SENDING, state, event)
        return replace(_unsent(state), status=S.PENDING, next_attempt_at=now, claimed_at=None)
    if isinstance(event, Batch):
        _expect(batchable(state, now), state, event)
        return replace(state, status=S.BATCHED)
    if isinstance(event, Follow):
        _expect(state.status is S.BATCHED, state, event)
        if event.sent:
            return replace(state, status=S.SENT, sent_at=now, last_error=None)
        error = f"digest {event.digest_id}: {event.message or 'failed'}"[:ERROR_MAX]
        return replace(state, status=S.DEAD, last_error=error)
    _expect(state.status is S.DEAD, state, event)
    return replace(state, status=S.PENDING, attempts=0, next_attempt_at=now, claimed_at=None)


def _unsent(state: RowState) -> RowState:
    """A claim that sent nothing gives its attempt back."""
    return replace(state, attempts=max(state.attempts - 1, 0))


def _failed(state: RowState, event: Failed, now: datetime, policy: RetryPolicy) -> RowState:
    delay = None if event.permanent else policy.delay(state.attempts, event.retry_after)
    error = event.message[:ERROR_MAX]
    if delay is None:
        return replace(state, status=S.DEAD, last_error=error)
    return replace(state, status=S.FAILED, next_attempt_at=now + delay, last_error=error)


def _expect(allowed: bool, state: RowState, event: Event) -> None:
    if not allowed:
        name = type(event).__name__
        raise IllegalTransition(f"{name} does not apply to a {state.status.value} row")


def retry_policy(default: tuple[timedelta, ...], channel: ChannelConfig | None) -> RetryPolicy:
    """The service's schedule with a channel's own ``retry:`` keys merged over it: a channel
    that sets only ``jitter`` keeps the service's schedule."""
    base = RetryPolicy(schedule=default)
    if channel is None:
        return base
    own = channel.retry
    return base.model_copy(update={name: getattr(own, name) for name in own.model_fields_set})
