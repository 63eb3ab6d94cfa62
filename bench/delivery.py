"""Delivery throughput and latency: matches through the real worker to a loopback receiver.

    python bench/delivery.py [--matches 10000] [--workers 1] [--pool prefork] [--concurrency 4]
        [--batch-concurrency 2] [--db postgres|sqlite] [--scaleout-matches 5000]
        [--scaleout-pool threads] [--quick]

Real parts only: PostgreSQL (a fresh schema in 127.0.0.1:5432/test, migrated to head; SQLite
WAL with ``--db sqlite``), Redis (one database, flushed before and after), ``celery -A
worker.app worker -Q deliver`` subprocesses and a webhook receiver in a process of its own
(bench/scaleout.py). Matches are written by ``worker.store`` as the poller writes them (item,
its story, match, one delivery; ``--batch`` matches per transaction, ``created_at`` being that
moment) and ``watchfloor.deliver`` is enqueued after the commit. The channel has sent before
(its ``channel_state`` row exists). Runs:

- burst, twice in one run: ``--matches`` written and enqueued as fast as the bench can while
  the worker drains; deliveries/s from the first enqueue to the last receipt; p50/p95 of
  receipt - match time. First the one-task-per-delivery path (``watchfloor.deliver`` per id,
  ``--workers`` x ``--pool`` x ``--concurrency``, as compose ran it), then today's batched
  path (``watchfloor.deliver_batch``, one OS process: ``-P threads -c --batch-concurrency``);
  the batched burst keeps up with this bench's producer, so its rate is the producer's, and
  a third run preseeds ``--matches`` and enqueues them at once: one process's capacity;
- paced: one match per transaction at a rate well under capacity: latency without a queue;
- in-process: ``worker.outbox.deliver.deliver`` one after another (``--baseline`` of them),
  then ``worker.outbox.batch.deliver_batch`` on BATCH_MAX ids at a time;
- scale-out: a preseeded load on 1, then 2 batched worker processes (``--scaleout-pool`` and
  ``--scaleout-concurrency`` each); threads by default, so one worker is one OS process.

"cpu ms/deliv" is the worker processes' CPU (this process's, in-process) per delivery;
"machine busy" the share of all cores busy meanwhile (Linux /proc): on a shared box, read it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/delivery.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench import scaleout
from bench.scaleout import Drain, Receiver, Workers, WorkerSpec, machine_cpu
from feeds.normalize import fingerprint
from feeds.types import FeedItem
from tests.helpers.configdir import write_config
from tests.helpers.processes import service_env
from worker import db
from worker.logs import configure_logging
from worker.models import ChannelState, Delivery, Item, Story, utcnow
from worker.outbox import store as outbox_store
from worker.outbox.batch import deliver_batch
from worker.outbox.batching import BATCH_MAX
from worker.outbox.deliver import deliver as deliver_row
from worker.outbox.store import Kind
from worker.planning import plan_delivery
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings
from worker.store import feeds as feeds_store
from worker.store import items as items_store

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FEED_ID, CHANNEL_ID = "wire", "hook"
WATCHLIST = {
    "id": "missile-tests",
    "title": "Missile tests",
    "query": '"ballistic missile" AND (Pyongyang OR "North Korea")',
    "severity": "high",
    "channels": [CHANNEL_ID],
}
SECRET = "whsec_QmVuY2ggc2VjcmV0IGtleSwgbm90IGZvciB1c2U="  # a bench-only key
SYLLABLES = ("kang", "song", "pyo", "ri", "hwa", "dong", "chon", "ma", "sin", "po", "yang", "hae")


@dataclasses.dataclass
class Stack:
    """The database, broker, config and receiver of one bench run (``scaleout.Load``)."""

    broker_url: str
    env: dict[str, str]
    tmp: Path
    rt: Runtime
    receiver: Receiver
    serial: int = 0

    def seed(
        self, count: int, batch: int = 100, after_commit: Callable[[list[str]], None] | None = None
    ) -> dict[str, float]:
        """Write ``count`` matches, one delivery each; returns delivery id -> match time."""
        created: dict[str, float] = {}
        for start in range(0, count, batch):
            with self.rt.sessions.begin() as session:
                now = utcnow()
                items = [self._item() for _ in range(min(batch, count - start))]
                rows = items_store.insert_new(session, FEED_ID, items, now)
                ids = [self._match(session, item_id, item, now) for item_id, item in rows]
            created.update(dict.fromkeys(ids, now.timestamp()))
            if after_commit is not None:
                after_commit(ids)
        return created

    def _match(self, session: Session, item_id: int, item: FeedItem, now: datetime) -> str:
        config = self.rt.config.current()
        story = Story(first_seen=now, last_seen=now, title=item.title, signature="")
        session.add(story)  # a story of its own, as file_items makes it, minus the LSH bands
        session.flush()
        session.execute(sa.update(Item).where(Item.id == item_id).values(story_id=story.id))
        [match] = config.matcher.match(item.title, item.summary, feed_id=FEED_ID, feed_tags=())
        watchlist = config.watchlist(match.watchlist_id)
        severity = watchlist.severity
        match_id = outbox_store.insert_alert(session, item_id, story.id, "", severity, match, now)
        plans = {CHANNEL_ID: plan_delivery(watchlist, config.channels[CHANNEL_ID], None, now)}
        [delivery_id] = outbox_store.insert_deliveries(session, plans, now, match_id=match_id)
        return delivery_id

    def _item(self) -> FeedItem:
        self.serial += 1
        rng = random.Random(self.serial)
        words = ["".join(rng.choices(SYLLABLES, k=3)) for _ in range(40)]
        title = " ".join([*words[:4], "ballistic missile", *words[4:7], "Pyongyang", *words[7:9]])
        summary = " ".join(words[9:]) + "."
        url, guid = f"https://news.example.org/{self.serial}", f"bench-{self.serial}"
        return FeedItem(guid, title, url, summary, utcnow(), fingerprint(title, summary))

    def outbox(self) -> Counter[str]:
        with self.rt.sessions.begin() as session:
            query = sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)
            return Counter({str(status): n for status, n in session.execute(query)})

    def unsettled(self) -> int:
        return sum(n for status, n in self.outbox().items() if status != "sent")


@contextmanager
def open_stack(args: argparse.Namespace, tmp: Path, receiver: Receiver) -> Iterator[Stack]:
    schema, admin = f"bench_{uuid.uuid4().hex[:10]}", sa.create_engine(args.pg)
    db_url = f"sqlite:///{tmp / 'watchfloor.db'}"
    if args.db == "postgres":
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        db_url = f"{args.pg}?options=-csearch_path%3D{schema}"
    broker = redis.Redis.from_url(args.redis)
    broker.flushdb()
    channel = {"id": CHANNEL_ID, "type": "webhook", "url": receiver.url, "secret": SECRET}
    feed = {"id": FEED_ID, "url": "http://127.0.0.1:9/feed.xml"}  # never polled: no beat
    config_dir = write_config(tmp / "config", [feed], {"watchlists": [WATCHLIST]}, [channel])
    settings = dataclasses.replace(
        load_settings(), config_dir=config_dir, var_dir=tmp / "var", database_url=db_url
    )
    rt = build_runtime(dataclasses.replace(settings, allow_private_urls=True))
    try:
        db.upgrade(rt.engine)
        with rt.sessions.begin() as session:
            feeds_store.sync(session, rt.config.current().feeds, utcnow())
            session.add(ChannelState(id=CHANNEL_ID, error_count=0))  # see the module docstring
        yield Stack(args.redis, service_env(tmp, config_dir, db_url, args.redis), tmp, rt, receiver)
    finally:
        rt.close()
        if args.db == "postgres":
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        broker.flushdb()
        broker.close()


def baseline(stack: Stack, count: int, name: str) -> Drain:
    """``deliver(rt, id)`` one after another in this process: no broker, no pool.
    Its latencies are the time per call."""

    def run(ids: list[str]) -> list[float]:
        calls = []
        for delivery_id in ids:
            t = time.perf_counter()
            if (outcome := deliver_row(stack.rt, Kind.DELIVERY, delivery_id)).status != "sent":
                raise RuntimeError(f"in-process delivery {delivery_id}: {outcome}")
            calls.append(time.perf_counter() - t)
        return calls

    return in_process(stack, count, name, run)


def batch_baseline(stack: Stack, count: int, name: str) -> Drain:
    """``deliver_batch(rt, ids)`` on BATCH_MAX ids at a time in this process: no broker."""

    def run(ids: list[str]) -> list[float]:
        calls = []
        while ids:  # what a channel's cap leaves goes in the next batch, as the task does
            t = time.perf_counter()
            result = deliver_batch(stack.rt, ids[:BATCH_MAX])
            if {o.status for o in result.outcomes} != {"sent"}:
                raise RuntimeError(f"in-process batch: {result}")
            ids = result.enqueue + ids[BATCH_MAX:]
            calls.append(time.perf_counter() - t)
        return calls

    return in_process(stack, count, name, run)


def in_process(
    stack: Stack, count: int, name: str, run: Callable[[list[str]], list[float]]
) -> Drain:
    """Seed ``count`` matches, then time ``run(ids)`` (it returns its per-call times)."""
    ids = list(stack.seed(count))
    stack.receiver.control("reset")
    started, cpu, (busy, total) = time.time(), time.process_time(), machine_cpu()
    calls = run(ids)
    seconds = max(stack.receiver.control("arrivals").values()) - started
    result = Drain(name, count, seconds, calls, duplicates=stack.receiver.counts()[1])
    (busy_end, total_end), result.worker_cpu = machine_cpu(), time.process_time() - cpu
    result.busy = (busy_end - busy) / (total_end - total)
    return result


def paced(stack: Stack, workers: Workers, count: int, rate: float) -> Drain:
    """One match per transaction at ``rate``/s, under capacity: latency without a queue."""
    stack.receiver.control("reset")
    created: dict[str, float] = {}
    start = (time.time(), workers.cpu(), machine_cpu())
    for n in range(count):
        time.sleep(max(0.0, start[0] + n / rate - time.time()))
        created.update(stack.seed(1, 1, workers.enqueue))
    return scaleout.finish(stack, workers, f"paced {rate:g}/s", created, start)


HEADER = (
    f"{'run':<26} {'matches':>7} {'seconds':>7} {'deliv/s':>7} {'p50 s':>7} {'p95 s':>7} "
    f"{'cpu ms/deliv':>12} {'machine busy':>12}"
)


def show(r: Drain, latency: bool = True) -> Drain:
    p50, p95 = (f"{r.pct(0.5):.3f}", f"{r.pct(0.95):.3f}") if latency else ("-", "-")
    cpu = r.worker_cpu / r.count * 1000
    print(
        f"{r.name:<26} {r.count:>7} {r.seconds:>7.1f} {r.per_second:>7.1f} {p50:>7} {p95:>7} "
        f"{cpu:>12.1f} {r.busy:>12.0%}",
        flush=True,
    )
    return r


def burst(
    stack: Stack, spec: WorkerSpec, name: str, args: argparse.Namespace, pre: bool = False
) -> Drain:
    print(f"{name}: {spec.processes} x `{spec.command()}`", flush=True)
    with Workers(stack, spec, name.split()[0]) as workers:
        scaleout.warm_up(stack, workers)
        drain = scaleout.measure(stack, workers, name, args.matches, args.batch, pre)
        return show(drain, latency=not pre)


def run_delivery(args: argparse.Namespace, stack: Stack) -> list[Drain]:
    today = WorkerSpec(args.workers, args.pool, args.concurrency, batched=False)
    batched = WorkerSpec(1, "threads", args.batch_concurrency, batched=True)
    print(HEADER, flush=True)
    single = burst(stack, today, "one-task-per-delivery burst", args)
    fast = burst(stack, batched, "batched burst", args)
    capacity = burst(stack, batched, "batched, preseeded", args, pre=True)
    with Workers(stack, batched, "paced") as workers:
        scaleout.warm_up(stack, workers)
        rate = round(min(args.rate, fast.per_second / 2), 1)
        paced_run = show(paced(stack, workers, args.paced, rate))
    base = show(baseline(stack, args.baseline, "in-process sequential"))
    inbatch = show(batch_baseline(stack, args.baseline, "in-process batches"))
    print(f"burst producer: {fast.producer_seconds:.1f} s, {args.batch} matches per transaction")
    print(
        f"ratio batched / one-task-per-delivery burst: {fast.per_second / single.per_second:.2f}x"
        f"; p95 {fast.pct(0.95):.2f} s vs {single.pct(0.95):.2f} s"
    )
    print(f"ratio in-process batches / sequential: {inbatch.per_second / base.per_second:.2f}x")
    print(
        f"one batched process, preseeded (its capacity): {capacity.per_second:,.0f} deliveries/s"
        f", {capacity.per_second / single.per_second:.2f}x the one-task-per-delivery burst"
    )
    return [single, fast, capacity, paced_run, base, inbatch]


def run_scaleout(args: argparse.Namespace, stack: Stack) -> list[Drain]:
    spec = WorkerSpec(1, args.scaleout_pool, args.scaleout_concurrency, batched=True)
    print(f"scale-out, preseeded, batched: 1 then 2 x `{spec.command()}`")
    print(HEADER)
    one, two = scaleout.compare(
        stack, spec.pool, spec.concurrency, args.scaleout_matches, batched=True
    )
    show(one, latency=False), show(two, latency=False)
    print(f"scale-out ratio 2 / 1 worker processes: {two.per_second / one.per_second:.2f}x")
    return [one, two]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("INFO")  # the worker's own log lines in the in-process runs, sent nowhere
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115
    where = "PostgreSQL 127.0.0.1:5432/test" if args.db == "postgres" else "SQLite WAL"
    print(
        f"delivery bench: {where}, broker {args.redis}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )
    with (
        Receiver() as receiver,
        tempfile.TemporaryDirectory(prefix="watchfloor-bench-") as tmp,
        open_stack(args, Path(tmp), receiver) as stack,
    ):
        rate, cpu = receiver.probe(args.probe)
        print(
            f"receiver: {args.probe} POSTs, a new connection each, from 8 threads: {rate:,.0f}/s "
            f"(client-bound); its CPU {cpu * 1e6:,.0f} us/POST (~{1 / cpu:,.0f}/s on one core)"
        )
        print("p50/p95: match committed -> webhook received (in-process: per deliver() call)")
        results = run_delivery(args, stack) if args.only in (None, "delivery") else []
        results += run_scaleout(args, stack) if args.only in (None, "scaleout") else []
        outbox = stack.outbox()
    duplicates = sum(r.duplicates for r in results)
    print(f"outbox at the end: {dict(outbox)}; webhook-ids received twice: {duplicates}")
    return 0 if set(outbox) == {"sent"} and not duplicates else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--matches", type=int, default=10_000, help="burst size")
    p.add_argument("--workers", type=int, default=1, help="worker processes in the burst")
    p.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    p.add_argument("--concurrency", type=int, default=4, help="per worker (compose: 4)")
    p.add_argument(
        "--batch-concurrency", type=int, default=2, help="threads of the one batched worker"
    )
    p.add_argument("--db", default="postgres", choices=["postgres", "sqlite"])
    p.add_argument("--batch", type=int, default=50, help="matches per outbox transaction")
    p.add_argument("--paced", type=int, default=200, help="matches in the paced run")
    p.add_argument("--rate", type=float, default=20.0, help="paced matches/s (<= burst/2)")
    p.add_argument("--baseline", type=int, default=1000, help="in-process deliveries")
    p.add_argument("--scaleout-matches", type=int, default=5000)
    p.add_argument("--scaleout-pool", default="threads", choices=["prefork", "threads"])
    p.add_argument("--scaleout-concurrency", type=int, default=4)
    p.add_argument("--probe", type=int, default=2000, help="receiver capacity probe POSTs")
    p.add_argument("--only", choices=["delivery", "scaleout"])
    p.add_argument("--pg", default=os.environ.get("WATCHFLOOR_TEST_PG", PG_BASE))
    p.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="flushed before/after")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.matches, args.paced, args.baseline, args.scaleout_matches = 50, 10, 20, 40
        args.probe, args.batch = 100, 10
    return args


if __name__ == "__main__":
    sys.exit(main())
