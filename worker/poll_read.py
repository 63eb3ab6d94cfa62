"""A poll batch's reading: every feed fetched at once, then each document parsed.

Network and CPU only, nothing is written: the batch's one transaction comes after
(``worker.poll_write``), so no database lock ever waits on a server. Page sources read
their known links and follow their new ones here, a few at a time in threads (their
politeness delays are per host and long); feeds are parsed in this thread. A batch has a
time budget: feeds not read when it runs out are handed back unread, to be claimed again,
so a batch of hostile documents (each cut at the parse limit) never outlives its task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

from common.errors import FetchError, IngestError
from feeds.fetch_async import AsyncFetcher
from feeds.normalize import content_hash
from feeds.parse import parse_feed
from feeds.render import render_page
from feeds.sources import FeedSource
from feeds.types import FetchResult, ParsedFeed
from worker import planning
from worker.pages import read_page
from worker.runtime import Runtime
from worker.store.feeds import FeedState

FOLLOW_THREADS = 4  # page sources following their new links at once
IN_FLIGHT = 256  # requests at once from one poll process (and at most 4 per host)
BROWSERS = 2  # headless Chromium renders at once


@dataclass(frozen=True, slots=True)
class Read:
    """What one feed's fetch and parse came to, before anything is written."""

    source: FeedSource
    feed: FeedState
    status: str  # "ok", "not-modified", "unchanged", "error", or "unread" (out of time)
    result: FetchResult | None = None
    parsed: ParsedFeed | None = None  # the items to take in (status "ok")
    body_hash: str | None = None  # to store; None keeps the stored one
    error: IngestError | None = None
    fetch_seconds: float | None = None


Fetched = tuple[FetchResult | IngestError, float]


def read_all(
    rt: Runtime,
    feeds: Sequence[tuple[FeedSource, FeedState]],
    now: datetime,
    budget: float | None = None,
) -> list[Read]:
    """Fetch every feed concurrently, then parse each; in the order given."""
    deadline = None if budget is None else time.monotonic() + budget
    fetched = fetch_all(rt, feeds)
    follows = [i for i, (source, _) in enumerate(feeds) if _follows(source)]
    reads: list[Read | None] = [None] * len(feeds)
    with ThreadPoolExecutor(max_workers=FOLLOW_THREADS, thread_name_prefix="follow") as pool:
        pending = {
            i: pool.submit(read_one, rt, *feeds[i], fetched[feeds[i][0].id], now) for i in follows
        }
        for i, (source, feed) in enumerate(feeds):
            if i in pending:
                continue
            if deadline is not None and time.monotonic() > deadline:
                reads[i] = Read(source, feed, "unread")
            else:
                reads[i] = read_one(rt, source, feed, fetched[source.id], now)
        for i, future in pending.items():
            reads[i] = future.result()
    return [read for read in reads if read is not None]


def _follows(source: FeedSource) -> bool:
    return source.type in ("page", "json") and source.follow


def fetch_all(rt: Runtime, feeds: Sequence[tuple[FeedSource, FeedState]]) -> dict[str, Fetched]:
    """Each feed's conditional GET, all at once on one aiohttp session (every guard of the
    fetch path, ``feeds.fetch_async``); for ``render: browser``, the page as Chromium leaves
    it, a few at a time in threads. With how long each took; an error is a value."""
    if not feeds:
        return {}
    fetched = asyncio.run(_fetch_all(rt, feeds))
    return {source.id: outcome for (source, _), outcome in zip(feeds, fetched, strict=True)}


async def _fetch_all(rt: Runtime, feeds: Sequence[tuple[FeedSource, FeedState]]) -> list[Fetched]:
    allow_private, limits = rt.settings.allow_private_urls, rt.fetch_limits
    browsers = asyncio.Semaphore(BROWSERS)
    async with AsyncFetcher(limits, allow_private=allow_private, max_in_flight=IN_FLIGHT) as net:

        async def one(source: FeedSource, feed: FeedState) -> FetchResult:
            headers = dict(source.headers)
            if source.render != "browser":
                return await net.fetch(
                    feed.url, etag=feed.etag, last_modified=feed.last_modified, headers=headers
                )
            async with browsers:
                return await asyncio.to_thread(
                    render_page,
                    feed.url,
                    limits=limits,
                    allow_private=allow_private,
                    headers=headers,
                    chromium=rt.settings.chromium,
                )

        return list(await asyncio.gather(*(_timed(one(s, f)) for s, f in feeds)))


async def _timed(fetching: Awaitable[FetchResult]) -> Fetched:
    started = time.monotonic()
    try:
        outcome: FetchResult | IngestError = await fetching
    except IngestError as exc:
        outcome = exc
    except Exception as exc:  # one broken fetch must not sink the batch: it is that feed's error
        outcome = FetchError(f"unexpected {type(exc).__name__}: {exc}"[:300])
    return outcome, time.monotonic() - started


def read_one(
    rt: Runtime, source: FeedSource, feed: FeedState, fetched: Fetched, now: datetime
) -> Read:
    """The feed's new document parsed, or why there is none (an error is a value)."""
    outcome, seconds = fetched
    if isinstance(outcome, IngestError):
        return Read(source, feed, "error", error=outcome, fetch_seconds=seconds)
    try:
        return replace(_parse(rt, source, feed, outcome, now), fetch_seconds=seconds)
    except IngestError as exc:
        return Read(source, feed, "error", result=outcome, error=exc, fetch_seconds=seconds)


def _parse(
    rt: Runtime, source: FeedSource, feed: FeedState, result: FetchResult, now: datetime
) -> Read:
    """Nothing to do for a 304 or the same body; else the items (page sources followed)."""
    body_hash = content_hash(result.body or b"")
    if result.not_modified or body_hash == feed.body_hash:
        status = "not-modified" if result.not_modified else "unchanged"
        return Read(source, feed, status, result=result)
    stored_hash: str | None = body_hash
    if source.type in ("page", "json"):
        parsed, waiting = read_page(rt, source, feed, result, now)
        if waiting:  # items left for the next poll: keep this body's validators unstored
            stored_hash, result = None, replace(result, etag=None, last_modified=None)
    else:
        body, kind = result.body or b"", result.content_type
        parsed = parse_feed(body, url=result.url, content_type=kind, skip=feed.item_digests)
        seen = planning.digests_seen(parsed, feed.first_poll)
        if seen != parsed.digests:  # a burst past the cap: the rest is read next poll
            parsed = replace(parsed, digests=seen)
            stored_hash, result = None, replace(result, etag=None, last_modified=None)
    return Read(source, feed, "ok", result=result, parsed=parsed, body_hash=stored_hash)
