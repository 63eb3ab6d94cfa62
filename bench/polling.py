"""Polling throughput of one worker process: a thread pool versus one poll after another.

    python bench/polling.py [--feeds 2000] [--latency 0.05] [--threads 32] [--hosts 50] [--quick]

The real poll path, ``worker.pipeline.poll_feed``, runs against a real SQLite database (WAL,
migrated to head) and a feed farm in a child process (bench/_loopback.py): every response
comes after ``--latency`` seconds, feeds are spread round-robin over ``--hosts`` loopback
addresses so the fetcher's real per-host cap (4) stays in force. A warm-up pass stores every
feed's ~20 items (a first poll). Then each measured pass starts after half the feeds
published two new items; the other half answer 304 to the stored ETag. "threads" is what
``celery worker -P threads -c N -Q poll`` does (N threads in one process, each calling
poll_feed); "sequential" is the same code one feed after another, on the same database in
the same run. ``--threads 8,32`` measures several pool sizes. Broker traffic is not part of
it: a Celery task adds its message round trip on top.

Per pass: wall time, feeds/min, this process's CPU per feed, and the database transactions
(each ``with rt.sessions.begin()`` block: waiting for a pooled connection and the SQLite
write lock included): mean, p95 and the share of wall time when one was open.
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
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/polling.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._loopback import FeedFarm
from tests.helpers.configdir import write_config
from worker import db
from worker.logs import configure_logging
from worker.pipeline import poll_feed
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings

TARGET_PER_MINUTE = 2000


class TimedSessions:
    """Stands in for ``Runtime.sessions``: times every ``begin()`` block the pipeline opens."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.spans: list[tuple[float, float]] = []

    @contextmanager
    def begin(self) -> Iterator[Any]:
        start = time.perf_counter()
        try:
            with self.inner.begin() as session:
                yield session
        finally:
            self.spans.append((start, time.perf_counter()))  # list.append is atomic


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

    @property
    def per_minute(self) -> float:
        return self.feeds / self.seconds * 60

    def txn_ms(self, quantile: float) -> float:
        durations = sorted(end - start for start, end in self.spans)
        if not durations:
            return 0.0
        if quantile < 0:  # the mean
            return sum(durations) / len(durations) * 1000
        return durations[min(len(durations) - 1, int(quantile * len(durations)))] * 1000

    def db_share(self) -> float:
        """Share of the pass's wall time in which at least one transaction was open."""
        busy, reach = 0.0, self.started
        for start, end in sorted(self.spans):
            start = max(start, reach)
            if end > start:
                busy, reach = busy + end - start, end
        return busy / self.seconds


def build(tmp: Path, urls: Sequence[str]) -> tuple[Runtime, TimedSessions, list[str]]:
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
    timed = TimedSessions(rt.sessions)
    rt.sessions = timed  # type: ignore[assignment]  # duck-typed: the pipeline only calls begin()
    return rt, timed, ids


def run_pass(
    rt: Runtime, timed: TimedSessions, farm: FeedFarm, ids: Sequence[str], threads: int
) -> PassResult:
    name = "sequential" if threads == 1 else f"threads-{threads}"
    result = PassResult(name, threads, len(ids), 0.0, 0.0, Counter(), {})
    lock = threading.Lock()

    def one(feed_id: str) -> None:
        try:
            outcome = poll_feed(rt, feed_id)
        except Exception as exc:  # a crash is a finding: count it, show it, keep measuring
            with lock:
                result.statuses["crash"] += 1
                result.errors.append(f"{feed_id}: {type(exc).__name__}: {exc}")
            return
        with lock:
            result.statuses[outcome.status] += 1
            result.new_items += len(outcome.new_items)
            result.matches += len(outcome.matches)
            if outcome.error:
                result.errors.append(f"{feed_id}: {outcome.error}")

    timed.spans = []
    cpu, result.started = time.process_time(), time.perf_counter()
    if threads == 1:
        for feed_id in ids:
            one(feed_id)
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="poll") as pool:
            list(pool.map(one, ids))
    result.seconds = time.perf_counter() - result.started
    result.cpu_seconds, result.spans = time.process_time() - cpu, timed.spans
    result.served = farm.stats()
    return result


HEADER = (
    f"{'pass':<12} {'threads':>7} {'feeds':>6} {'seconds':>8} {'feeds/min':>10} "
    f"{'cpu ms/feed':>11} {'txn mean ms':>11} {'txn p95 ms':>10} {'db open':>7}"
)


def row(r: PassResult) -> str:
    return (
        f"{r.name:<12} {r.threads:>7} {r.feeds:>6} {r.seconds:>8.1f} {r.per_minute:>10,.0f} "
        f"{r.cpu_seconds / r.feeds * 1000:>11.1f} {r.txn_ms(-1):>11.1f} {r.txn_ms(0.95):>10.1f} "
        f"{r.db_share():>6.0%}"
    )


def detail(r: PassResult) -> str:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
    served = ", ".join(f"{k} {v}" for k, v in sorted(r.served.items()))
    return (
        f"  {r.name}: polls {statuses}; server answered {served}; "
        f"new items {r.new_items}, matches {r.matches}"
    )


def measure(args: argparse.Namespace, farm: FeedFarm, tmp: Path) -> list[PassResult]:
    rt, timed, ids = build(tmp, farm.urls)
    warm = run_pass(rt, timed, farm, ids, max(args.threads))
    print(f"warm-up (first poll of every feed, thread pool): {warm.seconds:.1f} s")
    print(detail(warm).replace("  threads", "  warm-up threads"), flush=True)
    print(HEADER)
    results = []
    for threads in [*args.threads, 1]:
        farm.advance()  # half the feeds publish new items; the rest will answer 304
        subset = ids if threads > 1 or not args.baseline_feeds else ids[: args.baseline_feeds]
        results.append(run_pass(rt, timed, farm, subset, threads))
        print(row(results[-1]), flush=True)
    for r in [warm, *results]:
        r.errors and print(f"  {r.name} errors (first 5 of {len(r.errors)}): {r.errors[:5]}")
    rt.engine.dispose()
    return [warm, *results]


def report(args: argparse.Namespace, results: list[PassResult]) -> int:
    warm, *measured = results
    *pollers, base = measured
    for r in measured:
        print(detail(r))
    best = max(pollers, key=lambda r: r.per_minute)
    print(f"ratio {best.name} / sequential: {best.per_minute / base.per_minute:.1f}x")
    met = best.per_minute >= TARGET_PER_MINUTE
    print(
        f"target {'met   ' if met else 'MISSED'} >= {TARGET_PER_MINUTE:,} feeds/min per worker "
        f"process ({best.name}: {best.per_minute:,.0f})"
    )
    failed = sum(r.statuses["error"] + r.statuses["crash"] for r in results)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("INFO")  # the worker's own logging, one line per poll, sent nowhere
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115
    print(
        f"polling {args.feeds} feeds on {args.hosts} loopback hosts, "
        f"{args.latency * 1000:.0f} ms latency per response, threads {args.threads}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, SQLite WAL"
    )
    print("measured passes: half the feeds changed (2 new items each), half answer 304")
    with (
        FeedFarm(args.feeds, hosts=args.hosts, latency=args.latency) as farm,
        tempfile.TemporaryDirectory(prefix="watchfloor-bench-") as tmp,
    ):
        results = measure(args, farm, Path(tmp))
    return report(args, results)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeds", type=int, default=2000)
    p.add_argument("--latency", type=float, default=0.05, help="seconds added per response")
    p.add_argument("--threads", default="32", help="pool sizes, comma-separated (default 32)")
    p.add_argument("--hosts", type=int, default=50, help="loopback addresses (1..250)")
    p.add_argument(
        "--baseline-feeds",
        type=int,
        default=0,
        help="poll only the first N feeds in the sequential pass (default: all)",
    )
    p.add_argument("--quick", action="store_true", help="40 feeds, 8 threads: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.feeds, args.threads, args.hosts = 40, "8", 10
    args.threads = sorted({int(t) for t in str(args.threads).split(",")} - {1}) or [2]
    return args


if __name__ == "__main__":
    sys.exit(main())
