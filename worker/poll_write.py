"""A poll batch written in one transaction: new items, their stories, alerts, poll records.

The decisions are pure (``worker.planning``, ``worker.websub.plan``, ``feeds.story``); the
store writes them, each kind of row in as few statements as it can: one lookup and one
INSERT for every feed's new items, one filing of all of them into stories (an item can
join a story another feed's item made in the same batch), one read of the rhythms and push
states, one executemany for the poll records. A failing feed that crosses its threshold
writes its ops alert here too, in the transaction that records its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from alerts.types import Match
from feeds import websub
from feeds.sources import FeedSource
from feeds.types import FeedItem
from worker import planning
from worker.alerting import Alerted, AlertWriter
from worker.config import Config
from worker.outbox.ops import raise_ops_alert
from worker.poll_read import Read
from worker.runtime import Runtime
from worker.store import feeds as feeds_store
from worker.store import items as items_store
from worker.store import push as push_store
from worker.store.feeds import FeedState, PollRecord
from worker.stories import file_items
from worker.websub import plan as push_plan
from worker.websub.plan import PushRecord

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


def write_polls(
    session: Session, rt: Runtime, config: Config, reads: Sequence[Read], now: datetime
) -> list[PollOutcome]:
    """Record every read of the batch, and take in the new items of the changed feeds."""
    outcomes = {
        r.source.id: PollOutcome(r.source.id, r.status, fetch_seconds=r.fetch_seconds)
        for r in reads
    }
    ok = [r for r in reads if r.status == "ok" and r.parsed is not None]
    new = items_store.insert_new_many(
        session, {r.source.id: r.parsed.items for r in ok if r.parsed is not None}, now
    )
    polled = [r for r in reads if r.status in ("ok", "not-modified", "unchanged")]
    ids = [r.source.id for r in polled]
    seen = items_store.seen_times_many(session, ids, now - planning.RHYTHM_SPAN)
    pushes = push_store.of_feeds(session, ids)
    records: list[tuple[FeedState, PollRecord]] = []
    for read in polled:
        outcome = outcomes[read.source.id]
        outcome.new_items = new.get(read.source.id, [])
        record = _succeeded(rt, read, outcome, seen.get(read.source.id, []), pushes, now)
        records.append((read.feed, record))
    for read in reads:
        if read.status == "error" and read.error is not None:
            records.append((read.feed, _failed(session, config, rt, read, outcomes, now)))
    take_in(session, rt, config, [(r.source, r.feed, outcomes[r.source.id]) for r in ok], now)
    feeds_store.record_polls(session, records, now)
    for read, (_, written) in zip(polled, records, strict=False):
        _log_poll(read, outcomes[read.source.id], written)
    return [outcomes[r.source.id] for r in reads]


def take_in(
    session: Session,
    rt: Runtime,
    config: Config,
    batch: Sequence[tuple[FeedSource, FeedState, PollOutcome]],
    now: datetime,
) -> None:
    """File the batch's new items into stories; alert on those the first-poll rule lets
    through (a poll's, or a WebSub push's)."""
    story_of = file_items(session, [pair for _, _, o in batch for pair in o.new_items], now)
    writer, window = AlertWriter(session, config, now), rt.settings.first_poll_window
    for source, feed, outcome in batch:
        alerted = Alerted()
        for item_id, item in outcome.new_items:
            if planning.alertable(item.published_at, feed.first_poll, window, now):
                writer.match(source, item_id, story_of[item_id], item, alerted)
        outcome.matches += alerted.matches
        outcome.delivery_ids += alerted.delivery_ids


def _succeeded(
    rt: Runtime,
    read: Read,
    outcome: PollOutcome,
    seen: Sequence[datetime],
    pushes: dict[str, PushRecord],
    now: datetime,
) -> PollRecord:
    """The interval the feed's publishing rhythm earns (or the safety net's while a WebSub
    hub pushes it), sooner after a window overflow; validators, and the hub it names."""
    source, result = read.source, read.result
    if result is None:
        raise ValueError(f"feed {source.id}: a successful read without its fetch result")
    cadence = planning.Cadence.of(source, rt.settings.min_interval, rt.settings.max_interval)
    learned = planning.learned_interval(seen, now, cadence, read.feed.created_at)
    live = push_plan.is_live(pushes.get(source.id), now)
    interval = push_plan.poll_interval(learned, live, rt.settings.push_poll_interval)
    parsed = read.parsed
    if parsed is None:
        return planning.poll_succeeded(source, result, now, interval=interval)
    published = [item.published_at for _, item in outcome.new_items]
    in_feed, since = parsed.total_items or len(parsed.items), read.feed.last_success_at
    overflowed = planning.window_overflowed(published, in_feed, since)
    if overflowed:
        interval = planning.after_overflow(interval, cadence)
        outcome.window_overflowed = True
    record = planning.poll_succeeded(
        source, result, now, read.body_hash, parsed.ttl_seconds, interval, overflowed
    )
    if source.type == "rss":  # the items seen, skipped unparsed by the next poll
        hub = websub.discover(result.link, parsed.hubs, parsed.self_url, result.url)
        record = replace(record, hub_checked=True, hub=hub, item_digests=parsed.digests)
    return record


def _failed(
    session: Session,
    config: Config,
    rt: Runtime,
    read: Read,
    outcomes: dict[str, PollOutcome],
    now: datetime,
) -> PollRecord:
    """A failed poll backs off; at the failing threshold it writes the ops alert."""
    feed, source = read.feed, read.source
    assert read.error is not None
    record = planning.poll_failed(source, feed, read.error, now)
    outcome = outcomes[source.id]
    outcome.error = record.error
    errors, threshold = feed.error_count + 1, rt.settings.feed_failing_after
    if planning.crosses_failing_threshold(feed, threshold, now):
        since = planning.failing_since(feed).isoformat()
        message = f"failing for over {threshold}: {record.error}"
        key, subject = f"feed:{source.id}:failing-since:{since}", f"feed {source.id}"
        outcome.delivery_ids = raise_ops_alert(session, config, key, subject, errors, message, now)
    log.warning(
        "feed poll failed",
        feed_id=source.id,
        error=record.error,
        error_count=errors,
        disabled=record.disable,
    )
    return record


def _log_poll(read: Read, outcome: PollOutcome, record: PollRecord) -> None:
    if read.status != "ok":
        log.debug("feed polled", feed_id=read.source.id, status=read.status)  # nothing new
        return
    items = (read.parsed.total_items or len(read.parsed.items)) if read.parsed else 0
    (log.info if outcome.new_items else log.debug)(
        "feed polled",
        feed_id=read.source.id,
        status="ok",
        items=items,
        new_items=len(outcome.new_items),
        matches=len(outcome.matches),
    )
    if outcome.window_overflowed:
        log.warning(
            "feed window overflowed: items may have fallen off it between polls",
            feed_id=read.source.id,
            items=items,
            next_poll_in=str(record.interval),
        )
