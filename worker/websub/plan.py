"""Pure WebSub decisions: what to do with each feed's subscription, and how often to poll
a feed that a hub pushes. Every function takes the time it decides for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from feeds.websub import HubLink
from worker.models import PushState

VERIFY_TIMEOUT = timedelta(minutes=5)  # a hub that has not verified by then has failed
RENEW_AT = 0.8  # renew when this share of the lease has run
RETRY_SCHEDULE = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
UNSUBSCRIBE_ATTEMPTS = 3  # then the row goes: the hub's lease ends it anyway


class Action(StrEnum):
    SUBSCRIBE = "subscribe"  # a new subscription, a renewal, or a retry after a failure
    UNSUBSCRIBE = "unsubscribe"  # the feed left the config (or names no hub any more)
    LAPSE = "lapse"  # no verification in time, or the lease ran out: back to polling


@dataclass(frozen=True, slots=True)
class PushRecord:
    """A subscription as the store holds it."""

    feed_id: str
    hub_url: str
    topic_url: str
    callback_token: str
    secret: str
    state: PushState
    next_attempt_at: datetime
    expires_at: datetime | None = None
    lease_seconds: int | None = None
    error_count: int = 0
    last_error: str | None = None
    pushes: int = 0
    refused_pushes: int = 0


def next_action(
    sub: PushRecord | None, hub: HubLink | None, wanted: bool, now: datetime
) -> Action | None:
    """What a feed's subscription needs now. ``wanted``: the feed is configured, enabled,
    polled as a feed, and the service has a public URL for hubs to call back."""
    if not wanted or hub is None:
        if sub is None:
            return None
        due = now >= sub.next_attempt_at
        return Action.UNSUBSCRIBE if sub.state != PushState.UNSUBSCRIBING or due else None
    if sub is None or (sub.hub_url, sub.topic_url) != (hub.hub, hub.topic):
        return Action.SUBSCRIBE
    if sub.state == PushState.LIVE and sub.expires_at is not None and sub.expires_at <= now:
        return Action.LAPSE
    if now < sub.next_attempt_at:
        return None
    if sub.state == PushState.PENDING:
        return Action.LAPSE
    return Action.SUBSCRIBE  # live: renew; failed: retry; unsubscribing: wanted again


def renewal(sub: PushRecord | None, hub: HubLink) -> bool:
    """A request that renews a live subscription keeps its callback and secret, so pushes
    under the old lease still verify while the hub confirms the new one."""
    return (
        sub is not None
        and sub.state == PushState.LIVE
        and (sub.hub_url, sub.topic_url) == (hub.hub, hub.topic)
    )


def after_verified(lease: timedelta, now: datetime) -> tuple[datetime, datetime]:
    """(expires_at, next_attempt_at): the lease, and when to renew it."""
    return now + lease, now + lease * RENEW_AT


def retry_at(error_count: int, now: datetime) -> datetime:
    """When to try again after the ``error_count``-th failure in a row (1-based)."""
    step = RETRY_SCHEDULE[min(max(error_count, 1), len(RETRY_SCHEDULE)) - 1]
    return now + step


def lease_from(value: str | None, asked: timedelta) -> timedelta:
    """The lease a hub's verification grants (``hub.lease_seconds``), else the one asked."""
    if value is not None and value.strip().isdigit() and 0 < int(value) <= 10 * 365 * 86400:
        return timedelta(seconds=int(value))
    return asked


def is_live(sub: PushRecord | None, now: datetime) -> bool:
    return (
        sub is not None
        and sub.state == PushState.LIVE
        and sub.expires_at is not None
        and sub.expires_at > now
    )


def poll_interval(interval: timedelta, live: bool, safety_net: timedelta) -> timedelta:
    """While a hub pushes, polling is a slow safety net; otherwise the learned interval."""
    return max(interval, safety_net) if live else interval
