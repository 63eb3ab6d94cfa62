"""Page and JSON API sources in the poll: read the list, follow its new items, hand them on.

The list is parsed by ``feeds.page``; new items (by canonical link) are followed by
``feeds.follow`` before the poll's transaction opens, so no database lock waits on the
network. Which items are followed, and which wait for the next poll, is
``planning.follow_plan``. An article that fails for now (the server asked us to wait, a 5xx,
a timeout) leaves its item for the next poll; one that is refused (404, robots.txt, a
blocked address) leaves the item with the list's text only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import structlog

from feeds.follow import Follower, with_article
from feeds.jsonapi import parse_json_api
from feeds.page import parse_page_body
from feeds.sources import FeedSource
from feeds.types import FetchResult, ParsedFeed
from worker import planning
from worker.runtime import Runtime
from worker.store import items as items_store
from worker.store.feeds import FeedState

log = structlog.get_logger(__name__)


def parse_listing(source: FeedSource, result: FetchResult) -> ParsedFeed:
    """A page source's list page, or a JSON API source's document, as items."""
    if source.select is None:
        raise ValueError(f"feed {source.id} has no select")
    body, url, kind = result.body or b"", result.url, result.content_type
    if source.type == "json":
        return parse_json_api(body, source.select, url=url, content_type=kind)
    return parse_page_body(body, source.select, url=url, content_type=kind)


def read_page(
    rt: Runtime, source: FeedSource, feed: FeedState, result: FetchResult, now: datetime
) -> tuple[ParsedFeed, bool]:
    """The page's items, followed where the source says so; True when some wait for the
    next poll (so the poll must not store this body's validators)."""
    parsed = parse_listing(source, result)
    if not source.follow:
        return parsed, False
    with rt.sessions() as session:
        known = items_store.known_guids(session, source.id, [i.guid for i in parsed.items])
    new = [item for item in parsed.items if item.guid not in known]
    window = rt.settings.first_poll_window
    plan = planning.follow_plan(new, feed.first_poll, window, now, source.follow_max)
    follower = Follower(
        limits=rt.fetch_limits,
        allow_private=rt.settings.allow_private_urls,
        delay=source.follow_delay,
        obey_robots=source.robots == "obey",
        headers=dict(source.headers),
    )
    followed = {f.url: f for f in follower.follow([item.url for item in plan.follow])}
    waiting = {item.guid for item in plan.defer}
    waiting |= {item.guid for item in plan.follow if followed[item.url].retry}
    items = []
    for item in parsed.items:
        if item.guid in waiting:
            continue
        article = followed.get(item.url)
        if article is not None and article.text:
            item = with_article(item, article.text)
        elif article is not None:
            log.info("article not read", feed_id=source.id, url=item.url, error=article.error)
        items.append(item)
    if waiting:
        log.info("articles left for the next poll", feed_id=source.id, items=len(waiting))
    return replace(parsed, items=tuple(items)), bool(waiting)
