"""Deliver one outbox row, a single alert or a digest, by one path: claim, build the
message, send, record.

Safe to run twice: a row is claimed before it is sent, and a sent row is never claimed
again. Whatever the row, the record is the same: its transition, the channel's state, the
metrics, and an ops alert when the channel crosses its failing threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from alerts.channels.base import Channel, ChannelConfig
from alerts.controls import RetryPolicy
from alerts.types import Alert, Digest
from common.errors import ChannelGoneError, DeliveryError
from worker import metrics
from worker.models import DeliveryStatus, utcnow
from worker.outbox import messages
from worker.outbox import store as outbox_store
from worker.outbox.messages import Built
from worker.outbox.ops import raise_ops_alert
from worker.outbox.store import Kind, OutboxRow
from worker.outbox.transitions import Failed, Hold, Sent, retry_policy
from worker.planning import channel_failing
from worker.runtime import Runtime
from worker.store import channels as channels_store

log = structlog.get_logger(__name__)
S = DeliveryStatus


@dataclass(frozen=True)
class DeliveryOutcome:
    row_id: str
    status: str  # a DeliveryStatus value, or "skipped" (not claimable: sent, taken, not due)
    retry_in: timedelta | None = None
    error: str | None = None
    enqueue: list[str] = field(default_factory=list)  # ops deliveries to send after commit

    @property
    def delivery_id(self) -> str:
        return self.row_id


def deliver(rt: Runtime, kind: Kind, row_id: str, now: datetime | None = None) -> DeliveryOutcome:
    now = now or utcnow()
    config = rt.config.current()
    with rt.sessions.begin() as session:
        row = outbox_store.claim(session, kind, row_id, now, rt.settings.delivery_lease)
        if row is None:
            return DeliveryOutcome(row_id, "skipped")
        channel_config = config.channels.get(row.channel_id)
        if kind is Kind.DELIVERY and (held := _over_rate_limit(session, channel_config, row, now)):
            return held
        built = messages.build(config, session, row)
        disabled = channels_store.health(session, row.channel_id).disabled_reason
    try:
        send(channel_for(rt, row.channel_id, disabled), built.message)
    except DeliveryError as exc:
        return _record_failure(rt, row, exc)
    return _record_sent(rt, row, built)


def send(channel: Channel, message: Alert | Digest) -> None:
    if isinstance(message, Digest):
        channel.send_digest(message)
    else:
        channel.send(message)


def channel_for(rt: Runtime, channel_id: str, disabled: str | None) -> Channel:
    channel = rt.channel(channel_id)
    if channel is None:
        raise DeliveryError("channel is no longer configured", permanent=True)
    if disabled:
        raise DeliveryError(f"channel disabled: {disabled}", permanent=True)
    return channel


def _over_rate_limit(
    session: Session, channel: ChannelConfig | None, row: OutboxRow, now: datetime
) -> DeliveryOutcome | None:
    """Past the limit, the rest of the burst is held until one release time and goes out
    grouped (the sweep batches it)."""
    if channel is None or channel.rate_limit is None:
        return None
    limit = channel.rate_limit
    channels_store.lock(session, row.channel_id)  # one worker at a time counts the window
    if limit.allows(outbox_store.sent_since(session, row.channel_id, [row.id], limit.since(now))):
        return None
    until = limit.release_at(now, outbox_store.held_release(session, row.channel_id))
    note = f"rate limit {limit.count} per {limit.per}: sent grouped with the burst"
    outbox_store.apply(session, row, Hold(until, note), now, channel.retry)
    return DeliveryOutcome(row.id, S.HELD.value)


def _record_sent(rt: Runtime, row: OutboxRow, built: Built) -> DeliveryOutcome:
    sent_at = utcnow()
    with rt.sessions.begin() as session:
        done = outbox_store.apply(session, row, Sent(), sent_at, _policy(rt, row))
        if done is not None:
            outbox_store.follow_digest(session, done, sent_at)
        channels_store.record_success(session, row.channel_id, sent_at)
    return sent_outcome(row, built, sent_at)


def sent_outcome(row: OutboxRow, built: Built, sent_at: datetime) -> DeliveryOutcome:
    """The log line and metrics of a sent row, recorded."""
    message = built.message
    log.info(
        "digest delivered" if row.kind is Kind.DIGEST else "alert delivered",
        **{f"{row.kind.value}_id": row.id},
        channel_id=row.channel_id,
        alerts=len(message.alerts) if isinstance(message, Digest) else 1,
    )
    metrics.observe_delivery(row.channel_id, "sent", row.state.attempts)
    alerts = message.alerts if isinstance(message, Digest) else (message,)
    for alert, fetched in zip(alerts, built.fetched, strict=False):
        metrics.observe_alert_latency(row.channel_id, alert.item.published_at, fetched, sent_at)
    return DeliveryOutcome(row.id, S.SENT.value)


def _record_failure(rt: Runtime, row: OutboxRow, exc: DeliveryError) -> DeliveryOutcome:
    now = utcnow()
    with rt.sessions.begin() as session:
        return record_failure(session, rt, row, exc, now)


def record_failure(
    session: Session, rt: Runtime, row: OutboxRow, exc: DeliveryError, now: datetime
) -> DeliveryOutcome:
    """Record a failed send in ``session``: the row's transition, the channel's error, and
    an ops alert when the channel crosses its failing threshold (sent after commit)."""
    event = Failed(exc.message, exc.permanent, exc.retry_after)
    done = outbox_store.apply(session, row, event, now, _policy(rt, row))
    if done is not None:
        outbox_store.follow_digest(session, done, now, exc.message)
    gone = isinstance(exc, ChannelGoneError)
    channel = channels_store.record_failure(session, row.channel_id, exc.message, disable=gone)
    enqueue: list[str] = []
    if channel_failing(channel.error_count):
        since = channel.last_success_at.isoformat() if channel.last_success_at else "never"
        key = f"channel:{row.channel_id}:since:{since}:errors:{channel.error_count}"
        subject = f"channel {row.channel_id}"
        enqueue = raise_ops_alert(
            session, rt.config.current(), key, subject, channel.error_count, exc.message, now
        )
    status = done.state.status if done is not None else S.FAILED
    retry_in = done.state.next_attempt_at - now if done and status is S.FAILED else None
    metrics.observe_delivery(row.channel_id, status.value, row.state.attempts)
    log.warning(
        "digest failed" if row.kind is Kind.DIGEST else "delivery failed",
        **{f"{row.kind.value}_id": row.id},
        channel_id=row.channel_id,
        attempts=row.state.attempts,
        error=exc.message,
        status=status.value,
    )
    return DeliveryOutcome(row.id, status.value, retry_in, exc.message, enqueue)


def _policy(rt: Runtime, row: OutboxRow) -> RetryPolicy:
    channel = rt.config.current().channels.get(row.channel_id)
    return retry_policy(rt.settings.retry_schedule, channel)
