"""Poll one feed: fetch, parse, keep new items, match, write the outbox in one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import update
from sqlalchemy.orm import Session

from alerts.types import Match
from alerts.updates import story_updates
from alerts.watchlists import WatchList
from feeds.errors import IngestError
from feeds.fetch import fetch
from feeds.normalize import content_hash
from feeds.parse import parse_feed
from feeds.sources import FeedSource
from feeds.types import FeedItem, FetchResult
from worker import store
from worker.config import Config
from worker.delivery import warn_failing
from worker.models import Feed, Item, utcnow
from worker.planning import find_silence, plan_delivery
from worker.runtime import Runtime
from worker.stories import assign_story

log = structlog.get_logger(__name__)
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class PollOutcome:
    feed_id: str
    status: str  # "ok", "not-modified", "unchanged", "error", "skipped"
    new_items: list[tuple[int, FeedItem]] = field(default_factory=list)
    matches: list[tuple[int, Match]] = field(default_factory=list)
    delivery_ids: list[str] = field(default_factory=list)
    error: str | None = None
    fetch_seconds: float | None = None


def poll_feed(rt: Runtime, feed_id: str, now: datetime | None = None) -> PollOutcome:
    now = now or utcnow()
    config = rt.config.current()
    source = config.feed(feed_id)
    if source is None or not source.enabled:
        return PollOutcome(feed_id, "skipped", error="not in config or disabled")
    with rt.sessions.begin() as session:
        store.sync_feeds(session, [source], now)
        feed = session.get(Feed, feed_id)
        url, etag, last_modified = feed.url, feed.etag, feed.last_modified
        body_hash, first_poll = feed.body_hash, feed.last_success_at is None
    started = time.monotonic()
    try:
        result = fetch(
            url,
            etag=etag,
            last_modified=last_modified,
            limits=rt.fetch_limits,
            allow_private=rt.settings.allow_private_urls,
        )
        fetched = time.monotonic() - started
        if result.not_modified or content_hash(result.body or b"") == body_hash:
            outcome = _unchanged(rt, source, result, now)
        else:
            parsed = parse_feed(
                result.body or b"", url=result.url, content_type=result.content_type
            )
            items, ttl = parsed.items, parsed.ttl_seconds
            outcome = _store_new(rt, config, source, result, items, ttl, first_poll, now)
    except IngestError as exc:
        outcome, fetched = _failed(rt, source, exc, now), time.monotonic() - started
    outcome.fetch_seconds = fetched
    return outcome


def _next_poll(source: FeedSource, now: datetime, hint_seconds: int | None) -> datetime:
    """The configured interval; a server's max-age or <ttl> may stretch it up to 4x."""
    interval = source.interval
    if hint_seconds:
        interval = max(interval, min(timedelta(seconds=hint_seconds), interval * 4))
    return now + interval


def _unchanged(rt: Runtime, source: FeedSource, result: FetchResult, now: datetime) -> PollOutcome:
    with rt.sessions.begin() as session:
        feed = session.get(Feed, source.id)
        _remember_validators(feed, result)
        store.record_feed_success(session, feed, now, _next_poll(source, now, result.max_age))
    status = "not-modified" if result.not_modified else "unchanged"
    log.debug("feed polled", feed_id=source.id, status=status)  # nothing new: chatter
    return PollOutcome(source.id, status)


def _remember_validators(feed: Feed, result: FetchResult) -> None:
    feed.etag = result.etag or feed.etag
    feed.last_modified = result.last_modified or feed.last_modified
    if result.permanent_url and result.permanent_url != feed.url:
        log.info("feed moved permanently", feed_id=feed.id, url=result.permanent_url)
        feed.url = result.permanent_url


def _failed(rt: Runtime, source: FeedSource, exc: IngestError, now: datetime) -> PollOutcome:
    message = f"{exc.kind}: {exc.message}"
    with rt.sessions.begin() as session:
        feed = session.get(Feed, source.id)
        crossed = _crosses_failing_threshold(feed, rt.settings.feed_failing_after, now)
        backoff = min(source.interval * 2 ** min(feed.error_count, 16), MAX_BACKOFF)
        if exc.retry_after:
            backoff = max(backoff, timedelta(seconds=exc.retry_after))
        store.record_feed_error(session, feed, message, now, now + backoff, exc.permanent)
        errors = feed.error_count
    log.warning(
        "feed poll failed",
        feed_id=source.id,
        error=message,
        error_count=errors,
        disabled=exc.permanent,
    )
    if crossed:
        failing = f"feed {source.id}"
        warn_failing(
            rt, failing, errors, f"failing for over {rt.settings.feed_failing_after}: {message}"
        )
    return PollOutcome(source.id, "error", error=message)


def _crosses_failing_threshold(feed: Feed, threshold: timedelta, now: datetime) -> bool:
    """True on the first failed poll after the feed has been failing for ``threshold``."""
    since = feed.last_success_at or feed.created_at
    if now - since < threshold:
        return False
    return feed.last_error_at is None or feed.last_error_at - since < threshold


def _alertable(item: FeedItem, first_poll: bool, window: timedelta, now: datetime) -> bool:
    """On a feed's first poll, only recent items alert, so adding a feed never floods the desk."""
    if not first_poll:
        return True
    return item.published_at is not None and item.published_at >= now - window


def _store_new(
    rt: Runtime,
    config: Config,
    source: FeedSource,
    result: FetchResult,
    items: tuple[FeedItem, ...],
    ttl: int | None,
    first_poll: bool,
    now: datetime,
) -> PollOutcome:
    outcome = PollOutcome(source.id, "ok")
    window = timedelta(hours=rt.settings.first_poll_window_hours)
    with rt.sessions.begin() as session:
        outcome.new_items = store.insert_new_items(session, source.id, items, now)
        for item_id, item in outcome.new_items:
            story_id = assign_story(session, item, now)
            session.execute(update(Item).where(Item.id == item_id).values(story_id=story_id))
            if _alertable(item, first_poll, window, now):
                _match_item(session, config, source, (item_id, story_id), item, now, outcome)
        feed = session.get(Feed, source.id)
        _remember_validators(feed, result)
        feed.body_hash = content_hash(result.body or b"")
        hint = max(filter(None, (result.max_age, ttl)), default=None)
        store.record_feed_success(session, feed, now, _next_poll(source, now, hint))
    (log.info if outcome.new_items else log.debug)(
        "feed polled",
        feed_id=source.id,
        status="ok",
        items=len(items),
        new_items=len(outcome.new_items),
        matches=len(outcome.matches),
    )
    return outcome


def _match_item(
    session: Session,
    config: Config,
    source: FeedSource,
    ids: tuple[int, int],
    item: FeedItem,
    now: datetime,
    outcome: PollOutcome,
) -> None:
    """Record each watch-list that fires, once per story, with one delivery per channel;
    on a story already alerted, the updates it triggers (watch-list ``notify_updates``)."""
    item_id, story_id = ids
    matches = config.matcher.match(
        item.title, item.summary, feed_id=source.id, feed_tags=source.tags
    )
    silences = store.active_silences(session, now) if matches else []

    def record(watchlist: WatchList, key: str, match: Match) -> bool:
        match_id = store.insert_match(session, item_id, key, watchlist.severity, match, now)
        if match_id is None:  # the unique (watch-list, key): already alerted
            return False
        outcome.matches.append((match_id, match))
        plans = {
            channel_id: plan_delivery(
                watchlist,
                config.channels.get(channel_id),
                find_silence(silences, watchlist.id, channel_id, now),
                now,
            )
            for channel_id in watchlist.channels
        }
        outcome.delivery_ids += store.insert_deliveries(session, match_id, plans, now)
        return True

    for match in matches:
        watchlist = config.watchlist(match.watchlist_id)
        if watchlist is None:
            continue
        key = f"story:{story_id}"
        if record(watchlist, key, match) or not watchlist.notify_updates:
            continue
        before = store.story_sources(session, story_id, except_item=item_id)
        for change in story_updates(watchlist, source.id, before, config.is_official):
            record(watchlist, f"{key}:{change}", match)
