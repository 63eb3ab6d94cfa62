"""Poll one feed: read its state, fetch, parse, decide, and write it all in one transaction.

The decisions are pure (worker/planning.py, alerts/updates.py, feeds/story.py); the store
is asked for plain snapshots before, and handed plain results after. Only new items go on:
they are filed into stories, matched, and each alert is written with its deliveries (the
outbox) in the transaction that records the poll. A failing feed that crosses its
threshold writes its ops alert in the transaction that records the error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from alerts.types import Match
from alerts.updates import story_updates
from alerts.watchlists import WatchList
from common.errors import IngestError
from feeds import websub
from feeds.fetch import fetch
from feeds.normalize import content_hash
from feeds.parse import parse_feed
from feeds.render import render_page
from feeds.sources import FeedSource
from feeds.types import FeedItem, FetchResult, ParsedFeed
from worker import planning
from worker.config import Config
from worker.models import utcnow
from worker.outbox import store as outbox_store
from worker.outbox.ops import raise_ops_alert
from worker.pages import read_page
from worker.runtime import Runtime
from worker.store import feeds as feeds_store
from worker.store import items as items_store
from worker.store import push as push_store
from worker.store import silences as silences_store
from worker.store.feeds import FeedState
from worker.store.silences import SilenceRecord
from worker.stories import file_items
from worker.websub import plan as push_plan

log = structlog.get_logger(__name__)


@dataclass
class PollOutcome:
    feed_id: str
    status: str  # "ok", "not-modified", "unchanged", "error", "skipped"
    new_items: list[tuple[int, FeedItem]] = field(default_factory=list)
    matches: list[tuple[int, Match]] = field(default_factory=list)
    delivery_ids: list[str] = field(default_factory=list)  # to enqueue after commit
    error: str | None = None
    fetch_seconds: float | None = None
    window_overflowed: bool = False  # every item new and newer than the last poll


def poll_feed(rt: Runtime, feed_id: str, now: datetime | None = None) -> PollOutcome:
    now = now or utcnow()
    config = rt.config.current()
    source = config.feed(feed_id)
    if source is None or not source.enabled:
        return PollOutcome(feed_id, "skipped", error="not in config or disabled")
    with rt.sessions.begin() as session:
        feeds_store.sync(session, [source], now)
        feed = feeds_store.state(session, feed_id)
    started = time.monotonic()
    try:
        result = _fetch(rt, source, feed)
        outcome = _fetched(rt, config, source, feed, result, now)
    except IngestError as exc:
        outcome = _failed(rt, config, source, feed, exc, now)
    outcome.fetch_seconds = time.monotonic() - started
    return outcome


def _fetch(rt: Runtime, source: FeedSource, feed: FeedState) -> FetchResult:
    """A conditional GET; for ``render: browser`` the page as Chromium leaves it (its body
    hash, not a validator, tells an unchanged page)."""
    allow_private, headers = rt.settings.allow_private_urls, dict(source.headers)
    if source.render == "browser":
        return render_page(
            feed.url,
            limits=rt.fetch_limits,
            allow_private=allow_private,
            headers=headers,
            chromium=rt.settings.chromium,
        )
    return fetch(
        feed.url,
        etag=feed.etag,
        last_modified=feed.last_modified,
        limits=rt.fetch_limits,
        allow_private=allow_private,
        headers=headers,
    )


def _fetched(
    rt: Runtime,
    config: Config,
    source: FeedSource,
    feed: FeedState,
    result: FetchResult,
    now: datetime,
) -> PollOutcome:
    body_hash = content_hash(result.body or b"")
    if result.not_modified or body_hash == feed.body_hash:
        with rt.sessions.begin() as session:
            interval = _rhythm(rt, session, source, now)
            record = planning.poll_succeeded(source, result, now, interval=interval)
            feeds_store.record_poll(session, source.id, record, now)
        status = "not-modified" if result.not_modified else "unchanged"
        log.debug("feed polled", feed_id=source.id, status=status)  # nothing new: chatter
        return PollOutcome(source.id, status)
    stored_hash: str | None = body_hash
    if source.type in ("page", "json"):
        parsed, waiting = read_page(rt, source, feed, result, now)
        if waiting:  # items left for the next poll: keep this body's validators unstored
            stored_hash, result = None, replace(result, etag=None, last_modified=None)
    else:
        parsed = parse_feed(result.body or b"", url=result.url, content_type=result.content_type)
    return _store_new(rt, config, source, feed, parsed, result, stored_hash, now)


def _cadence(rt: Runtime, source: FeedSource) -> planning.Cadence:
    return planning.Cadence.of(source, rt.settings.min_interval, rt.settings.max_interval)


def _rhythm(rt: Runtime, session: Session, source: FeedSource, now: datetime) -> timedelta:
    """The interval the feed's publishing rhythm earns (planning.learned_interval), or the
    safety net's while a WebSub hub pushes the feed."""
    seen = items_store.seen_times(session, source.id, now - planning.RHYTHM_SPAN)
    learned = planning.learned_interval(seen, now, _cadence(rt, source))
    live = push_plan.is_live(push_store.of_feed(session, source.id), now)
    return push_plan.poll_interval(learned, live, rt.settings.push_poll_interval)


def _failed(
    rt: Runtime,
    config: Config,
    source: FeedSource,
    feed: FeedState,
    exc: IngestError,
    now: datetime,
) -> PollOutcome:
    record = planning.poll_failed(source, feed, exc, now)
    threshold = rt.settings.feed_failing_after
    outcome = PollOutcome(source.id, "error", error=record.error)
    with rt.sessions.begin() as session:
        errors = feeds_store.record_poll(session, source.id, record, now)
        if planning.crosses_failing_threshold(feed, threshold, now):
            since = planning.failing_since(feed).isoformat()
            message = f"failing for over {threshold}: {record.error}"
            key, subject = f"feed:{source.id}:failing-since:{since}", f"feed {source.id}"
            outcome.delivery_ids = raise_ops_alert(
                session, config, key, subject, errors, message, now
            )
    log.warning(
        "feed poll failed",
        feed_id=source.id,
        error=record.error,
        error_count=errors,
        disabled=record.disable,
    )
    return outcome


def _store_new(
    rt: Runtime,
    config: Config,
    source: FeedSource,
    feed: FeedState,
    parsed: ParsedFeed,
    result: FetchResult,
    body_hash: str | None,
    now: datetime,
) -> PollOutcome:
    outcome = PollOutcome(source.id, "ok")
    with rt.sessions.begin() as session:
        outcome.new_items = items_store.insert_new(session, source.id, parsed.items, now)
        published = [item.published_at for _, item in outcome.new_items]
        overflowed = planning.window_overflowed(published, len(parsed.items), feed.last_success_at)
        interval = _rhythm(rt, session, source, now)
        if overflowed:
            interval = planning.after_overflow(interval, _cadence(rt, source))
            outcome.window_overflowed = True
        record = planning.poll_succeeded(
            source, result, now, body_hash, parsed.ttl_seconds, interval, overflowed
        )
        if source.type == "rss":
            hub = websub.discover(result.link, parsed.hubs, parsed.self_url, result.url)
            record = replace(record, hub_checked=True, hub=hub)
        _file_and_match(session, rt, config, source, feed, outcome, now)
        feeds_store.record_poll(session, source.id, record, now)
    (log.info if outcome.new_items else log.debug)(
        "feed polled",
        feed_id=source.id,
        status="ok",
        items=len(parsed.items),
        new_items=len(outcome.new_items),
        matches=len(outcome.matches),
    )
    if outcome.window_overflowed:
        log.warning(
            "feed window overflowed: items may have fallen off it between polls",
            feed_id=source.id,
            items=len(parsed.items),
            next_poll_in=str(record.interval),
        )
    return outcome


def _file_and_match(
    session: Session,
    rt: Runtime,
    config: Config,
    source: FeedSource,
    feed: FeedState,
    outcome: PollOutcome,
    now: datetime,
) -> None:
    """File the new items into stories; alert on those the first-poll rule lets through."""
    story_of = file_items(session, outcome.new_items, now)
    alerts = _Alerts(session, config, source, now, outcome)
    window = rt.settings.first_poll_window
    for item_id, item in outcome.new_items:
        if planning.alertable(item.published_at, feed.first_poll, window, now):
            alerts.match(item_id, story_of[item_id], item)


def ingest_push(
    rt: Runtime, feed_id: str, body: bytes, content_type: str | None, now: datetime | None = None
) -> PollOutcome:
    """A body a WebSub hub pushed (its signature already checked): parsed with every limit
    of the fetch path and taken in like a poll's new items. The poll record (validators,
    next poll) is left alone: the safety-net poll still compares with the last fetch."""
    now = now or utcnow()
    config = rt.config.current()
    source = config.feed(feed_id)
    if source is None or not source.enabled:
        return PollOutcome(feed_id, "skipped", error="not in config or disabled")
    try:
        parsed = parse_feed(body, url=source.url, content_type=content_type)
    except IngestError as exc:
        log.warning("websub push unreadable", feed_id=feed_id, error=exc.message)
        return PollOutcome(feed_id, "error", error=exc.message)
    outcome = PollOutcome(feed_id, "ok")
    with rt.sessions.begin() as session:
        feed = feeds_store.state(session, feed_id)
        outcome.new_items = items_store.insert_new(session, feed_id, parsed.items, now)
        _file_and_match(session, rt, config, source, feed, outcome, now)
    log.info(
        "websub push taken in",
        feed_id=feed_id,
        items=len(parsed.items),
        new_items=len(outcome.new_items),
        matches=len(outcome.matches),
    )
    return outcome


@dataclass
class _Alerts:
    """Alerts of one poll: each watch-list that fires, once per story, with one delivery
    per channel; on a story already alerted, the updates it earns (``notify_updates``)."""

    session: Session
    config: Config
    source: FeedSource
    now: datetime
    outcome: PollOutcome
    _silences: list[SilenceRecord] | None = None

    def match(self, item_id: int, story_id: int, item: FeedItem) -> None:
        matches = self.config.matcher.match(
            item.title,
            item.summary,
            feed_id=self.source.id,
            feed_tags=self.source.tags,
            language=item.language,
        )
        for match in matches:
            watchlist = self.config.watchlist(match.watchlist_id)
            if watchlist is None:
                continue
            if self._record(watchlist, item_id, story_id, "", match):
                continue
            if watchlist.notify_updates:
                before = items_store.story_sources(self.session, story_id, except_item=item_id)
                is_official = self.config.is_official
                spoken = items_store.story_languages(self.session, story_id, except_item=item_id)
                updates = story_updates(
                    watchlist, self.source.id, before, is_official, item.language, spoken
                )
                for update in updates:
                    self._record(watchlist, item_id, story_id, update, match)

    def _record(
        self, watchlist: WatchList, item_id: int, story_id: int, update: str, match: Match
    ) -> bool:
        """False when the (watch-list, story, update) alerted already."""
        severity = watchlist.severity
        match_id = outbox_store.insert_alert(
            self.session, item_id, story_id, update, severity, match, self.now
        )
        if match_id is None:
            return False
        self.outcome.matches.append((match_id, match))
        silences = self._active_silences()
        plans = {
            channel_id: planning.plan_delivery(
                watchlist,
                self.config.channels.get(channel_id),
                planning.find_silence(silences, watchlist.id, channel_id, self.now),
                self.now,
            )
            for channel_id in watchlist.channels
        }
        self.outcome.delivery_ids += outbox_store.insert_deliveries(
            self.session, plans, self.now, match_id=match_id
        )
        return True

    def _active_silences(self) -> list[SilenceRecord]:
        if self._silences is None:
            self._silences = silences_store.active(self.session, self.now)
        return self._silences
