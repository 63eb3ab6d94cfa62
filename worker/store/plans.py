"""The statements behind the store's hot paths, by name, for ``EXPLAIN``.

Each entry builds the very statement the store runs (``worker.store.feeds`` and
``worker.store.items`` expose their builders), with values of a realistic shape, so
tests/worker/test_query_plans.py and bench/store_scale.py look at the worker's own plans.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.sql.expression import ClauseElement

from feeds.story import STORY_WINDOW
from worker.planning import RHYTHM_SPAN
from worker.store import feeds, items

KEEP_ITEMS = timedelta(days=30)
KEEP_BANDS = timedelta(days=3)
FEED_IDS = [f"feed-{n}" for n in range(500)]

QUERIES: dict[str, Callable[[datetime], ClauseElement]] = {
    "poll doorbell": lambda now: feeds.due_count_query(now, 200 * 8),
    "claim due feeds": lambda now: feeds.batch_claim_statement(now, 200, timedelta(minutes=5)),
    "new items by url": lambda now: items.known_lookup(
        "canonical_url", [(f"feed-{n}", f"https://news.example.org/feed-{n}/1") for n in range(40)]
    ),
    "new items by guid": lambda now: items.known_lookup(
        "guid", [(f"feed-{n}", f"feed-{n}/1") for n in range(40)]
    ),
    "feed rhythms": lambda now: items.seen_lookup(FEED_IDS[:200], now - RHYTHM_SPAN),
    "story window": lambda now: items.band_lookup_capped(
        list(range(1000, 1040)), now - STORY_WINDOW
    ),
    "story members": lambda now: items.members_lookup(list(range(1, 30))),
    "prune items": lambda now: items.prune_items_statement(now - KEEP_ITEMS),
    "prune story bands": lambda now: items.prune_bands_statement(now - KEEP_BANDS),
}
# Reads of a whole index that are right at any size: NOT IN (SELECT item_id FROM matches)
# hashes every alerted item id once, from the index alone (alerts are far fewer than items).
WHOLE_INDEX_READS = {("prune items", "ix_matches_item_id")}


def sql(conn: Connection, statement: ClauseElement) -> str:
    """The statement as PostgreSQL text with its values inlined, ready for EXPLAIN."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)
