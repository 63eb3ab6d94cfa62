"""Deliver one outbox row: claim it, render, send, record. Safe to run twice."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from alerts.channels.base import ChannelGoneError, DeliveryError
from alerts.types import Alert, AlertItem, AlertStory, AlertWatchlist, Hit
from worker import metrics, store
from worker.config import Config
from worker.models import Delivery, Item, MatchRow, Story, utcnow
from worker.runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: str
    status: str  # "sent", "failed" (will retry), "dead", "skipped" (not claimable)
    retry_in: timedelta | None = None
    error: str | None = None


def build_alert(
    config: Config,
    delivery: Delivery,
    match: MatchRow,
    item: Item,
    story: tuple[Story, list[str]] | None = None,
) -> Alert:
    watchlist = config.watchlist(match.watchlist_id)
    sources = tuple(story[1]) if story else ()
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
        story=AlertStory(story[0].id, story[0].first_seen, sources) if story else None,
    )


def retry_delay(
    schedule: tuple[timedelta, ...], attempts: int, hint: float | None
) -> timedelta | None:
    """Delay before the next attempt after ``attempts`` tries; None when out of attempts."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    jittered = base * random.uniform(0.9, 1.1)
    return max(jittered, timedelta(seconds=hint)) if hint else jittered


def deliver(rt: Runtime, delivery_id: str, now: datetime | None = None) -> DeliveryOutcome:
    now = now or utcnow()
    config = rt.config.current()
    with rt.sessions.begin() as session:
        delivery = store.claim_delivery(session, delivery_id, now, rt.delivery_lease)
        if delivery is None:
            return DeliveryOutcome(delivery_id, "skipped")
        match = session.get(MatchRow, delivery.match_id)
        item = session.get(Item, match.item_id)
        disabled = store.channel_disabled(session, delivery.channel_id)
        story = session.get(Story, item.story_id) if item.story_id else None
        sources = store.story_sources(session, item.story_id)
        alert = build_alert(config, delivery, match, item, (story, sources) if story else None)
    channel = rt.channel(delivery.channel_id)
    try:
        if channel is None:
            raise DeliveryError("channel is no longer configured", permanent=True)
        if disabled:
            raise DeliveryError(f"channel disabled: {disabled}", permanent=True)
        channel.send(alert)
    except DeliveryError as exc:
        return _record_failure(rt, delivery, exc)
    sent_at = utcnow()
    with rt.sessions.begin() as session:
        store.record_delivery_sent(session, session.merge(delivery), sent_at)
    log.info("alert delivered", delivery_id=delivery_id, channel_id=delivery.channel_id)
    metrics.observe_delivery(delivery.channel_id, "sent", delivery.attempts)
    metrics.observe_alert_latency(delivery.channel_id, item.published_at, item.fetched_at, sent_at)
    return DeliveryOutcome(delivery_id, "sent")


def _record_failure(rt: Runtime, delivery: Delivery, exc: DeliveryError) -> DeliveryOutcome:
    now = utcnow()
    delay = (
        None
        if exc.permanent
        else retry_delay(rt.retry_schedule, delivery.attempts, exc.retry_after)
    )
    with rt.sessions.begin() as session:
        row = session.merge(delivery)
        store.record_delivery_failure(session, row, exc.message, now + delay if delay else None)
        if isinstance(exc, ChannelGoneError):
            store.disable_channel(session, delivery.channel_id, exc.message)
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
    return DeliveryOutcome(delivery.id, status, retry_in=delay, error=exc.message)
