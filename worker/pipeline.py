"""Poll feeds in batches: read their states, fetch them all at once, parse, decide, and
write the whole batch in one transaction.

The reading (network and CPU, nothing written) is ``worker.poll_read``; the writing (one
transaction: new items, stories, alerts and their outbox rows, poll records, ops alerts)
is ``worker.poll_write``; the decisions are pure (worker/planning.py, alerts/updates.py,
feeds/story.py). One feed (``poll_feed``, the CLI, the tests) is a batch of one: there is
no second pipeline. A WebSub push (``ingest_push``) takes its items in the same way.

A batch whose transaction fails (a database error, a bug one feed's data trips) is written
again feed by feed, so one bad feed fails alone and the rest are recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog

from common.errors import IngestError
from feeds.parse import parse_feed
from worker.config import Config
from worker.models import utcnow
from worker.poll_read import Read, read_all
from worker.poll_write import PollOutcome, take_in, write_polls
from worker.runtime import Runtime
from worker.store import feeds as feeds_store
from worker.store import items as items_store

__all__ = ["PollOutcome", "ingest_push", "poll_due", "poll_feed", "poll_feeds"]

log = structlog.get_logger(__name__)
READ_BUDGET = 90.0  # seconds a batch may spend reading before it hands the rest back


def poll_due(
    rt: Runtime,
    lease: timedelta,
    budget: float,
    after: Callable[[PollOutcome], object] = lambda _: None,
) -> int:
    """Claim due feeds in batches and poll each batch, until none is due or ``budget``
    seconds are spent; ``after`` sees each outcome once its batch committed. Many
    processes on many machines do this side by side: a claim passes over the feeds another
    is claiming (``feeds_store.claim_batch``). Returns the feeds polled."""
    batch, polled = rt.settings.poll_batch, 0
    stop = time.monotonic() + budget
    while time.monotonic() < stop:
        now = utcnow()
        with rt.sessions.begin() as session:
            claimed = feeds_store.claim_batch(session, now, batch, lease)
        for outcome in poll_feeds(rt, claimed, now) if claimed else ():
            after(outcome)
        polled += len(claimed)
        if len(claimed) < batch:
            break
    return polled


def poll_feed(rt: Runtime, feed_id: str, now: datetime | None = None) -> PollOutcome:
    return poll_feeds(rt, [feed_id], now)[0]


def poll_feeds(
    rt: Runtime, feed_ids: Sequence[str], now: datetime | None = None
) -> list[PollOutcome]:
    """Poll these feeds as one batch; one outcome per id, in order."""
    now = now or utcnow()
    config = rt.config.current()
    sources = {i: config.feed(i) for i in feed_ids}
    active = [s for s in sources.values() if s is not None and s.enabled]
    with rt.sessions.begin() as session:
        feeds_store.sync(session, active, now)
        states = feeds_store.states(session, [s.id for s in active])
    reads = read_all(rt, [(s, states[s.id]) for s in active], now, budget=READ_BUDGET)
    written = {o.feed_id: o for o in _write(rt, config, reads, now)}
    skipped = PollOutcome("", "skipped", error="not in config or disabled")
    return [written.get(i) or _named(skipped, i) for i in feed_ids]


def _named(outcome: PollOutcome, feed_id: str) -> PollOutcome:
    return PollOutcome(feed_id, outcome.status, error=outcome.error)


def _write(rt: Runtime, config: Config, reads: list[Read], now: datetime) -> list[PollOutcome]:
    unread = [r for r in reads if r.status == "unread"]
    reads = [r for r in reads if r.status != "unread"]
    if unread:
        with rt.sessions.begin() as session:
            feeds_store.release(session, [r.source.id for r in unread], now)
        log.warning("poll batch out of time: feeds handed back unread", feeds=len(unread))
    handed_back = [PollOutcome(r.source.id, "skipped", error="out of time") for r in unread]
    return handed_back + _write_reads(rt, config, reads, now) if reads else handed_back


def _write_reads(
    rt: Runtime, config: Config, reads: list[Read], now: datetime
) -> list[PollOutcome]:
    try:
        with rt.sessions.begin() as session:
            return write_polls(session, rt, config, reads, now)
    except Exception as exc:
        if len(reads) == 1:
            return [_write_failed(rt, config, reads[0], exc, now)]
        log.exception("poll batch not written; writing its feeds one by one", feeds=len(reads))
    return [outcome for read in reads for outcome in _write_reads(rt, config, [read], now)]


def _write_failed(
    rt: Runtime, config: Config, read: Read, exc: Exception, now: datetime
) -> PollOutcome:
    """A feed whose write fails is recorded as failing (backing off), not polled forever."""
    log.exception("feed poll not written", feed_id=read.source.id)
    error = IngestError(f"not stored: {type(exc).__name__}: {exc}"[:300])
    failed = Read(read.source, read.feed, "error", error=error, fetch_seconds=read.fetch_seconds)
    try:
        with rt.sessions.begin() as session:
            return write_polls(session, rt, config, [failed], now)[0]
    except Exception:
        log.exception("feed poll error not recorded", feed_id=read.source.id)
        return PollOutcome(read.source.id, "error", error=error.message)


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
        take_in(session, rt, config, [(source, feed, outcome)], now)
    log.info(
        "websub push taken in",
        feed_id=feed_id,
        items=len(parsed.items),
        new_items=len(outcome.new_items),
        matches=len(outcome.matches),
    )
    return outcome
