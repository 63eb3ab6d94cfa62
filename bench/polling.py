"""Polling throughput of one worker process: a thread pool versus one poll after another.

    python bench/polling.py [--feeds 2000] [--latency 0.05] [--threads 8] [--hosts 50]
                            [--baseline-feeds 500] [--first-poll-baseline-feeds 200] [--quick]

The real poll path, ``worker.pipeline.poll_feed``, runs against a real SQLite database (WAL,
migrated to head) and a feed farm in a child process (bench/_loopback.py): every response
comes after ``--latency`` seconds, and feeds are spread round-robin over ``--hosts`` loopback
addresses so the fetcher's real per-host cap (4) stays in force, as with real feeds on many
hosts. A warm-up pass stores every feed's ~20 items (a first poll). Each measured pass starts
after half the feeds published two new items; the other half answer 304 to the stored ETag.
"threads-N" is what ``celery worker -P threads -c N -Q poll`` does (N threads in one
process, each calling poll_feed); "sequential" is the same code one feed after another, on
the same database in the same run (on the first ``--baseline-feeds`` feeds: a rate, and the
database still holds every feed). ``--threads 4,8,16`` measures several pool sizes. Broker
traffic is left out: a Celery task adds its message round trip on top.

Columns: wall seconds and feeds/min; this process's CPU per feed and the cores it used
(about 1.0 means the GIL is the ceiling); the database transactions, i.e. each
``with rt.sessions.begin()`` block the pipeline opens (the wait for a pooled connection and
for SQLite's write lock included), mean and p95 ms; SQL statement time per feed (lock waits
in SQLite's busy handler included); and the share of wall time when a transaction was open.

First poll: the warm-up times ``worker.poll_write.file_items`` (the name the pipeline calls),
the filing of a poll's new items into stories, per new item: wall and this thread's CPU
(``time.thread_time``: SQLite's C code runs in the calling thread too), and the SQL
statements it ran. Wall time includes waits for the GIL behind the other threads. The
baseline, in the same run, is a second first poll on a fresh database and config of the first
``--first-poll-baseline-feeds`` feeds with the same threads, filing one item at a time as
before batching (commit 3453814: ``assign_story``, then an UPDATE of the item). Its database
ends with fewer stories than the warm-up's, and filing slows as stories accumulate (more
candidates share a band key), so the batched path is also shown over its first calls to end
that filed as many items as the baseline did, on a database of about the same size.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session

if __package__ in (None, ""):  # run as ``python bench/polling.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._loopback import FeedFarm
from feeds import story as story_core
from feeds.types import FeedItem
from tests.helpers.configdir import write_config
from worker import db, poll_write
from worker.logs import configure_logging
from worker.models import Item, Story, StoryBand
from worker.pipeline import poll_feed
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings

TARGET_PER_MINUTE = 2000
TARGET_FILING_MS = 1.0  # per new item on a first poll (issue 11)
WARM_UP_THREADS = 8  # more only adds lock and pool waits to a pass that is not measured

FileItems = Callable[[Session, Sequence[tuple[int, FeedItem]], datetime], dict[int, int]]


class DbClock:
    """Stands in for ``Runtime.sessions`` to time every ``begin()`` block the pipeline opens,
    and times every SQL statement the engine runs (lock waits inside SQLite included)."""

    def __init__(self, sessions: Any, engine: Engine) -> None:
        self.sessions = sessions
        self.spans: list[tuple[float, float]] = []
        self.sql_seconds = 0.0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    @contextmanager
    def begin(self) -> Iterator[Any]:
        start = time.perf_counter()
        try:
            with self.sessions.begin() as session:
                yield session
        finally:
            self.spans.append((start, time.perf_counter()))  # list.append is atomic

    def reset(self) -> None:
        with self._lock:
            self.spans, self.sql_seconds = [], 0.0

    def _before(self, conn: Any, *_: Any) -> None:
        conn.info["bench_sql_started"] = time.perf_counter()

    def _after(self, conn: Any, *_: Any) -> None:
        took = time.perf_counter() - conn.info.pop("bench_sql_started")
        with self._lock:
            self.sql_seconds += took


@dataclass(frozen=True)
class Filing:
    """Calls of ``file_items`` summed: items filed, wall and CPU seconds, SQL statements."""

    calls: int = 0
    items: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    statements: int = 0

    def __add__(self, other: Filing) -> Filing:
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return Filing(*(a + b for a, b in pairs))

    def ms(self) -> float:
        """Wall ms per item."""
        return self.seconds / max(self.items, 1) * 1000

    def costs(self) -> str:
        return (
            f"cpu {self.cpu_seconds / max(self.items, 1) * 1000:.2f} ms, "
            f"{self.statements / max(self.items, 1):.1f} SQL statements per item"
        )


class StoryTimer:
    """Stands in for ``worker.poll_write.file_items``: times each call in the calling thread
    (wall, ``time.thread_time`` and the SQL statements it ran), kept in the order they end."""

    def __init__(self, inner: FileItems, engine: Engine) -> None:
        self.inner = inner
        self.calls: list[Filing] = []
        self._local = threading.local()  # statements are counted in the filing thread only
        event.listen(engine, "before_cursor_execute", self._count)

    def __call__(
        self, session: Session, items: Sequence[tuple[int, FeedItem]], now: datetime
    ) -> dict[int, int]:
        self._local.statements, self._local.active = 0, True
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return self.inner(session, items, now)
        finally:
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            self._local.active = False
            done = Filing(1, len(items), wall, cpu, self._local.statements)
            self.calls.append(done)  # list.append is atomic

    def total(self, items: int | None = None) -> Filing:
        """Every call summed, or the first calls to end that filed ``items`` items."""
        out = Filing()
        for call in self.calls:
            if items is not None and out.items >= items:
                break
            out += call
        return out

    def _count(self, *_: Any) -> None:
        if getattr(self._local, "active", False):
            self._local.statements += 1


@contextmanager
def filing_through(timer: StoryTimer) -> Iterator[StoryTimer]:
    saved = poll_write.file_items
    poll_write.file_items = timer  # the module global take_in calls
    try:
        yield timer
    finally:
        poll_write.file_items = saved


def file_one_at_a_time(
    session: Session, items: Sequence[tuple[int, FeedItem]], now: datetime
) -> dict[int, int]:
    """The baseline: filing as before batching (commit 3453814), item by item: ``assign_story``,
    then the pipeline's UPDATE of the item, which now writes its signature too (the batched
    path writes it, so both pay for it)."""
    story_of: dict[int, int] = {}
    for item_id, item in items:
        story_id, signature = _assign_story(session, item, now)
        values = {"story_id": story_id, "signature": signature}
        session.execute(update(Item).where(Item.id == item_id).values(**values))
        story_of[item_id] = story_id
    return story_of


def _assign_story(
    session: Session, item: FeedItem, now: datetime, window: timedelta = story_core.STORY_WINDOW
) -> tuple[int, str]:
    """3453814's ``assign_story``: one SELECT of the recent stories sharing a band key, each
    compared with its own signature; a new story is flushed for its id. Also returns the
    item's signature as JSON, for the UPDATE."""
    sig = story_core.story_signature(item.title, item.summary)
    keys = set(story_core.band_keys(sig))
    seen = item.published_at or now
    candidates = session.scalars(
        select(Story)
        .join(StoryBand, StoryBand.story_id == Story.id)
        .where(StoryBand.key.in_(keys), Story.last_seen >= seen - window)
        .distinct()
    ).all()
    scored = [
        (story_core.similarity(sig, other), story)
        for story in candidates
        if abs(story.first_seen - seen) <= window
        and (other := _old_signature(story)) is not None
        and story_core.same_story(sig, other)
    ]
    signature = story_core.to_json(sig)
    if scored:
        story = max(scored, key=lambda pair: pair[0])[1]
        story.last_seen = max(story.last_seen, seen)
    else:
        story = Story(first_seen=seen, last_seen=seen, title=item.title, signature=signature)
        session.add(story)
        session.flush()
    _add_bands(session, story.id, keys, seen)
    return story.id, signature


def _old_signature(story: Story) -> story_core.StorySignature | None:
    try:
        return story_core.from_json(story.signature)
    except ValueError:  # written by another signature version: it cannot be compared
        return None


def _add_bands(session: Session, story_id: int, keys: set[int], seen: datetime) -> None:
    """3453814's: a joining item's keys are added too, those the story lacks."""
    known = set(
        session.scalars(
            select(StoryBand.key).where(StoryBand.story_id == story_id, StoryBand.key.in_(keys))
        )
    )
    session.add_all(StoryBand(key=k, story_id=story_id, seen_at=seen) for k in keys - known)


@dataclass
class PassResult:
    name: str
    threads: int
    feeds: int
    seconds: float
    cpu_seconds: float
    statuses: Counter[str]
    served: dict[str, int]
    new_items: int = 0
    matches: int = 0
    errors: list[str] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    started: float = 0.0
    sql_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def poll(self, rt: Runtime, feed_id: str) -> None:
        """One poll_feed call, counted; a crash is a finding, so it is kept, not raised."""
        try:
            outcome = poll_feed(rt, feed_id)
        except Exception as exc:
            with self._lock:
                self.statuses["crash"] += 1
                self.errors.append(f"{feed_id}: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            self.statuses[outcome.status] += 1
            self.new_items += len(outcome.new_items)
            self.matches += len(outcome.matches)
            if outcome.error:
                self.errors.append(f"{feed_id}: {outcome.error}")

    @property
    def per_minute(self) -> float:
        return self.feeds / self.seconds * 60

    def txn_ms(self) -> tuple[float, float]:
        """Mean and p95 of the transaction blocks, in ms."""
        durations = sorted(end - start for start, end in self.spans) or [0.0]
        p95 = durations[min(len(durations) - 1, int(0.95 * len(durations)))]
        return sum(durations) / len(durations) * 1000, p95 * 1000

    def db_share(self) -> float:
        """Share of the pass's wall time in which at least one transaction was open."""
        busy, reach = 0.0, self.started
        for start, end in sorted(self.spans):
            start = max(start, reach)
            if end > start:
                busy, reach = busy + end - start, end
        return busy / self.seconds


def build(tmp: Path, urls: Sequence[str]) -> tuple[Runtime, DbClock, list[str]]:
    """A runtime on a fresh, migrated SQLite database and a config dir with every feed."""
    ids = [f"feed-{n:05d}" for n in range(len(urls))]
    feeds = [{"id": i, "url": u, "interval": "5m"} for i, u in zip(ids, urls, strict=True)]
    settings = dataclasses.replace(
        load_settings(),
        config_dir=write_config(tmp / "config", feeds),
        var_dir=tmp,
        database_url=f"sqlite:///{tmp / 'watchfloor.db'}",
        allow_private_urls=True,
    )
    rt = build_runtime(settings)
    db.upgrade(rt.engine)
    clock = DbClock(rt.sessions, rt.engine)
    rt.sessions = clock  # type: ignore[assignment]  # duck-typed: the pipeline only calls begin()
    return rt, clock, ids


def run_pass(
    rt: Runtime, clock: DbClock, farm: FeedFarm, ids: Sequence[str], threads: int
) -> PassResult:
    name = "sequential" if threads == 1 else f"threads-{threads}"
    result = PassResult(name, threads, len(ids), 0.0, 0.0, Counter(), {})
    clock.reset()
    cpu, result.started = time.process_time(), time.perf_counter()
    if threads == 1:
        for feed_id in ids:
            result.poll(rt, feed_id)
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="poll") as pool:
            list(pool.map(partial(result.poll, rt), ids))
    result.seconds = time.perf_counter() - result.started
    result.cpu_seconds, result.spans = time.process_time() - cpu, clock.spans
    result.sql_seconds = clock.sql_seconds
    result.served = farm.stats()
    return result


HEADER = (
    f"{'pass':<12} {'threads':>7} {'feeds':>5} {'seconds':>7} {'feeds/min':>9} "
    f"{'cpu ms/feed':>11} {'cores':>5} {'txn ms mean':>11} {'p95':>6} {'sql ms/feed':>11} "
    f"{'db open':>7}"
)


def row(r: PassResult) -> str:
    mean, p95 = r.txn_ms()
    return (
        f"{r.name:<12} {r.threads:>7} {r.feeds:>5} {r.seconds:>7.1f} {r.per_minute:>9,.0f} "
        f"{r.cpu_seconds / r.feeds * 1000:>11.1f} {r.cpu_seconds / r.seconds:>5.2f} "
        f"{mean:>11.1f} {p95:>6.0f} {r.sql_seconds / r.feeds * 1000:>11.1f} "
        f"{r.db_share():>7.0%}"
    )


def detail(r: PassResult) -> str:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
    served = ", ".join(f"{k} {v}" for k, v in sorted(r.served.items()))
    return (
        f"  {r.name}: polls {statuses}; server answered {served}; "
        f"new items {r.new_items}, matches {r.matches}"
    )


@dataclass
class FirstPoll:
    """A first-poll pass, its filing timer and the stories in its database after it."""

    label: str
    result: PassResult
    timer: StoryTimer
    stories: int

    def line(self) -> str:
        t, r = self.timer.total(), self.result
        return (
            f"{self.label}: stories {t.ms():.2f} ms per new item ({t.items:,} items, "
            f"{self.stories:,} stories; {t.costs()}), "
            f"whole first poll {r.seconds / max(r.new_items, 1) * 1000:.2f} ms per new item"
        )


def first_poll(
    label: str, rt: Runtime, clock: DbClock, farm: FeedFarm, ids: Sequence[str], inner: FileItems
) -> FirstPoll:
    timer = StoryTimer(inner, rt.engine)
    with filing_through(timer):
        result = run_pass(rt, clock, farm, ids, WARM_UP_THREADS)
    with rt.engine.connect() as conn:
        stories = conn.execute(select(func.count()).select_from(Story)).scalar_one()
    return FirstPoll(label, result, timer, stories)


def one_at_a_time(
    built: tuple[Runtime, DbClock, list[str]], farm: FeedFarm, warm: FirstPoll
) -> FirstPoll:
    """The first poll again, on its own fresh database and config of the first feeds, with
    the same threads, filing one item at a time."""
    rt, clock, ids = built
    label = f"first poll, one item at a time (baseline, {len(ids)} feeds)"
    base = first_poll(label, rt, clock, farm, ids, file_one_at_a_time)
    rt.engine.dispose()
    base.result.name = "one-at-a-time"
    # the farm counts since its last advance, which the warm-up's responses precede
    base.result.served = dict(Counter(base.result.served) - Counter(warm.result.served))
    return base


def measure(
    args: argparse.Namespace, farm: FeedFarm, tmp: Path
) -> tuple[list[PassResult], list[FirstPoll]]:
    """The warm-up pass and its one-at-a-time baseline, then one measured pass per pool size
    and the sequential one."""
    rt, clock, ids = build(tmp, farm.urls)
    # both databases migrated before anything is measured
    single = build(tmp / "one-at-a-time", farm.urls[: args.first_poll_baseline_feeds or None])
    warm = first_poll("first poll", rt, clock, farm, ids, poll_write.file_items)
    warm.result.name = "warm-up"
    secs = warm.result.seconds
    print(f"warm-up: first poll of every feed, {WARM_UP_THREADS} threads, {secs:.1f} s")
    print(detail(warm.result))
    print(warm.line(), flush=True)
    base = one_at_a_time(single, farm, warm)  # before any advance: the same items
    print(base.line())
    same = warm.timer.total(base.timer.total().items)
    print(
        f"first poll, batched, its first {same.items:,} items (the baseline's database size): "
        f"stories {same.ms():.2f} ms per new item ({same.costs()})",
        flush=True,
    )
    print(HEADER)
    results = [warm.result]
    for threads in [*args.threads, 1]:
        farm.advance()  # half the feeds publish new items; the rest will answer 304
        subset = ids if threads > 1 else ids[: args.baseline_feeds or None]
        results.append(run_pass(rt, clock, farm, subset, threads))
        print(row(results[-1]), flush=True)
    rt.engine.dispose()
    return results, [warm, base]


def report(results: list[PassResult], first: list[FirstPoll]) -> int:
    """Print the details and the verdicts; exit status 1 when any poll failed."""
    *pollers, base = results[1:]
    for r in [*results[1:], first[1].result]:
        print(detail(r))
    for r in [*results, first[1].result]:
        if r.errors:
            print(f"  {r.name} failures ({len(r.errors)}), first 3: {r.errors[:3]}")
    best = max(pollers, key=lambda r: r.per_minute)
    print(f"ratio {best.name} / sequential: {best.per_minute / base.per_minute:.1f}x")
    met = best.per_minute >= TARGET_PER_MINUTE
    print(
        f"target {'met   ' if met else 'MISSED'} >= {TARGET_PER_MINUTE:,} feeds/min per worker "
        f"process ({best.name}: {best.per_minute:,.0f})"
    )
    batched, single = (f.timer.total() for f in first)
    same = first[0].timer.total(single.items)
    print(f"ratio one-at-a-time / batched: {single.ms() / max(batched.ms(), 1e-9):.1f}x")
    print(
        f"ratio one-at-a-time / batched, same database size (first {same.items:,} items): "
        f"{single.ms() / max(same.ms(), 1e-9):.1f}x"
    )
    met = batched.ms() <= TARGET_FILING_MS
    print(
        f"target {'met   ' if met else 'MISSED'} <= {TARGET_FILING_MS:g} ms per new item "
        f"(stories, batched: {batched.ms():.2f} ms)"
    )
    return 1 if any(r.errors for r in [*results, first[1].result]) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = min(args.baseline_feeds or args.feeds, args.feeds)
    single = min(args.first_poll_baseline_feeds or args.feeds, args.feeds)
    print(
        f"polling {args.feeds} feeds on {args.hosts} loopback hosts, "
        f"{args.latency * 1000:.0f} ms latency per response; thread pools {args.threads}, "
        f"sequential on the first {base}, first poll one item at a time on the first {single}; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, SQLite WAL"
    )
    print("measured passes: half the feeds changed (2 new items each), half answer 304")
    configure_logging("INFO")  # the worker's own logging, one line per poll, sent nowhere
    with (
        open(os.devnull, "w") as sink,
        FeedFarm(args.feeds, hosts=args.hosts, latency=args.latency) as farm,
        tempfile.TemporaryDirectory(prefix="watchfloor-bench-") as tmp,
    ):
        logging.getLogger().handlers[0].setStream(sink)
        results, first = measure(args, farm, Path(tmp))
    return report(results, first)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeds", type=int, default=2000)
    p.add_argument("--latency", type=float, default=0.05, help="seconds added per response")
    p.add_argument("--threads", default="8", help="pool sizes, comma-separated (default 8)")
    p.add_argument("--hosts", type=int, default=50, help="loopback addresses (1..250)")
    p.add_argument(
        "--baseline-feeds",
        type=int,
        default=500,
        help="feeds in the sequential pass, a rate on the same database (default 500; 0: all)",
    )
    p.add_argument(
        "--first-poll-baseline-feeds",
        type=int,
        default=200,
        help="feeds in the first poll filed one item at a time, a fresh database (default 200; "
        "0: all)",
    )
    p.add_argument("--quick", action="store_true", help="40 feeds, 8 threads: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.feeds, args.threads, args.hosts, args.baseline_feeds = 40, "8", 10, 0
    args.threads = sorted({int(t) for t in str(args.threads).split(",")} - {1}) or [2]
    return args


if __name__ == "__main__":
    sys.exit(main())
