"""The store's hot queries on a big PostgreSQL store: plans and times.

    .venv/bin/python bench/store_scale.py                       # 10,000,000 items
    .venv/bin/python bench/store_scale.py --items 1000000 --keep  # a smaller store, kept

Generates (in SQL, with generate_series) ``--items`` items over ``--feeds`` feeds, as a
store pruned hourly holds them: 30 days and an hour of items (the prune's hour is due),
one story per 4 items, 8 band keys per story for the last 3 days and an hour of stories,
and an alert for 1 item in 200; then
runs ANALYZE and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of each statement in
``worker.store.plans.QUERIES`` (the worker's own: the claim, the new-item lookups, the
story window and the prunes; DELETEs run inside a rolled-back transaction). The store
lives in its own schema of $WATCHFLOOR_TEST_PG (default: 127.0.0.1:5432/test), dropped
afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.db import make_engine, upgrade
from worker.store import plans

PG = os.environ.get("WATCHFLOOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SPAN = plans.KEEP_ITEMS + timedelta(hours=1)  # what an hourly prune leaves, plus its due hour
BAND_SPAN = plans.KEEP_BANDS + timedelta(hours=1)
ITEMS_PER_STORY = 4
KEYS_PER_STORY = 8
ALERT_EVERY = 200


def generate(conn: sa.Connection, items: int, feeds: int, now: datetime) -> None:
    """Feeds ``feed-N``, items ``feed-N/M`` spread evenly over SPAN before ``now``."""
    stories = max(1, items // ITEMS_PER_STORY)
    values = {
        "items": items,
        "feeds": feeds,
        "stories": stories,
        "now": now.replace(tzinfo=None),
        "span": SPAN.total_seconds(),
        "banded": max(1, int(stories * BAND_SPAN / SPAN)),
        "keys": KEYS_PER_STORY,
        "every": ALERT_EVERY,
    }
    statements = [
        "INSERT INTO feeds (id, url, config_url, next_poll_at, error_count, created_at,"
        " window_overflows) SELECT 'feed-' || n, 'https://news.example.org/' || n,"
        " 'https://news.example.org/' || n,"
        " :now - make_interval(secs => (n * 37) % 600) + interval '5 minutes', 0, :now, 0"
        " FROM generate_series(0, :feeds - 1) AS n",
        "INSERT INTO stories (id, first_seen, last_seen, title, signature)"
        " SELECT s, :now - make_interval(secs => :span * s / :stories),"
        " :now - make_interval(secs => :span * s / :stories), 'story ' || s, '{}'"
        " FROM generate_series(1, :stories) AS s",
        "INSERT INTO items (id, feed_id, guid, canonical_url, title, summary, published_at,"
        " fetched_at, fingerprint, story_id, signature, language)"
        " SELECT i, 'feed-' || (i % :feeds), 'feed-' || (i % :feeds) || '/' || i,"
        " 'https://news.example.org/feed-' || (i % :feeds) || '/' || i, 'item ' || i, 'text',"
        " :now - make_interval(secs => :span * i / :items),"
        " :now - make_interval(secs => :span * i / :items), md5(i::text),"
        " 1 + (i - 1) / 4, '{}', 'en' FROM generate_series(1, :items) AS i",
        "INSERT INTO story_bands (key, story_id, seen_at)"
        " SELECT hashtextextended(s || ':' || k, 0), s,"
        " :now - make_interval(secs => :span * s / :stories)"
        " FROM generate_series(1, :banded) AS s, generate_series(1, :keys) AS k"
        " ON CONFLICT DO NOTHING",
        "INSERT INTO matches (item_id, watchlist_id, story_id, update_kind, severity, hits,"
        " snippet, created_at) SELECT i, 'missile-tests', 1 + (i - 1) / 4, '', 'high', '[]',"
        " '', :now - make_interval(secs => :span * i / :items)"
        " FROM generate_series(:every, :items, :every) AS i",
        "SELECT setval(pg_get_serial_sequence('items', 'id'), :items)",
        "SELECT setval(pg_get_serial_sequence('stories', 'id'), :stories)",
    ]
    numbers = {k: v for k, v in values.items() if k != "now"}  # our own numbers, inlined:
    for statement in statements:  # psycopg would bind small ones as smallint
        for name, number in sorted(numbers.items(), key=lambda kv: -len(kv[0])):
            statement = statement.replace(f":{name}", repr(number))
        conn.execute(sa.text(statement.replace(":now", "CAST(:now AS timestamp)")), values)


def explain(conn: sa.Connection, name: str, now: datetime) -> tuple[str, float]:
    """The plan text and the execution time in ms, the statement rolled back."""
    statement = plans.sql(conn, plans.QUERIES[name](now))
    with conn.begin_nested() as savepoint:
        rows = conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")).scalars().all()
        savepoint.rollback()
    text = "\n".join(rows)
    ms = next(
        (float(r.split(":")[1].split()[0]) for r in rows if r.startswith("Execution Time")), 0.0
    )
    return text, ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--feeds", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    schema = f"wf_scale_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{PG}?options=-csearch_path%3D{schema}")
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        upgrade(engine)
        start = time.perf_counter()
        with engine.begin() as conn:
            generate(conn, args.items, args.feeds, now)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
        built = time.perf_counter() - start
        print(f"store: {args.items:,} items, {args.feeds:,} feeds in schema {schema}")
        print(f"generated and analysed in {built:.0f} s\n")
        times = {}
        with engine.connect() as conn, conn.begin():
            for name in plans.QUERIES:
                text, ms = explain(conn, name, now)
                times[name] = ms
                print(f"== {name}: {ms:.2f} ms\n{text}\n")
        print("summary (execution time, ms):")
        for name, ms in times.items():
            print(f"  {name:20} {ms:10.2f}")
    finally:
        engine.dispose()
        if not args.keep:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
