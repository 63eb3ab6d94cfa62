"""Polling throughput: batched poll processes against one poll after another, on one database.

    python bench/polling.py [--db sqlite|postgres|URL] [--feeds 2000] [--latency 0.05]
                            [--hosts 50] [--batch 200] [--processes 1,2]
                            [--baseline-feeds 300] [--first-poll-baseline-feeds 200] [--quick]

The real poll path runs in poll worker processes (bench/_poll_worker.py), against a fresh
database (a SQLite file in WAL mode, or a fresh schema on PostgreSQL at 127.0.0.1:5432/test)
migrated to head, and a feed farm in a child process (bench/_loopback.py): every response
comes after ``--latency`` seconds, and feeds are spread round-robin over ``--hosts`` loopback
addresses, so the fetcher's real per-host cap (4) stays in force, as with real feeds on many
hosts.

First poll: every feed's ~20 items stored at once (``--processes``' largest count of worker
processes). It times the filing of new items into stories (``worker.poll_write.file_items``)
per item, wall and CPU, and the SQL statements it ran (issue #11's figure, target 1 ms). The
baseline, in the same run, is the first poll of the first ``--first-poll-baseline-feeds``
feeds on a fresh database with filing one item at a time as before batching (commit 3453814:
``assign_story``, then an UPDATE of the item), against the batched path on another fresh
database of the same feeds, both in one process.

Measured passes: before each, half the feeds publish two new items and the other half will
answer 304 to the stored ETag, and every feed is made due. "batched" is N processes each
doing what a ``poll_due`` task does (``worker.pipeline.poll_due``: claim a batch of due feeds,
FOR UPDATE SKIP LOCKED on PostgreSQL; fetch them at once on one aiohttp session; write the
batch in one transaction) until none is due. "sequential" is one process polling the first
``--baseline-feeds`` feeds one after another (``poll_feed``, a batch of one): a rate, in the
same run on the same database. Broker traffic is left out: a ``poll_due`` message costs one
round trip per many batches.

Columns: wall seconds and feeds a minute; the poll processes' CPU per feed and the cores
they used (CPU over wall; the farm and the database server run beside them on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

if __package__ in (None, ""):  # run as ``python bench/polling.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._loopback import FeedFarm
from tests.helpers.configdir import write_config
from worker import db
from worker.models import Feed, Story, utcnow

TARGET_PER_MINUTE = 20_000  # per poll process (issue 15)
TARGET_SPEEDUP = 10.0  # one batched process against one poll after another
TARGET_SCALE_OUT = 1.6  # two processes against one (this machine has 2 cores)
TARGET_FILING_MS = 1.0  # per new item on a first poll (issue 11)
WORKER = Path(__file__).resolve().parent / "_poll_worker.py"
PG_BASE = os.environ.get("WATCHFLOOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Run:
    """What one or more worker processes reported for one pass."""

    name: str
    processes: int
    feeds: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    new_items: int = 0
    matches: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    filing: Counter[str] = field(default_factory=Counter)
    served: dict[str, int] = field(default_factory=dict)

    def add(self, report: dict[str, Any]) -> None:
        self.feeds += report["feeds"]
        self.wall = max(self.wall, report["wall"])
        self.cpu += report["cpu"]
        self.statuses.update(report["statuses"])
        self.new_items += report["new_items"]
        self.matches += report["matches"]
        self.errors += report["errors"]
        self.first_errors += report["first_errors"]
        self.filing.update({k: v for k, v in report["filing"].items() if v is not None})

    @property
    def per_minute(self) -> float:
        return self.feeds / max(self.wall, 1e-9) * 60

    def filing_ms(self) -> tuple[float, float, float]:
        """Wall ms, CPU ms and SQL statements per filed item."""
        items = max(self.filing["items"], 1)
        f = self.filing
        return f["seconds"] / items * 1000, f["cpu"] / items * 1000, f["statements"] / items


class Served:
    """The farm's answers since the last call (its own counts run from its last advance)."""

    def __init__(self, farm: FeedFarm) -> None:
        self.farm, self.seen = farm, Counter[str]()

    def advance(self) -> None:
        """Half the feeds publish new items; the rest will answer 304."""
        self.farm.advance()
        self.seen = Counter()

    def __call__(self) -> dict[str, int]:
        now = Counter(self.farm.stats())
        delta, self.seen = now - self.seen, now
        return dict(delta)


class Stack:
    """A database, a config dir naming the farm's feeds, and the workers' environment."""

    def __init__(self, url: str, root: Path, urls: Sequence[str], batch: int) -> None:
        self.url, self.root = url, root
        self.ids = [f"feed-{n:05d}" for n in range(len(urls))]
        # an hour's interval: no feed comes due twice within a pass, however long it takes
        feeds = [
            {"id": i, "url": u, "interval": "1h", "min_interval": "1h"}
            for i, u in zip(self.ids, urls, strict=True)
        ]
        self.env = {
            **os.environ,
            "WATCHFLOOR_DATABASE_URL": url,
            "WATCHFLOOR_CONFIG_DIR": str(write_config(root / "config", feeds)),
            "WATCHFLOOR_VAR_DIR": str(root),
            "WATCHFLOOR_ALLOW_PRIVATE_URLS": "1",
            "WATCHFLOOR_POLL_BATCH": str(batch),
            "WATCHFLOOR_LOG_LEVEL": "WARNING",
        }
        self.engine = db.make_engine(url)
        db.upgrade(self.engine)
        from worker.config import load_config  # the feeds' rows, as beat's sync writes them
        from worker.store import feeds as feeds_store

        with self.engine.begin() as conn, Session(conn) as session:
            feeds_store.sync_all(session, load_config(root / "config").feeds, utcnow())
            session.flush()

    def all_due(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(Feed).values(next_poll_at=utcnow()))

    def stories(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(Story)).scalar_one())

    def run(self, name: str, processes: int, *args: str) -> Run:
        """Start the workers, let them go together, and sum what they report."""
        workers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), *args],
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]
        run = Run(name, processes)
        try:
            for worker in workers:
                assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            for worker in workers:
                out, _ = worker.communicate(timeout=7200)
                if worker.returncode:
                    raise RuntimeError(f"a poll worker failed ({worker.returncode}): {out}")
                run.add(json.loads(out.strip().splitlines()[-1]))
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
        return run

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def database(kind: str, root: Path, name: str) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{root / f'{name}.db'}"
        return
    base = PG_BASE if kind == "postgres" else kind
    schema = f"bench_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


HEADER = (
    f"{'pass':<12} {'processes':>9} {'feeds':>6} {'seconds':>7} {'feeds/min':>9} "
    f"{'cpu ms/feed':>11} {'cores':>5}"
)


def row(r: Run) -> str:
    return (
        f"{r.name:<12} {r.processes:>9} {r.feeds:>6} {r.wall:>7.1f} {r.per_minute:>9,.0f} "
        f"{r.cpu / max(r.feeds, 1) * 1000:>11.2f} {r.cpu / max(r.wall, 1e-9):>5.2f}"
    )


def detail(r: Run) -> str:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
    served = ", ".join(f"{k} {v}" for k, v in sorted(r.served.items()))
    return (
        f"  {r.name} x{r.processes}: polls {statuses}; server answered {served}; "
        f"new items {r.new_items}, matches {r.matches}"
    )


def filing_line(label: str, r: Run, stories: int) -> str:
    wall, cpu, statements = r.filing_ms()
    return (
        f"{label}: stories {wall:.2f} ms per new item ({r.filing['items']:,} items, "
        f"{stories:,} stories; cpu {cpu:.2f} ms, {statements:.3f} SQL statements per item), "
        f"whole first poll {r.wall / max(r.new_items, 1) * 1000:.2f} ms per new item"
    )


def first_polls(args: argparse.Namespace, farm: FeedFarm, served: Served, root: Path) -> list[Run]:
    """The first poll of the first feeds filed both ways, each on a fresh database, before
    the farm moves on; then the first poll of every feed (the measured passes' database)."""
    urls, runs = farm.urls[: args.first_poll_baseline_feeds], []
    for name, filing in (("one-at-a-time", "one-at-a-time"), ("batched-same", "batched")):
        with database(args.db, root, name) as url:
            stack = Stack(url, root / name, urls, args.batch)
            run = stack.run(name, 1, "--filing", filing)
            run.served = served()
            label = (
                f"first poll, {len(urls)} feeds, one item at a time (baseline)"
                if filing != "batched"
                else f"first poll, {len(urls)} feeds, batched (same feeds, fresh database)"
            )
            print(filing_line(label, run, stack.stories()), flush=True)
            stack.close()
        runs.append(run)
    return runs


def measure(args: argparse.Namespace, farm: FeedFarm, root: Path, url: str) -> list[Run]:
    served = Served(farm)
    base = first_polls(args, farm, served, root)
    stack = Stack(url, root / "main", farm.urls, args.batch)
    warm = stack.run("warm-up", max(args.processes), "--filing", "batched")
    warm.served = served()
    print(f"first poll of every feed, {warm.processes} process(es): {warm.wall:.1f} s")
    print(detail(warm))
    print(filing_line("first poll", warm, stack.stories()), flush=True)
    print(HEADER)
    runs = [*base, warm]
    for processes in args.processes:
        served.advance()
        stack.all_due()
        runs.append(stack.run("batched", processes))
        runs[-1].served = served()
        print(row(runs[-1]), flush=True)
    served.advance()
    ids_file = root / "sequential-ids"
    ids_file.write_text("\n".join(stack.ids[: args.baseline_feeds or None]))
    runs.append(stack.run("sequential", 1, "--mode", "sequential", "--feeds-file", str(ids_file)))
    runs[-1].served = served()
    print(row(runs[-1]), flush=True)
    stack.close()
    return runs


def verdict(met: bool, text: str) -> str:
    return f"target {'met   ' if met else 'MISSED'} {text}"


def report(runs: list[Run], args: argparse.Namespace) -> int:
    """Print the details, ratios and verdicts; exit status 1 when any poll failed."""
    single, same, warm, *batched, sequential = runs
    for r in [*batched, sequential]:
        print(detail(r))
    for r in runs:
        if r.errors:
            print(f"  {r.name} x{r.processes} failures ({r.errors}), first 3: {r.first_errors}")
    one = next(r for r in batched if r.processes == 1)
    print(f"ratio batched x1 / sequential: {one.per_minute / sequential.per_minute:.1f}x")
    print(
        verdict(
            one.per_minute >= TARGET_PER_MINUTE,
            f">= {TARGET_PER_MINUTE:,} feeds/min per poll process (batched x1: "
            f"{one.per_minute:,.0f})",
        )
    )
    ratio = one.per_minute / sequential.per_minute
    print(verdict(ratio >= TARGET_SPEEDUP, f">= {TARGET_SPEEDUP:g}x sequential ({ratio:.1f}x)"))
    for r in batched:
        if r.processes > 1:
            scale = r.per_minute / one.per_minute
            print(f"ratio batched x{r.processes} / batched x1: {scale:.2f}x")
            print(verdict(scale >= TARGET_SCALE_OUT, f">= {TARGET_SCALE_OUT}x with two processes"))
    base_ms, same_ms = single.filing_ms()[0], same.filing_ms()[0]
    print(f"ratio one-at-a-time / batched (same feeds): {base_ms / max(same_ms, 1e-9):.1f}x")
    ms = warm.filing_ms()[0]
    print(
        verdict(
            ms <= TARGET_FILING_MS,
            f"<= {TARGET_FILING_MS:g} ms per new item on a "
            f"first poll of {args.feeds:,} feeds (stories, batched: {ms:.2f} ms)",
        )
    )
    return 1 if any(r.errors for r in runs) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"polling {args.feeds:,} feeds on {args.hosts} loopback hosts, "
        f"{args.latency * 1000:.0f} ms latency per response, batches of {args.batch}; "
        f"batched with {', '.join(map(str, args.processes))} process(es), sequential on the "
        f"first {args.baseline_feeds or args.feeds}, first poll one item at a time on the first "
        f"{args.first_poll_baseline_feeds}; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, {args.db}"
    )
    print("measured passes: half the feeds changed (2 new items each), half answer 304")
    with (
        FeedFarm(args.feeds, hosts=args.hosts, latency=args.latency) as farm,
        tempfile.TemporaryDirectory(prefix="watchfloor-bench-") as tmp,
        database(args.db, Path(tmp), "main") as url,
    ):
        runs = measure(args, farm, Path(tmp), url)
    return report(runs, args)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", default="sqlite", help="sqlite, postgres or a database URL")
    p.add_argument("--feeds", type=int, default=2000)
    p.add_argument("--latency", type=float, default=0.05, help="seconds added per response")
    p.add_argument("--hosts", type=int, default=50, help="loopback addresses (1..250)")
    p.add_argument("--batch", type=int, default=200, help="feeds a worker claims at once")
    p.add_argument("--processes", default="1,2", help="batched pass sizes (default 1,2)")
    p.add_argument("--baseline-feeds", type=int, default=300, help="sequential pass (0: all)")
    p.add_argument("--first-poll-baseline-feeds", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="40 feeds on 10 hosts: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.feeds, args.hosts, args.baseline_feeds = 40, 10, 0
        args.first_poll_baseline_feeds = 20
    args.processes = sorted({int(n) for n in str(args.processes).split(",")} | {1})
    args.first_poll_baseline_feeds = min(args.first_poll_baseline_feeds, args.feeds)
    return args


if __name__ == "__main__":
    sys.exit(main())
