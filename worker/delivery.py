"""Deliver one outbox row (a delivery or a digest): claim, render, send, record.

Safe to run twice: a row is claimed before it is sent, and a sent row is never claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.channels.base import Channel, ChannelConfig, ChannelGoneError, DeliveryError
from alerts.controls import RetryPolicy
from alerts.types import Alert, AlertItem, AlertStory, AlertWatchlist, Digest, Hit
from alerts.updates import update_text
from worker import metrics, store
from worker.config import Config
from worker.models import Delivery, DigestRow, Item, MatchRow, Story, utcnow
from worker.runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: str
    status: str  # "sent", "failed" (will retry), "dead", "held", "skipped" (not claimable)
    retry_in: timedelta | None = None
    error: str | None = None


def build_alert(config: Config, session: Session, delivery: Delivery) -> Alert:
    match = session.get(MatchRow, delivery.match_id)
    item = session.get(Item, match.item_id)
    story = session.get(Story, item.story_id) if item.story_id else None
    sources = tuple(store.story_sources(session, item.story_id))
    watchlist = config.watchlist(match.watchlist_id)
    return Alert(
        alert_id=f"alr_{match.id}",
        delivery_id=delivery.id,
        created_at=match.created_at,
        watchlist=AlertWatchlist(
            id=match.watchlist_id,
            title=watchlist.title if watchlist else match.watchlist_id,
            severity=match.severity,
        ),
        item=AlertItem(
            title=item.title,
            url=item.canonical_url,
            feed_id=item.feed_id,
            published_at=item.published_at,
            summary=item.summary,
        ),
        hits=tuple(Hit(**h) for h in match.hits),
        snippet=match.snippet,
        also_reported_by=tuple(s for s in sources if s != item.feed_id),
        story=AlertStory(story.id, story.first_seen, sources) if story else None,
        update=_update(match.story_key, item.feed_id),
    )


def _update(story_key: str, feed_id: str) -> str | None:
    """``story:ID:UPDATE`` keys mark update alerts (see alerts/updates.py)."""
    parts = story_key.split(":", 2)
    return update_text(parts[2], feed_id) if len(parts) == 3 else None


def retry_policy(rt: Runtime, channel: ChannelConfig | None) -> RetryPolicy:
    """The channel's own ``retry`` when set, else the service default."""
    if channel is not None and "retry" in channel.model_fields_set:
        return channel.retry
    return RetryPolicy(schedule=rt.retry_schedule)


def deliver(rt: Runtime, delivery_id: str, now: datetime | None = None) -> DeliveryOutcome:
    now = now or utcnow()
    config = rt.config.current()
    with rt.sessions.begin() as session:
        delivery = store.claim_delivery(session, delivery_id, now, rt.delivery_lease)
        if delivery is None:
            return DeliveryOutcome(delivery_id, "skipped")
        channel_config = config.channels.get(delivery.channel_id)
        if held := _over_rate_limit(session, channel_config, delivery, now):
            return held
        disabled = store.channel_disabled(session, delivery.channel_id)
        alert = build_alert(config, session, delivery)
        fetched = session.get(Item, session.get(MatchRow, delivery.match_id).item_id).fetched_at
    try:
        _channel(rt, delivery.channel_id, disabled).send(alert)
    except DeliveryError as exc:
        return _record_failure(rt, channel_config, delivery, exc)
    sent_at = utcnow()
    with rt.sessions.begin() as session:
        store.record_delivery_sent(session, session.merge(delivery), sent_at)
    log.info("alert delivered", delivery_id=delivery_id, channel_id=delivery.channel_id)
    metrics.observe_delivery(delivery.channel_id, "sent", delivery.attempts)
    metrics.observe_alert_latency(delivery.channel_id, alert.item.published_at, fetched, sent_at)
    return DeliveryOutcome(delivery_id, "sent")


def _channel(rt: Runtime, channel_id: str, disabled: str | None) -> Channel:
    channel = rt.channel(channel_id)
    if channel is None:
        raise DeliveryError("channel is no longer configured", permanent=True)
    if disabled:
        raise DeliveryError(f"channel disabled: {disabled}", permanent=True)
    return channel


def _over_rate_limit(
    session: Session, channel: ChannelConfig | None, delivery: Delivery, now: datetime
) -> DeliveryOutcome | None:
    """Past the limit, the rest of the burst is held until one release time and goes out
    grouped (the sweep batches it)."""
    if channel is None or channel.rate_limit is None:
        return None
    limit = channel.rate_limit
    store.lock_channel(session, delivery.channel_id)  # one worker at a time counts the window
    if limit.allows(store.sent_since(session, delivery, limit.since(now))):
        return None
    until = limit.release_at(now, store.held_release(session, delivery.channel_id))
    store.hold_for_rate_limit(
        session,
        delivery,
        until,
        f"rate limit {limit.count} per {limit.per}: sent grouped with the burst",
    )
    return DeliveryOutcome(delivery.id, "held")


def _record_failure(
    rt: Runtime, channel: ChannelConfig | None, delivery: Delivery, exc: DeliveryError
) -> DeliveryOutcome:
    now = utcnow()
    policy = retry_policy(rt, channel)
    delay = None if exc.permanent else policy.delay(delivery.attempts, exc.retry_after)
    with rt.sessions.begin() as session:
        row = session.merge(delivery)
        store.record_delivery_failure(session, row, exc.message, now + delay if delay else None)
        if isinstance(exc, ChannelGoneError):
            store.disable_channel(session, delivery.channel_id, exc.message)
        errors = store.channel_errors(session, delivery.channel_id)
    status = "failed" if delay else "dead"
    metrics.observe_delivery(delivery.channel_id, status, delivery.attempts)
    log.warning(
        "delivery failed",
        delivery_id=delivery.id,
        channel_id=delivery.channel_id,
        attempts=delivery.attempts,
        error=exc.message,
        status=status,
    )
    if errors >= FAILING_AFTER and (errors - FAILING_AFTER) % 10 == 0:
        warn_failing(rt, f"channel {delivery.channel_id}", errors, exc.message)
    return DeliveryOutcome(delivery.id, status, retry_in=delay, error=exc.message)


FAILING_AFTER = 5  # consecutive failures before the channel is reported as failing


def warn_failing(rt: Runtime, subject: str, errors: int, message: str) -> None:
    """A channel or feed that keeps failing is logged, and told to the ops channel if set."""
    log.warning("failing", subject=subject, consecutive_errors=errors, error=message)
    ops = rt.config.current().ops_channel
    if ops and subject != f"channel {ops}" and (channel := rt.channel(ops)) is not None:
        try:
            channel.send(ops_alert(subject, errors, message))
        except DeliveryError as exc:
            log.error("ops channel failed too", channel_id=ops, error=exc.message)


def ops_alert(subject_id: str, errors: int, message: str) -> Alert:
    now = utcnow()
    title = f"{subject_id} is failing: {errors} errors in a row"
    slug = subject_id.replace(" ", "_")
    return Alert(
        alert_id=f"ops_{slug}_{errors}",
        delivery_id=f"ops_{slug}_{errors}_{int(now.timestamp())}",
        created_at=now,
        watchlist=AlertWatchlist(
            id="watchfloor-ops", title="Watchfloor operations", severity="high"
        ),
        item=AlertItem(
            title=title, url="", feed_id="watchfloor", published_at=now, summary=message
        ),
        hits=(),
        snippet=message,
    )


def deliver_digest(rt: Runtime, digest_id: str, now: datetime | None = None) -> DeliveryOutcome:
    now = now or utcnow()
    config = rt.config.current()
    with rt.sessions.begin() as session:
        row = store.claim(session, DigestRow, digest_id, now, rt.delivery_lease)
        if row is None:
            return DeliveryOutcome(digest_id, "skipped")
        members = session.scalars(
            select(Delivery).where(Delivery.digest_id == digest_id).order_by(Delivery.created_at)
        ).all()
        alerts = tuple(build_alert(config, session, d) for d in members)
        disabled = store.channel_disabled(session, row.channel_id)
        digest = Digest(
            digest_id, row.channel_id, row.window_start, row.window_end, alerts, row.reason
        )
    try:
        _channel(rt, row.channel_id, disabled).send_digest(digest)
    except DeliveryError as exc:
        return _record_digest_failure(rt, config.channels.get(row.channel_id), row, exc)
    with rt.sessions.begin() as session:
        store.record_digest_sent(session, session.merge(row), utcnow())
    log.info("digest delivered", digest_id=digest_id, channel_id=row.channel_id, alerts=len(alerts))
    return DeliveryOutcome(digest_id, "sent")


def _record_digest_failure(
    rt: Runtime, channel: ChannelConfig | None, row: DigestRow, exc: DeliveryError
) -> DeliveryOutcome:
    now = utcnow()
    delay = (
        None if exc.permanent else retry_policy(rt, channel).delay(row.attempts, exc.retry_after)
    )
    with rt.sessions.begin() as session:
        store.record_digest_failure(
            session, session.merge(row), exc.message, now + delay if delay else None
        )
        if isinstance(exc, ChannelGoneError):
            store.disable_channel(session, row.channel_id, exc.message)
    status = "failed" if delay else "dead"
    log.warning(
        "digest failed",
        digest_id=row.id,
        channel_id=row.channel_id,
        error=exc.message,
        status=status,
    )
    return DeliveryOutcome(row.id, status, retry_in=delay, error=exc.message)
