"""Pure decisions of the poll and delivery paths: data in, a decision out, no I/O.

- when a feed is polled next: the interval its publishing rhythm earns, sooner when its
  window overflowed, and how far a failing one backs off;
- when a failing feed or channel is told to the ops channel (once per threshold crossed);
- which items of a first poll may alert;
- how a new delivery goes out: now, at the end of quiet hours, in a digest, or silenced.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.channels.base import ChannelConfig
from alerts.controls import hold_until
from alerts.watchlists import WatchList
from common.errors import IngestError
from feeds.sources import FeedSource
from feeds.types import FeedItem, FetchResult, ParsedFeed
from worker.models import DeliveryStatus
from worker.store.feeds import FeedState, PollRecord
from worker.store.silences import SilenceRecord

MAX_BACKOFF = timedelta(hours=6)
HINT_STRETCH = 4  # a server's max-age or <ttl> may stretch the interval up to 4x
CHANNEL_FAILING_AFTER = 5  # consecutive failures before a channel is told as failing
CHANNEL_FAILING_EVERY = 10  # and again every this many more


# Adaptive polling learns from the feed's items seen in the last two weeks, once it has five.
RHYTHM_SPAN = timedelta(days=14)
RHYTHM_SAMPLES = 5
POLLS_PER_GAP = 8  # adaptive polls per expected wait for a feed's next item


# --- polling --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cadence:
    """A feed's configured interval and the bounds an adaptive one stays within."""

    interval: timedelta
    min_interval: timedelta
    max_interval: timedelta

    @classmethod
    def of(cls, source: FeedSource, min_default: timedelta, max_default: timedelta) -> Cadence:
        """The feed's own bounds, else the service's, and never past its ``interval``."""
        low = source.min_interval or min(min_default, source.interval)
        high = source.max_interval or max(max_default, source.interval)
        return cls(source.interval, low, high)


def doorbell_rings(due: int, batch: int, most: int) -> int:
    """How many poll workers beat wakes: one per batch of due feeds, at most ``most``."""
    if due <= 0 or batch <= 0:
        return 0
    return min(-(-due // batch), max(most, 1))


def learned_interval(
    seen: Sequence[datetime],
    now: datetime,
    cadence: Cadence,
    watched_since: datetime | None = None,
) -> timedelta:
    """The interval a feed's own rhythm earns: how long its next item is expected to take,
    given how long the feed has been quiet, divided by ``POLLS_PER_GAP``, within the bounds.

    The expected wait is the mean residual gap over the last two weeks: of the feed's gaps
    between items longer than its present quiet spell, the mean of what was left of them.
    For a feed publishing at random (Poisson) it is the mean gap, this rule's old form, but
    real feeds are not random: a bursty one (a flurry, then a lull) backs off once the
    flurry is over and the next item is far away; a regular one (a column every 15 minutes)
    is polled faster as its next item comes due. Polls gather at the moments items come,
    which is what a median delay over items rewards: bench/freshness.py measures it on the
    corpus' real timelines. Fewer than five gaps as long as the quiet spell (quieter than
    its history can tell): the mean gap, quiet time included, so a feed that stops
    publishing drifts to ``max_interval``.

    Fewer than five items in two weeks: ``max_interval`` when the feed has been watched all
    that time (``watched_since``: a quiet feed, for which the old rule spent the configured
    interval), else ``interval`` (too new to tell).
    """
    recent = sorted(t for t in seen if now - RHYTHM_SPAN <= t <= now)
    if len(recent) < RHYTHM_SAMPLES:
        watched = watched_since is not None and watched_since <= now - RHYTHM_SPAN
        return cadence.max_interval if watched else cadence.interval
    quiet = now - recent[-1]
    left = [b - a - quiet for a, b in itertools.pairwise(recent) if b - a > quiet]
    if len(left) >= RHYTHM_SAMPLES:
        wait = sum(left, timedelta()) / len(left)
    else:
        wait = (now - recent[0]) / len(recent)
    return min(max(wait / POLLS_PER_GAP, cadence.min_interval), cadence.max_interval)


def window_overflowed(
    new_items: Sequence[datetime | None], items_in_feed: int, previous_success: datetime | None
) -> bool:
    """True when items may have fallen off the feed's window between two polls: every item
    of the document is new, and even the oldest was published after the previous successful
    poll (a feed of 10 items that got 12 since). ``new_items`` are their publication times."""
    if previous_success is None or not new_items or len(new_items) < items_in_feed:
        return False
    dates = [d for d in new_items if d is not None]
    return len(dates) == len(new_items) and min(dates) > previous_success


def after_overflow(interval: timedelta, cadence: Cadence) -> timedelta:
    """Poll sooner after an overflow: half the interval, not below ``min_interval``."""
    return max(interval / 2, cadence.min_interval)


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


def digests_seen(parsed: ParsedFeed, first_poll: bool) -> tuple[str, ...]:
    """The items a poll records as seen, for the next poll to skip unread. Items the cap
    left unread are the backlog on a first poll (seen, as the first-poll rule has it); on a
    later one they are a burst bigger than the cap, left unseen so the next poll reads them."""
    if first_poll or not parsed.capped:
        return parsed.digests
    unread = set(parsed.capped)
    return tuple(d for d in parsed.digests if d not in unread)


def alertable(
    published_at: datetime | None, first_poll: bool, window: timedelta, now: datetime
) -> bool:
    """On a feed's first poll, only recent items alert, so adding a feed never floods."""
    if not first_poll:
        return True
    return published_at is not None and published_at >= now - window


@dataclass(frozen=True, slots=True)
class FollowPlan:
    """Which new items of a page source get their article fetched this poll, and which
    wait for the next poll (past the per-poll cap)."""

    follow: tuple[FeedItem, ...] = ()
    defer: tuple[FeedItem, ...] = ()


def follow_plan(
    new_items: Sequence[FeedItem], first_poll: bool, window: timedelta, now: datetime, cap: int
) -> FollowPlan:
    """Follow at most ``cap`` new items, the rest next poll. On a first poll only items
    that may alert are followed, and none waits: the others are recorded as seen, as for
    feeds, so adding a page of 50 old links costs no 50 fetches."""
    if cap <= 0 or not new_items:
        return FollowPlan()
    if first_poll:
        recent = [i for i in new_items if alertable(i.published_at, True, window, now)]
        return FollowPlan(follow=tuple(recent[:cap]))
    return FollowPlan(follow=tuple(new_items[:cap]), defer=tuple(new_items[cap:]))


def poll_succeeded(
    source: FeedSource,
    result: FetchResult,
    now: datetime,
    body_hash: str | None = None,
    ttl_seconds: int | None = None,
    interval: timedelta | None = None,
    overflowed: bool = False,
) -> PollRecord:
    """What a successful poll writes: validators, a permanent move, the next poll after
    ``interval`` (the learned one; default the configured one)."""
    hint = max(filter(None, (result.max_age, ttl_seconds)), default=None)
    interval = interval or source.interval
    if overflowed:
        hint = None  # a server's max-age must not hold back the poll that catches up
    return PollRecord(
        next_poll_at=next_poll(interval, now, hint),
        etag=result.etag,
        last_modified=result.last_modified,
        url=result.permanent_url,
        body_hash=body_hash,
        interval=interval,
        overflowed=overflowed,
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
