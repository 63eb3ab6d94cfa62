"""The outbox lifecycle as pure transitions: no database, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from alerts.channels.log import LogConfig
from alerts.controls import RetryPolicy
from worker.models import Base, Delivery, DeliveryStatus
from worker.outbox.store import claimable_rows
from worker.outbox.transitions import (
    Batch,
    Claim,
    Event,
    Failed,
    Follow,
    Hold,
    IllegalTransition,
    Release,
    Requeue,
    RowState,
    Sent,
    batchable,
    claimable,
    retry_policy,
    transition,
)

S = DeliveryStatus
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
POLICY = RetryPolicy(schedule=(timedelta(seconds=5), timedelta(minutes=5)), jitter=0)
EVENTS: dict[str, Event] = {
    "claim": Claim(LEASE),
    "sent": Sent(),
    "failed": Failed("HTTP 500"),
    "hold": Hold(NOW + timedelta(minutes=1), "rate limit"),
    "batch": Batch(),
    "follow": Follow("dg_1", sent=True),
    "requeue": Requeue(),
    "release": Release(),
}
# Which events apply to a due row in each status (a sending row's lease is stale here).
ALLOWED = {
    S.PENDING: {"claim"},
    S.FAILED: {"claim"},
    S.SENDING: {"claim", "sent", "failed", "hold", "release"},
    S.DIGEST: {"batch"},
    S.HELD: {"batch"},
    S.BATCHED: {"follow"},
    S.DEAD: {"requeue"},
    S.SENT: set(),
    S.SILENCED: set(),
}


def state(status: DeliveryStatus, attempts: int = 1, **fields: object) -> RowState:
    base = RowState(status, attempts, next_attempt_at=NOW, claimed_at=NOW - LEASE)
    return replace(base, **fields)  # type: ignore[arg-type]


def test_the_transition_table_is_exactly_the_documented_one() -> None:
    assert set(ALLOWED) == set(DeliveryStatus)
    for status in DeliveryStatus:
        applies = set()
        for name, event in EVENTS.items():
            try:
                transition(state(status), event, NOW, POLICY)
                applies.add(name)
            except IllegalTransition:
                pass
        assert applies == ALLOWED[status], status


def test_a_claim_takes_a_due_row_and_counts_the_attempt() -> None:
    claimed = transition(state(S.PENDING, 0), Claim(LEASE), NOW, POLICY)
    assert (claimed.status, claimed.attempts, claimed.claimed_at) == (S.SENDING, 1, NOW)
    assert transition(state(S.FAILED, 2), Claim(LEASE), NOW, POLICY).attempts == 3


def test_a_row_not_yet_due_or_freshly_claimed_is_not_claimable() -> None:
    later = state(S.PENDING, 0, next_attempt_at=NOW + timedelta(seconds=1))
    fresh = state(S.SENDING, claimed_at=NOW - LEASE + timedelta(seconds=1))
    for row in (later, fresh):
        assert not claimable(row, NOW, LEASE)
        with pytest.raises(IllegalTransition):
            transition(row, Claim(LEASE), NOW, POLICY)


def test_sent_is_final_and_clears_the_error() -> None:
    sent = transition(state(S.SENDING, last_error="HTTP 500"), Sent(), NOW, POLICY)
    assert (sent.status, sent.sent_at, sent.last_error) == (S.SENT, NOW, None)
    assert not claimable(sent, NOW + timedelta(days=30), LEASE)


def test_a_failure_waits_the_schedule_then_the_row_is_dead() -> None:
    first = transition(state(S.SENDING, 1), Failed("HTTP 500"), NOW, POLICY)
    assert (first.status, first.next_attempt_at) == (S.FAILED, NOW + timedelta(seconds=5))
    second = transition(state(S.SENDING, 2), Failed("HTTP 500"), NOW, POLICY)
    assert second.next_attempt_at == NOW + timedelta(minutes=5)
    spent = transition(state(S.SENDING, 3), Failed("HTTP 500"), NOW, POLICY)
    assert (spent.status, spent.last_error) == (S.DEAD, "HTTP 500")


def test_a_permanent_failure_is_dead_at_once_and_retry_after_stretches_the_wait() -> None:
    dead = transition(state(S.SENDING, 1), Failed("HTTP 400", permanent=True), NOW, POLICY)
    assert dead.status is S.DEAD
    slow = transition(state(S.SENDING, 1), Failed("429", retry_after=120), NOW, POLICY)
    assert slow.next_attempt_at == NOW + timedelta(seconds=120)


def test_an_error_message_is_capped() -> None:
    long = transition(state(S.SENDING, 9), Failed("x" * 10_000), NOW, POLICY)
    assert len(long.last_error or "") == 500


def test_a_hold_is_not_an_attempt() -> None:
    until = NOW + timedelta(minutes=1)
    held = transition(state(S.SENDING, 1), Hold(until, "rate limit 2 per 1m"), NOW, POLICY)
    assert (held.status, held.attempts, held.next_attempt_at) == (S.HELD, 0, until)
    assert held.last_error == "rate limit 2 per 1m"


def test_a_release_gives_a_claimed_row_back_due_now_and_is_not_an_attempt() -> None:
    released = transition(state(S.SENDING, 2), Release(), NOW, POLICY)
    assert (released.status, released.attempts, released.claimed_at) == (S.PENDING, 1, None)
    assert released.next_attempt_at == NOW and claimable(released, NOW, LEASE)


def test_digest_and_held_rows_batch_when_due() -> None:
    for status in (S.DIGEST, S.HELD):
        assert transition(state(status), Batch(), NOW, POLICY).status is S.BATCHED
        early = state(status, next_attempt_at=NOW + timedelta(seconds=1))
        assert not batchable(early, NOW)


def test_batched_rows_follow_their_digest() -> None:
    sent = transition(state(S.BATCHED), Follow("dg_1", sent=True), NOW, POLICY)
    assert (sent.status, sent.sent_at) == (S.SENT, NOW)
    dead = transition(state(S.BATCHED), Follow("dg_1", False, "SMTP 550"), NOW, POLICY)
    assert (dead.status, dead.last_error) == (S.DEAD, "digest dg_1: SMTP 550")


def test_a_requeued_dead_row_starts_over_with_the_same_identity() -> None:
    again = transition(state(S.DEAD, 4), Requeue(), NOW, POLICY)
    assert (again.status, again.attempts, again.next_attempt_at) == (S.PENDING, 0, NOW)
    assert claimable(again, NOW, LEASE)


def test_a_channel_s_retry_keys_are_merged_over_the_service_default() -> None:
    service = (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1))
    jitter_only = LogConfig.model_validate({"id": "c", "type": "log", "retry": {"jitter": 0.2}})
    merged = retry_policy(service, jitter_only)
    assert (merged.schedule, merged.jitter) == (service, 0.2)
    own = LogConfig.model_validate({"id": "c", "type": "log", "retry": ["5s", "5m"]})
    mine = retry_policy(service, own)
    assert mine.schedule == (timedelta(seconds=5), timedelta(minutes=5))
    assert mine.jitter == RetryPolicy().jitter
    plain = LogConfig.model_validate({"id": "c", "type": "log"})
    assert retry_policy(service, plain).schedule == service
    assert retry_policy(service, None).schedule == service


def test_the_sql_claim_condition_agrees_with_the_pure_one() -> None:
    """``claimable_rows`` (what the sweep selects) and ``claimable`` decide alike."""
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine, tables=[Delivery.__table__])
    grid = [
        state(status, next_attempt_at=NOW + offset, claimed_at=NOW - LEASE + offset)
        for status in DeliveryStatus
        for offset in (-timedelta(seconds=1), timedelta(0), timedelta(seconds=1))
    ]
    with Session(engine) as session:
        for n, row in enumerate(grid):
            session.add(
                Delivery(
                    id=f"d{n}",
                    match_id=n,
                    channel_id="c",
                    status=row.status,
                    attempts=row.attempts,
                    next_attempt_at=row.next_attempt_at,
                    claimed_at=row.claimed_at,
                    created_at=NOW,
                )
            )
        session.flush()
        chosen = set(
            session.scalars(sa.select(Delivery.id).where(claimable_rows(Delivery, NOW, LEASE)))
        )
    engine.dispose()
    assert chosen == {f"d{n}" for n, row in enumerate(grid) if claimable(row, NOW, LEASE)}
    assert chosen  # the grid holds claimable rows at all
