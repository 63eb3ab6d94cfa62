"""The read model: the queries the CLI (and, next, the console) shows, as plain rows.

It only reads. Writes go through the store (``worker/store/``, ``worker/outbox/store.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from feeds.sources import FeedSource
from worker.models import (
    ChannelState,
    Delivery,
    DeliveryStatus,
    Feed,
    Heartbeat,
    Item,
    MatchRow,
    MissedItem,
    OpsEvent,
    PushSubscription,
    Triage,
)
from worker.outbox.transitions import CLAIMABLE
from worker.store.channels import ChannelHealth

S = DeliveryStatus
OPS_WATCHLIST = "watchfloor-ops"


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed's poll record (None fields: never polled), with its stored item count."""

    id: str
    polled: bool
    error_count: int
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    disabled_reason: str | None
    items: int
    poll_interval_s: int | None = None
    window_overflows: int = 0
    last_overflow_at: datetime | None = None
    push: str = "none"  # WebSub: none, pending, live, failed, unsubscribing
    push_error: str | None = None


def feeds(session: Session) -> dict[str, FeedRow]:
    counts = dict(session.execute(select(Item.feed_id, func.count()).group_by(Item.feed_id)).all())
    pushes = {
        row.feed_id: (row.state, row.last_error)
        for row in session.scalars(select(PushSubscription))
    }
    return {
        f.id: FeedRow(
            id=f.id,
            polled=f.last_polled_at is not None,
            error_count=f.error_count,
            last_error=f.last_error,
            last_error_at=f.last_error_at,
            last_success_at=f.last_success_at,
            next_poll_at=f.next_poll_at,
            disabled_reason=f.disabled_reason,
            items=counts.get(f.id, 0),
            poll_interval_s=f.poll_interval_s,
            window_overflows=f.window_overflows or 0,
            last_overflow_at=f.last_overflow_at,
            push=pushes.get(f.id, ("none", None))[0],
            push_error=pushes.get(f.id, ("none", None))[1],
        )
        for f in session.scalars(select(Feed).order_by(Feed.id))
    }


def feed_status(feed: FeedRow | None, enabled: bool) -> str:
    if not enabled:
        return "off"
    if feed is None or not feed.polled:
        return "new"
    if feed.disabled_reason:
        return "disabled"
    return "error" if feed.error_count else "ok"


def feed_health(sources: Sequence[FeedSource], rows: dict[str, FeedRow]) -> list[dict[str, Any]]:
    """The health table of every configured feed, as ``watchfloor feeds --json`` prints it
    and the console's feeds page shows it."""
    table = []
    for source in sources:
        feed = rows.get(source.id)
        table.append(
            {
                "id": source.id,
                "status": feed_status(feed, source.enabled),
                "last_success": _iso(feed.last_success_at) if feed else None,
                "last_error": (feed.disabled_reason or feed.last_error) if feed else None,
                "error_count": feed.error_count if feed else 0,
                "items": feed.items if feed else 0,
                "next_poll": _iso(feed.next_poll_at) if feed and source.enabled else None,
                "interval_s": (feed.poll_interval_s if feed else None)
                or round(source.interval.total_seconds()),
                "window_overflows": feed.window_overflows if feed else 0,
                "last_overflow": _iso(feed.last_overflow_at) if feed else None,
                "push": feed.push if feed else "none",
                "push_error": feed.push_error if feed else None,
            }
        )
    return table


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def last_poll(session: Session) -> datetime | None:
    return session.scalar(select(func.max(Feed.last_polled_at)))


def heartbeat(session: Session, name: str = "beat") -> datetime | None:
    return session.scalar(select(Heartbeat.at).where(Heartbeat.name == name))


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    status: DeliveryStatus
    channel_id: str
    watchlist_id: str  # "watchfloor-ops" for an ops alert
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    title: str


def deliveries(
    session: Session, status: DeliveryStatus | None = None, limit: int = 50
) -> list[DeliveryRow]:
    """The outbox, newest first: alerts and ops alerts alike."""
    query = (
        select(Delivery, MatchRow.watchlist_id, Item.title, OpsEvent.title)
        .outerjoin(MatchRow, MatchRow.id == Delivery.match_id)
        .outerjoin(Item, Item.id == MatchRow.item_id)
        .outerjoin(OpsEvent, OpsEvent.id == Delivery.ops_event_id)
        .order_by(Delivery.created_at.desc(), Delivery.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(Delivery.status == status)
    return [
        DeliveryRow(
            id=d.id,
            status=d.status,
            channel_id=d.channel_id,
            watchlist_id=watchlist_id or OPS_WATCHLIST,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            last_error=d.last_error,
            title=item_title or ops_title or "",
        )
        for d, watchlist_id, item_title, ops_title in session.execute(query)
    ]


def delivery_counts(session: Session) -> dict[DeliveryStatus, int]:
    query = select(Delivery.status, func.count()).group_by(Delivery.status)
    return {status: count for status, count in session.execute(query).all()}


def overdue_deliveries(session: Session, before: datetime) -> tuple[int, datetime | None]:
    """(count, oldest due time) of deliveries due before ``before`` and not yet sent."""
    late = Delivery.status.in_(CLAIMABLE) & (Delivery.next_attempt_at <= before)
    count, oldest = session.execute(
        select(func.count(), func.min(Delivery.next_attempt_at)).where(late)
    ).one()
    return int(count), oldest


@dataclass(frozen=True, slots=True)
class WatchlistDay:
    watchlist_id: str
    matches: int
    sent: int


def alerts_since(session: Session, since: datetime) -> list[WatchlistDay]:
    """Per watch-list: alerts recorded since ``since`` and deliveries of them sent."""
    sent = func.sum(case((Delivery.status == S.SENT, 1), else_=0))
    matches = func.count(func.distinct(MatchRow.id))
    query = (
        select(MatchRow.watchlist_id, matches, sent)
        .outerjoin(Delivery, Delivery.match_id == MatchRow.id)
        .where(MatchRow.created_at >= since)
        .group_by(MatchRow.watchlist_id)
        .order_by(matches.desc(), MatchRow.watchlist_id)
    )
    return [WatchlistDay(w, int(n), int(s or 0)) for w, n, s in session.execute(query).all()]


def midnight(now: datetime) -> datetime:
    return datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)


def channels(session: Session) -> dict[str, ChannelHealth]:
    return {
        s.id: ChannelHealth(s.id, s.error_count, s.last_error, s.last_success_at, s.disabled_reason)
        for s in session.scalars(select(ChannelState))
    }


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: int
    feed_id: str
    title: str
    summary: str


def items_since(session: Session, since: datetime) -> list[StoredItem]:
    rows = session.execute(
        select(Item.id, Item.feed_id, Item.title, Item.summary)
        .where(Item.fetched_at >= since)
        .order_by(Item.id)
    )
    return [StoredItem(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class AlertVerdict:
    """An alert and its triage state, as ``watchfloor eval export`` judges it."""

    item: StoredItem
    watchlist_id: str
    created_at: datetime
    acknowledged: bool
    false_positive: bool
    triaged_at: datetime | None  # the triage state's last change; None: never triaged


@dataclass(frozen=True, slots=True)
class MissedFlag:
    """An item an analyst flagged as one a watch-list should have alerted on."""

    item: StoredItem
    watchlist_id: str
    flagged_at: datetime


def alert_verdicts(session: Session, since: datetime) -> list[AlertVerdict]:
    """Every alert raised since ``since``, with its item's text and its triage state."""
    rows = session.execute(
        select(
            Item.id,
            Item.feed_id,
            Item.title,
            Item.summary,
            MatchRow.watchlist_id,
            MatchRow.created_at,
            Triage.acknowledged_at,
            Triage.false_positive,
            Triage.updated_at,
        )
        .join(Item, Item.id == MatchRow.item_id)
        .outerjoin(Triage, Triage.match_id == MatchRow.id)
        .where(MatchRow.created_at >= since)
        .order_by(MatchRow.id)
    )
    return [
        AlertVerdict(StoredItem(i, feed, title, text), wid, made, acked is not None, bool(fp), at)
        for i, feed, title, text, wid, made, acked, fp, at in rows
    ]


def missed_flags(session: Session, since: datetime) -> list[MissedFlag]:
    """Every item flagged as missed since ``since``, with its text."""
    rows = session.execute(
        select(
            Item.id,
            Item.feed_id,
            Item.title,
            Item.summary,
            MissedItem.watchlist_id,
            MissedItem.created_at,
        )
        .join(Item, Item.id == MissedItem.item_id)
        .where(MissedItem.created_at >= since)
        .order_by(MissedItem.id)
    )
    return [
        MissedFlag(StoredItem(i, feed, title, summary), wid, flagged)
        for i, feed, title, summary, wid, flagged in rows
    ]
