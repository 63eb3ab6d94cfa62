"""Feeds: one row per configured feed, holding its poll state and error record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
    window_overflows: int = 0
    item_digests: frozenset[str] = frozenset()  # the last document's items (feeds.parse)

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
    item_digests: tuple[str, ...] | None = None  # the document's items; None keeps the stored


def sync(session: Session, sources: Iterable[FeedSource], now: datetime) -> None:
    """Make a row for each of these configured feeds; a changed URL in config resets its
    state. A feed the config disables is left unclaimable (``active``)."""
    by_id = {source.id: source for source in sources}
    rows: Iterable[Any] = (
        [] if not by_id else session.execute(_sync_columns().where(Feed.id.in_(list(by_id))))
    )
    _apply_config(session, by_id, rows, now)


def sync_all(session: Session, sources: Iterable[FeedSource], now: datetime) -> None:
    """``sync`` for the whole config, also marking every feed it no longer holds inactive,
    so claims (which go by ``next_poll_at``, not by id) pass it by. One read of the table."""
    by_id = {source.id: source for source in sources}
    _apply_config(session, by_id, session.execute(_sync_columns()), now, retire=True)


def _sync_columns() -> Select[str, str, bool]:
    return select(Feed.id, Feed.config_url, Feed.active)


def _apply_config(
    session: Session,
    by_id: dict[str, FeedSource],
    rows: Iterable[Any],
    now: datetime,
    retire: bool = False,
) -> None:
    known: set[str] = set()
    moved, flips = [], []
    for feed_id, config_url, active in rows:
        known.add(feed_id)
        source = by_id.get(feed_id)
        if source is None:
            if retire and active:
                flips.append({"id": feed_id, "active": False})
        elif config_url != source.url:
            moved.append(_moved(source, now))
        elif bool(active) != source.enabled:
            flips.append({"id": feed_id, "active": source.enabled})
    new_rows = [_new_row(s, now) for s in by_id.values() if s.id not in known]
    # two polls of a new feed may both get here: the insert must not fail
    insert_ignore(session, Feed.__table__, new_rows, ["id"])
    for changes in (moved, flips):
        if changes:
            session.execute(update(Feed), changes)


def _new_row(source: FeedSource, now: datetime) -> dict[str, Any]:
    return {
        "id": source.id,
        "url": source.url,
        "config_url": source.url,
        "next_poll_at": now,
        "active": source.enabled,
    }


def _moved(source: FeedSource, now: datetime) -> dict[str, Any]:
    """A feed whose URL the config changed starts over: no validators, no error record."""
    return {
        "id": source.id,
        "url": source.url,
        "config_url": source.url,
        "etag": None,
        "last_modified": None,
        "body_hash": None,
        "item_digests": None,
        "disabled_reason": None,
        "error_count": 0,
        "next_poll_at": now,
        "active": source.enabled,
    }


def state(session: Session, feed_id: str) -> FeedState:
    found = states(session, [feed_id])
    if feed_id not in found:
        raise LookupError(f"feed {feed_id!r} has no row: call sync() first")
    return found[feed_id]


def states(session: Session, feed_ids: Iterable[str]) -> dict[str, FeedState]:
    """What a poll needs of each feed, in one read (plain rows: no ORM identity to go stale)."""
    ids = list(set(feed_ids))
    found: dict[str, FeedState] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(*_STATE_COLUMNS).where(Feed.id.in_(ids[start : start + _CHUNK]))
        for row in session.execute(query):
            values = row._asdict()
            values["item_digests"] = frozenset((values["item_digests"] or "").split())
            values["window_overflows"] = values["window_overflows"] or 0
            found[row.id] = FeedState(**values)
    return found


_CHUNK = 5_000  # ids per IN list: PostgreSQL takes at most 65,535 parameters a statement
_STATE_COLUMNS = tuple(
    getattr(Feed, name)
    for name in (
        "id",
        "url",
        "etag",
        "last_modified",
        "body_hash",
        "error_count",
        "created_at",
        "last_success_at",
        "last_error_at",
        "disabled_reason",
        "window_overflows",
        "item_digests",
    )
)


def claim_batch(session: Session, now: datetime, limit: int, lease: timedelta) -> list[str]:
    """Claim up to ``limit`` due feeds, the longest due first, for one poll worker's batch.

    On PostgreSQL the candidates are locked with ``FOR UPDATE SKIP LOCKED``: poll processes
    on many machines claim at once, each passing over the rows another is claiming, with
    no hot row to queue on. SQLite has one writer, so its UPDATE is atomic as it is.
    """
    if limit <= 0:
        return []
    claimed = session.execute(batch_claim_statement(now, limit, lease)).scalars().all()
    return sorted(claimed)


def batch_claim_statement(now: datetime, limit: int, lease: timedelta) -> Update:
    due = (
        select(Feed.id)
        .where(Feed.next_poll_at <= now, Feed.active.is_(True), Feed.disabled_reason.is_(None))
        .order_by(Feed.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(Feed)
        .where(Feed.id.in_(due), Feed.next_poll_at <= now)
        .values(next_poll_at=now + lease)
        .returning(Feed.id)
    )


def release(session: Session, feed_ids: Sequence[str], now: datetime) -> None:
    """Hand claimed feeds back unpolled: due again at once, for the next claim."""
    if feed_ids:
        session.execute(update(Feed).where(Feed.id.in_(list(feed_ids))).values(next_poll_at=now))


def count_due(session: Session, now: datetime, cap: int) -> int:
    """How many feeds are due, up to ``cap``: how hard beat rings the poll workers' doorbell.

    Beat rings at most ``poll_rings`` batches, so it never needs to count past
    ``poll_batch * poll_rings``; the cap keeps each beat's read small at 100,000 feeds."""
    return session.scalar(due_count_query(now, cap)) or 0


def due_count_query(now: datetime, cap: int) -> Select[int]:
    due = (Feed.next_poll_at <= now) & Feed.active.is_(True) & Feed.disabled_reason.is_(None)
    return select(func.count()).select_from(select(Feed.id).where(due).limit(cap).subquery())


def record_poll(session: Session, feed_id: str, record: PollRecord, now: datetime) -> int:
    """Write a poll's outcome; returns the feed's consecutive error count after it."""
    return record_polls(session, [(state(session, feed_id), record)], now)[feed_id]


def record_polls(
    session: Session, polls: Sequence[tuple[FeedState, PollRecord]], now: datetime
) -> dict[str, int]:
    """Write many polls' outcomes in one executemany; returns each feed's consecutive error
    count after it. The row is leased to this poll, so its state read before the fetch is
    what the columns are computed from (``poll_row``)."""
    rows = [poll_row(feed, record, now) for feed, record in polls]
    if rows:
        session.execute(update(Feed), rows)
    return {row["id"]: row["error_count"] for row in rows}


def poll_row(feed: FeedState, record: PollRecord, now: datetime) -> dict[str, Any]:
    """The columns a poll writes, from the feed's state before it and what the poll decided.
    Every row has the same keys, so many go in one executemany."""
    failed = record.error is not None
    overflowed = record.overflowed and not failed
    row: dict[str, Any] = {
        "id": feed.id,
        "etag": record.etag or feed.etag,
        "last_modified": record.last_modified or feed.last_modified,
        "url": record.url or feed.url,
        "body_hash": record.body_hash or feed.body_hash,
        "item_digests": _digests(record.item_digests, feed.item_digests),
        "last_polled_at": now,
        "next_poll_at": record.next_poll_at,
        "window_overflows": feed.window_overflows + overflowed,
        "error_count": feed.error_count + 1 if failed else 0,
        "last_error": record.error[:ERROR_MAX] if record.error else None,
    }
    if record.interval is not None:
        row["poll_interval_s"] = round(record.interval.total_seconds())
    if record.hub_checked:
        row["hub_url"] = record.hub.hub if record.hub else None
        row["topic_url"] = record.hub.topic if record.hub else None
    if overflowed:
        row["last_overflow_at"] = now
    if failed:
        row["last_error_at"] = now
        if record.disable:
            row["disabled_reason"] = row["last_error"]
    else:
        row["last_success_at"] = now
    return row


def _digests(new: tuple[str, ...] | None, stored: frozenset[str]) -> str | None:
    if new is None:
        return " ".join(sorted(stored)) or None
    return " ".join(new) or None


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
