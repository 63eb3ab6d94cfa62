"""Feeds: one row per configured feed, holding its poll state and error record."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, Update, func, select, update
from sqlalchemy.orm import Session

from feeds.sources import FeedSource
from feeds.websub import HubLink
from worker.models import Feed
from worker.store import ERROR_MAX, insert_ignore


@dataclass(frozen=True, slots=True)
class FeedState:
    """What a poll needs to know of a feed, read before it fetches."""

    id: str
    url: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    error_count: int
    created_at: datetime
    last_success_at: datetime | None
    last_error_at: datetime | None
    disabled_reason: str | None

    @property
    def first_poll(self) -> bool:
        return self.last_success_at is None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What a poll writes back (worker/planning.py decides it)."""

    next_poll_at: datetime
    etag: str | None = None  # None keeps the stored one
    last_modified: str | None = None
    url: str | None = None  # a permanent redirect's target
    body_hash: str | None = None
    error: str | None = None  # None: the poll succeeded
    disable: bool = False
    interval: timedelta | None = None  # the interval chosen (None: keep the stored one)
    overflowed: bool = False  # items may have fallen off the feed's window
    hub_checked: bool = False  # a full body was read: ``hub`` is what it names (or None)
    hub: HubLink | None = None


def sync(session: Session, sources: Iterable[FeedSource], now: datetime) -> None:
    """Make a row for every configured feed; a changed URL in config resets its state."""
    by_id = {source.id: source for source in sources}
    known = set(session.scalars(select(Feed.id).where(Feed.id.in_(list(by_id)))))
    new_rows = [
        {"id": s.id, "url": s.url, "config_url": s.url, "next_poll_at": now}
        for s in by_id.values()
        if s.id not in known
    ]
    # two polls of a new feed may both get here: the insert must not fail
    insert_ignore(session, Feed.__table__, new_rows, ["id"])
    for row in session.scalars(select(Feed).where(Feed.id.in_(list(by_id)))):
        source = by_id[row.id]
        if row.config_url != source.url:
            row.url = row.config_url = source.url
            row.etag = row.last_modified = row.body_hash = row.disabled_reason = None
            row.error_count, row.next_poll_at = 0, now


def state(session: Session, feed_id: str) -> FeedState:
    row = session.get(Feed, feed_id, populate_existing=True)
    if row is None:
        raise LookupError(f"feed {feed_id!r} has no row: call sync() first")
    return FeedState(
        id=row.id,
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        body_hash=row.body_hash,
        error_count=row.error_count,
        created_at=row.created_at,
        last_success_at=row.last_success_at,
        last_error_at=row.last_error_at,
        disabled_reason=row.disabled_reason,
    )


def claim_due(
    session: Session, feed_ids: Iterable[str], now: datetime, lease: timedelta
) -> list[str]:
    """Push ``next_poll_at`` ahead atomically, so two beats never enqueue one feed twice."""
    due = session.scalars(due_query(feed_ids, now)).all()
    claimed = []
    for feed_id in due:
        result = session.execute(claim_statement(feed_id, now, lease))
        if getattr(result, "rowcount", 0):
            claimed.append(feed_id)
    return claimed


def due_query(feed_ids: Iterable[str], now: datetime) -> Select[str]:
    """The configured, enabled feeds due at ``now`` (worker.store.plans explains it)."""
    return select(Feed.id).where(
        Feed.id.in_(list(feed_ids)), Feed.next_poll_at <= now, Feed.disabled_reason.is_(None)
    )


def claim_statement(feed_id: str, now: datetime, lease: timedelta) -> Update:
    """Claim one due feed: it matches no row once another process has claimed it."""
    return (
        update(Feed)
        .where(Feed.id == feed_id, Feed.next_poll_at <= now)
        .values(next_poll_at=now + lease)
    )


def record_poll(session: Session, feed_id: str, record: PollRecord, now: datetime) -> int:
    """Write a poll's outcome; returns the feed's consecutive error count after it."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise LookupError(f"feed {feed_id!r} has no row")
    feed.etag = record.etag or feed.etag
    feed.last_modified = record.last_modified or feed.last_modified
    feed.url = record.url or feed.url
    feed.body_hash = record.body_hash or feed.body_hash
    feed.last_polled_at, feed.next_poll_at = now, record.next_poll_at
    if record.interval is not None:
        feed.poll_interval_s = round(record.interval.total_seconds())
    if record.hub_checked:
        feed.hub_url = record.hub.hub if record.hub else None
        feed.topic_url = record.hub.topic if record.hub else None
    if record.overflowed:
        feed.window_overflows = (feed.window_overflows or 0) + 1
        feed.last_overflow_at = now
    if record.error is None:
        feed.error_count, feed.last_error = 0, None
        feed.last_success_at = now
        return 0
    feed.error_count += 1
    feed.last_error, feed.last_error_at = record.error[:ERROR_MAX], now
    if record.disable:
        feed.disabled_reason = record.error[:ERROR_MAX]
    return feed.error_count


def in_error(session: Session) -> int:
    """Feeds whose last poll failed (not the disabled ones): a gauge for the metrics."""
    failing = (Feed.error_count > 0) & Feed.disabled_reason.is_(None)
    return session.scalar(select(func.count()).select_from(Feed).where(failing)) or 0


def hubs(session: Session) -> dict[str, HubLink]:
    """The WebSub hub each feed's last full fetch named."""
    rows = session.execute(
        select(Feed.id, Feed.hub_url, Feed.topic_url).where(Feed.hub_url.is_not(None))
    )
    return {feed_id: HubLink(hub, topic or "") for feed_id, hub, topic in rows if hub}
