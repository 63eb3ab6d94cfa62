"""The only code that reads and writes the database.

Dedup relies on unique constraints with ``ON CONFLICT DO NOTHING``: two workers racing on
one feed insert an item (and so a match) once; the loser gets no row back and goes quiet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from alerts.types import Match
from feeds.sources import FeedSource
from feeds.types import FeedItem
from worker.models import (
    ChannelState,
    Delivery,
    DigestRow,
    Feed,
    Heartbeat,
    Item,
    MatchRow,
    Silence,
    StoryBand,
)
from worker.planning import Plan

ERROR_MAX = 500


def insert_ignore(
    session: Session, table: Table, rows: list[dict[str, Any]], conflict: Sequence[str]
) -> list[Any]:
    """Insert rows, skip those that hit ``conflict``; return the primary keys inserted."""
    if not rows:
        return []
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    pk = next(iter(table.primary_key.columns))
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return [session.execute(stmt.values(row).returning(pk)).scalar() for row in rows]


# --- feeds ---------------------------------------------------------------------------


def sync_feeds(session: Session, sources: Iterable[FeedSource], now: datetime) -> None:
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


def claim_due_feeds(
    session: Session, feed_ids: Iterable[str], now: datetime, lease: timedelta
) -> list[str]:
    """Push ``next_poll_at`` ahead atomically, so two beats never enqueue one feed twice."""
    due = session.scalars(
        select(Feed.id).where(
            Feed.id.in_(list(feed_ids)), Feed.next_poll_at <= now, Feed.disabled_reason.is_(None)
        )
    ).all()
    claimed = []
    for feed_id in due:
        result = session.execute(
            update(Feed)
            .where(Feed.id == feed_id, Feed.next_poll_at <= now)
            .values(next_poll_at=now + lease)
        )
        if result.rowcount:
            claimed.append(feed_id)
    return claimed


def record_feed_error(
    session: Session,
    feed: Feed,
    message: str,
    now: datetime,
    next_poll_at: datetime,
    disable: bool = False,
) -> None:
    feed.error_count += 1
    feed.last_error, feed.last_error_at = message[:ERROR_MAX], now
    feed.last_polled_at, feed.next_poll_at = now, next_poll_at
    if disable:
        feed.disabled_reason = message[:ERROR_MAX]


def record_feed_success(
    session: Session, feed: Feed, now: datetime, next_poll_at: datetime
) -> None:
    feed.error_count, feed.last_error = 0, None
    feed.last_polled_at = feed.last_success_at = now
    feed.next_poll_at = next_poll_at


# --- items and matches ---------------------------------------------------------------


def insert_new_items(
    session: Session, feed_id: str, items: Sequence[FeedItem], now: datetime
) -> list[tuple[int, FeedItem]]:
    """Insert unseen items (by GUID, then by canonical URL within the feed)."""
    known_urls = set(
        session.scalars(
            select(Item.canonical_url).where(
                Item.feed_id == feed_id, Item.canonical_url.in_([i.url for i in items if i.url])
            )
        )
    )
    fresh = [i for i in items if not i.url or i.url not in known_urls]
    rows = [_item_row(feed_id, item, now) for item in fresh]
    ids = insert_ignore(session, Item.__table__, rows, ["feed_id", "guid"])
    return [
        (item_id, item) for item_id, item in zip(ids, fresh, strict=True) if item_id is not None
    ]


def _item_row(feed_id: str, item: FeedItem, now: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "guid": item.guid,
        "canonical_url": item.url,
        "title": item.title,
        "summary": item.summary,
        "published_at": item.published_at,
        "fetched_at": now,
        "fingerprint": item.fingerprint,
    }


def insert_match(
    session: Session, item_id: int, story_key: str, severity: str, match: Match, now: datetime
) -> int | None:
    """Record a match once per (watch-list, story); None when it is already there."""
    row = {
        "item_id": item_id,
        "watchlist_id": match.watchlist_id,
        "story_key": story_key,
        "severity": severity,
        "hits": [hit_to_json(h) for h in match.hits],
        "snippet": match.snippet,
        "created_at": now,
    }
    [match_id] = insert_ignore(session, MatchRow.__table__, [row], ["watchlist_id", "story_key"])
    return match_id


def hit_to_json(hit: Any) -> dict[str, Any]:
    return {
        "term": hit.term,
        "field": hit.field,
        "start": hit.start,
        "end": hit.end,
        "snippet": hit.snippet,
    }


# --- deliveries (the outbox) ---------------------------------------------------------


def new_delivery_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def insert_deliveries(
    session: Session, match_id: int, plans: Mapping[str, Plan], now: datetime
) -> list[str]:
    """One outbox row per channel, as planned; returns the ids to enqueue now."""
    rows = [
        {
            "id": new_delivery_id(),
            "match_id": match_id,
            "channel_id": channel_id,
            "status": plan.status,
            "attempts": 0,
            "next_attempt_at": plan.next_attempt_at,
            "enqueued_at": now,
            "last_error": plan.note,
            "created_at": now,
        }
        for channel_id, plan in plans.items()
    ]
    ids = insert_ignore(session, Delivery.__table__, rows, ["match_id", "channel_id"])
    return [
        delivery_id
        for delivery_id, row in zip(ids, rows, strict=True)
        if delivery_id is not None and row["status"] == "pending" and row["next_attempt_at"] <= now
    ]


def active_silences(session: Session, now: datetime) -> list[Silence]:
    return list(session.scalars(select(Silence).where(Silence.ends_at > now)))


Claimable = type[Delivery] | type[DigestRow]


def claim(session: Session, model: Claimable, row_id: str, now: datetime, lease: timedelta) -> Any:
    """Take a due outbox row (delivery or digest) for one attempt; None when it is sent,
    dead, not due or taken. A row stuck in ``sending`` past its lease (its worker died) can
    be taken again: the one case of a second send, and it carries the same id."""
    claimable = or_(
        and_(model.status.in_(("pending", "failed")), model.next_attempt_at <= now),
        and_(model.status == "sending", model.claimed_at <= now - lease),
    )
    result = session.execute(
        update(model)
        .where(model.id == row_id, claimable)
        .values(status="sending", attempts=model.attempts + 1, claimed_at=now)
    )
    if not result.rowcount:
        return None
    return session.get(model, row_id, populate_existing=True)


def claim_delivery(
    session: Session, delivery_id: str, now: datetime, lease: timedelta
) -> Delivery | None:
    return claim(session, Delivery, delivery_id, now, lease)


def hold_for_rate_limit(session: Session, delivery: Delivery, until: datetime, note: str) -> None:
    """Past the channel's rate limit: batch it with the rest of the burst at ``until``."""
    delivery.status, delivery.next_attempt_at = "held", until
    delivery.attempts -= 1  # not an attempt: nothing was sent
    delivery.last_error = note


def sent_since(session: Session, delivery: Delivery, since: datetime) -> int:
    """Alerts the channel sent alone since ``since``, plus those being sent right now
    (claimed by another worker, not yet recorded)."""
    recent = or_(Delivery.sent_at >= since, Delivery.status == "sending")
    query = select(func.count()).select_from(Delivery)
    query = query.where(
        Delivery.channel_id == delivery.channel_id,
        Delivery.id != delivery.id,
        Delivery.digest_id.is_(None),
        recent,
    )
    return session.scalar(query) or 0


def held_release(session: Session, channel_id: str) -> datetime | None:
    """When the channel's current burst of held alerts goes out, if one is waiting."""
    held = (Delivery.channel_id == channel_id) & (Delivery.status == "held")
    return session.scalar(select(func.min(Delivery.next_attempt_at)).where(held))


def lock_channel(session: Session, channel_id: str) -> None:
    """Serialise per-channel decisions across workers (a row lock on PostgreSQL; SQLite
    already serialises writing transactions)."""
    _ensure_channel_row(session, channel_id)
    session.execute(select(ChannelState.id).where(ChannelState.id == channel_id).with_for_update())


def batch_digests(session: Session, now: datetime) -> list[str]:
    """Put due digest/held deliveries into digests; one UPDATE each, so a delivery joins
    exactly one digest even when two sweeps run at once."""
    made = []
    for status, reason in (("digest", "digest"), ("held", "rate-limit")):
        due = (Delivery.status == status) & (Delivery.next_attempt_at <= now)
        for channel_id in session.scalars(select(Delivery.channel_id).where(due).distinct()):
            digest = _digest_row(new_delivery_id(), channel_id, reason, now)
            session.add(digest)
            session.flush()  # the row the deliveries' foreign key points at comes first
            joined = session.execute(
                update(Delivery)
                .where(due & (Delivery.channel_id == channel_id))
                .values(status="batched", digest_id=digest.id)
            )
            if not joined.rowcount:  # another sweep took them
                session.delete(digest)
                continue
            digest.window_start, last = session.execute(
                select(func.min(Delivery.created_at), func.max(Delivery.next_attempt_at)).where(
                    Delivery.digest_id == digest.id
                )
            ).one()
            digest.window_end = min(last, now)
            made.append(digest.id)
    return made


def _digest_row(digest_id: str, channel_id: str, reason: str, now: datetime) -> DigestRow:
    return DigestRow(
        id=digest_id,
        channel_id=channel_id,
        reason=reason,
        window_start=now,
        window_end=now,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        enqueued_at=now,
        created_at=now,
    )


def record_delivery_sent(session: Session, delivery: Delivery, now: datetime) -> None:
    delivery.status, delivery.sent_at, delivery.last_error = "sent", now, None
    _channel_state(session, delivery.channel_id).error_count = 0
    _channel_state(session, delivery.channel_id).last_success_at = now


def record_delivery_failure(
    session: Session, delivery: Delivery, message: str, next_attempt_at: datetime | None
) -> None:
    """``next_attempt_at`` None means no more attempts: the delivery is dead."""
    delivery.last_error = message[:ERROR_MAX]
    if next_attempt_at is None:
        delivery.status = "dead"
    else:
        delivery.status, delivery.next_attempt_at = "failed", next_attempt_at
    state = _channel_state(session, delivery.channel_id)
    state.error_count += 1
    state.last_error = message[:ERROR_MAX]


def record_digest_sent(session: Session, digest: DigestRow, now: datetime) -> None:
    digest.status, digest.sent_at, digest.last_error = "sent", now, None
    session.execute(
        update(Delivery)
        .where(Delivery.digest_id == digest.id)
        .values(status="sent", sent_at=now, last_error=None)
    )
    _channel_state(session, digest.channel_id).error_count = 0


def record_digest_failure(
    session: Session, digest: DigestRow, message: str, next_attempt_at: datetime | None
) -> None:
    """A dead digest marks its deliveries dead too: ``deliveries retry`` resends them one by one."""
    digest.last_error = message[:ERROR_MAX]
    if next_attempt_at is None:
        digest.status = "dead"
        session.execute(
            update(Delivery)
            .where(Delivery.digest_id == digest.id)
            .values(status="dead", last_error=f"digest {digest.id}: {message}"[:ERROR_MAX])
        )
    else:
        digest.status, digest.next_attempt_at = "failed", next_attempt_at
    state = _channel_state(session, digest.channel_id)
    state.error_count += 1
    state.last_error = message[:ERROR_MAX]


def disable_channel(session: Session, channel_id: str, reason: str) -> None:
    _channel_state(session, channel_id).disabled_reason = reason[:ERROR_MAX]


def channel_errors(session: Session, channel_id: str) -> int:
    state = session.get(ChannelState, channel_id)
    return state.error_count if state else 0


def channel_disabled(session: Session, channel_id: str) -> str | None:
    state = session.get(ChannelState, channel_id)
    return state.disabled_reason if state else None


def _ensure_channel_row(session: Session, channel_id: str) -> None:
    insert_ignore(session, ChannelState.__table__, [{"id": channel_id, "error_count": 0}], ["id"])


def _channel_state(session: Session, channel_id: str) -> ChannelState:
    """The channel's row, created without a race: two first deliveries may record at once."""
    _ensure_channel_row(session, channel_id)
    state = session.get(ChannelState, channel_id)
    assert state is not None
    return state


def due_rows(
    session: Session, model: Claimable, now: datetime, lease: timedelta, requeue_after: timedelta
) -> list[str]:
    """Rows the broker may have lost: due and not enqueued recently, or stuck sending."""
    due = or_(
        and_(
            model.status.in_(("pending", "failed")),
            model.next_attempt_at <= now,
            or_(model.enqueued_at.is_(None), model.enqueued_at <= now - requeue_after),
        ),
        and_(model.status == "sending", model.claimed_at <= now - lease),
    )
    ids = list(session.scalars(select(model.id).where(due).limit(1000)))
    if ids:
        session.execute(update(model).where(model.id.in_(ids)).values(enqueued_at=now))
    return ids


def due_deliveries(
    session: Session, now: datetime, lease: timedelta, requeue_after: timedelta
) -> list[str]:
    return due_rows(session, Delivery, now, lease, requeue_after)


def outbox_backlog(session: Session, now: datetime) -> int:
    due = Delivery.status.in_(("pending", "failed")) & (Delivery.next_attempt_at <= now)
    return session.scalar(select(func.count()).select_from(Delivery).where(due)) or 0


def feeds_in_error(session: Session) -> int:
    failing = (Feed.error_count > 0) & Feed.disabled_reason.is_(None)
    return session.scalar(select(func.count()).select_from(Feed).where(failing)) or 0


def mark_enqueued(session: Session, model: Claimable, ids: Sequence[str], now: datetime) -> None:
    if ids:
        session.execute(update(model).where(model.id.in_(ids)).values(enqueued_at=now))


def beat(session: Session, name: str, now: datetime) -> None:
    row = session.get(Heartbeat, name)
    if row is None:
        session.add(Heartbeat(name=name, at=now))
    else:
        row.at = now


def story_sources(
    session: Session, story_id: int | None, except_item: int | None = None
) -> list[str]:
    """Feed ids that carried the story, first reporter first."""
    if story_id is None:
        return []
    query = select(Item.feed_id, func.min(Item.fetched_at).label("first"))
    query = query.where(Item.story_id == story_id)
    if except_item is not None:
        query = query.where(Item.id != except_item)
    rows = session.execute(query.group_by(Item.feed_id).order_by("first"))
    return [feed_id for feed_id, _ in rows]


def prune(session: Session, now: datetime, keep_items: timedelta, keep_bands: timedelta) -> int:
    """Drop old items no alert points at, and story bands past the clustering window.

    Matches, deliveries and the items they name stay: an alert can always be re-rendered.
    """
    alerted = select(MatchRow.item_id)
    old = Item.__table__.delete().where(Item.fetched_at < now - keep_items, Item.id.not_in(alerted))
    removed = session.execute(old).rowcount or 0
    session.execute(StoryBand.__table__.delete().where(StoryBand.seen_at < now - keep_bands))
    return removed
