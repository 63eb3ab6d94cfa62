"""Pure decisions of the poll and delivery paths: data in, a decision out, no I/O.

- when a feed is polled next, and how far a failing one backs off;
- when a failing feed or channel is told to the ops channel (once per threshold crossed);
- which items of a first poll may alert;
- how a new delivery goes out: now, at the end of quiet hours, in a digest, or silenced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.channels.base import ChannelConfig
from alerts.controls import hold_until
from alerts.watchlists import WatchList
from common.errors import IngestError
from feeds.sources import FeedSource
from feeds.types import FetchResult
from worker.models import DeliveryStatus
from worker.store.feeds import FeedState, PollRecord
from worker.store.silences import SilenceRecord

MAX_BACKOFF = timedelta(hours=6)
HINT_STRETCH = 4  # a server's max-age or <ttl> may stretch the interval up to 4x
CHANNEL_FAILING_AFTER = 5  # consecutive failures before a channel is told as failing
CHANNEL_FAILING_EVERY = 10  # and again every this many more


# --- polling --------------------------------------------------------------------------------


def next_poll(interval: timedelta, now: datetime, hint_seconds: int | None = None) -> datetime:
    """The configured interval; a server's max-age or <ttl> may stretch it up to 4x."""
    if hint_seconds:
        interval = max(interval, min(timedelta(seconds=hint_seconds), interval * HINT_STRETCH))
    return now + interval


def backoff(interval: timedelta, errors_before: int, retry_after: float | None) -> timedelta:
    """Exponential from the interval, capped at 6 h; a server's Retry-After may stretch it."""
    wait: timedelta = min(interval * 2 ** min(errors_before, 16), MAX_BACKOFF)
    if retry_after:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait


def crosses_failing_threshold(feed: FeedState, threshold: timedelta, now: datetime) -> bool:
    """True on the first failed poll after the feed has been failing for ``threshold``."""
    since = feed.last_success_at or feed.created_at
    if now - since < threshold:
        return False
    return feed.last_error_at is None or feed.last_error_at - since < threshold


def failing_since(feed: FeedState) -> datetime:
    return feed.last_success_at or feed.created_at


def alertable(
    published_at: datetime | None, first_poll: bool, window: timedelta, now: datetime
) -> bool:
    """On a feed's first poll, only recent items alert, so adding a feed never floods."""
    if not first_poll:
        return True
    return published_at is not None and published_at >= now - window


def poll_succeeded(
    source: FeedSource,
    result: FetchResult,
    now: datetime,
    body_hash: str | None = None,
    ttl_seconds: int | None = None,
) -> PollRecord:
    """What a successful poll writes: validators, a permanent move, the next poll."""
    hint = max(filter(None, (result.max_age, ttl_seconds)), default=None)
    return PollRecord(
        next_poll_at=next_poll(source.interval, now, hint),
        etag=result.etag,
        last_modified=result.last_modified,
        url=result.permanent_url,
        body_hash=body_hash,
    )


def poll_failed(source: FeedSource, feed: FeedState, exc: IngestError, now: datetime) -> PollRecord:
    """A failed poll backs off (a permanent error disables the feed)."""
    wait = backoff(source.interval, feed.error_count, exc.retry_after)
    message = f"{exc.kind}: {exc.message}"
    return PollRecord(next_poll_at=now + wait, error=message, disable=exc.permanent)


def channel_failing(errors: int) -> bool:
    """Tell ops at the 5th consecutive failure, then at every 10th more (15, 25...)."""
    past = errors - CHANNEL_FAILING_AFTER
    return past >= 0 and past % CHANNEL_FAILING_EVERY == 0


# --- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    status: DeliveryStatus  # pending (send at next_attempt_at), digest (batch then), silenced
    next_attempt_at: datetime
    note: str | None = None  # shown as the delivery's last_error, so operators see why


def find_silence(
    silences: Sequence[SilenceRecord], watchlist_id: str, channel_id: str, now: datetime
) -> SilenceRecord | None:
    return next(
        (
            s
            for s in silences
            if s.watchlist_id == watchlist_id
            and s.channel_id in (None, channel_id)
            and s.starts_at <= now < s.ends_at
        ),
        None,
    )


def plan_delivery(
    watchlist: WatchList | None,
    channel: ChannelConfig | None,
    silence: SilenceRecord | None,
    now: datetime,
    severity: str | None = None,
) -> Plan:
    """``watchlist`` None is an ops alert: it follows only the channel's own controls."""
    if silence is not None:
        note = f"silenced until {silence.ends_at:%Y-%m-%d %H:%M} UTC: {silence.reason}".strip()
        return Plan(DeliveryStatus.SILENCED, now, note.rstrip(": "))
    schedule = watchlist.digest if watchlist is not None and watchlist.mode == "digest" else None
    if schedule is None and channel is not None and channel.mode == "digest":
        schedule = channel.digest
    if schedule is not None:
        return Plan(DeliveryStatus.DIGEST, schedule.window_end(now), f"in the digest of {schedule}")
    quiet = channel.quiet_hours if channel is not None else None
    release = hold_until(quiet, severity or (watchlist.severity if watchlist else "high"), now)
    if release is not None:
        note = f"held for quiet hours until {release:%H:%M} UTC"
        return Plan(DeliveryStatus.PENDING, release, note)
    return Plan(DeliveryStatus.PENDING, now)
