"""Real deliver workers, the receiver they post to, measured drains, and 1 versus 2 processes.

    python bench/scaleout.py [--scaleout-matches 1000] [--scaleout-pool threads] [...]

is ``python bench/delivery.py --only scaleout``: the same stack (bench/delivery.py builds the
database, the broker and the seeding), only the scale-out part. A worker is ``celery -A
worker.app worker -Q deliver`` as compose runs it, in its own process group, logging at INFO
to a file. The receiver is a child process (asyncio + h11, keep-alive, answering 200 at once),
so it never competes for the bench's GIL; it notes each ``webhook-id`` and its arrival time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

if __package__ in (None, ""):  # run as ``python bench/scaleout.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import h11
import httpx
from celery import Celery

from bench._loopback import read_request
from tests.helpers.processes import Service, wait_until
from worker.outbox.batching import BATCH_MAX

STALL_SECONDS = 90.0  # no new receipt for this long: the run failed, show the worker log
TICK = os.sysconf("SC_CLK_TCK")
Mark = tuple[float, float, tuple[float, float]]  # (time, workers' CPU, machine_cpu()) at a start


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group (Linux /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12]) if int(fields[2]) == pgid else 0
    return ticks / TICK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = jiffies[3] + jiffies[4]  # idle + iowait
    return (sum(jiffies) - idle) / TICK, sum(jiffies) / TICK


@dataclass
class Arrivals:
    """The receiver's state: first arrival time per webhook-id, and repeats."""

    first: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0

    def answer(self, request: h11.Request) -> bytes:
        now, path = time.time(), request.target
        if path == b"/_control/arrivals":
            return json.dumps(self.first).encode()
        if path == b"/_control/reset":
            self.first, self.duplicates = {}, 0
        elif path != b"/_control/stats":  # a webhook
            msg_id = dict(request.headers).get(b"webhook-id", b"").decode()
            self.duplicates += msg_id in self.first
            self.first.setdefault(msg_id, now)
        stats = {"received": len(self.first), "duplicates": self.duplicates}
        return json.dumps({**stats, "cpu": time.process_time()}).encode()


async def _handle(state: Arrivals, reader: asyncio.StreamReader, writer: Any) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while (request := await read_request(conn, reader)) is not None:
            body = state.answer(request)
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            writer.write(conn.send(h11.Response(status_code=200, headers=headers)))
            writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            await writer.drain()
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                break
            conn.start_next_cycle()  # keep-alive
    except (ConnectionError, h11.ProtocolError):
        pass  # a client that hung up mid-request: nothing to answer
    finally:
        writer.close()


async def serve_receiver() -> None:
    state = Arrivals()
    server = await asyncio.start_server(lambda r, w: _handle(state, r, w), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.to_thread(sys.stdin.buffer.read)  # the parent closed our stdin: stop
    server.close()


class Receiver:
    """The parent's handle on the receiver child."""

    def __enter__(self) -> Receiver:
        argv = [sys.executable, str(Path(__file__).resolve()), "--receiver"]
        self.child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.port = int(self.child.stdout.readline() or 0) if self.child.stdout else 0
        self.client = httpx.Client(trust_env=False, timeout=60)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def control(self, what: str) -> Any:
        return self.client.get(f"http://127.0.0.1:{self.port}/_control/{what}").json()

    def counts(self) -> tuple[int, int]:
        stats = self.control("stats")
        return stats["received"], stats["duplicates"]

    def probe(self, count: int, threads: int = 8) -> tuple[float, float]:
        """(POSTs/s from threads in this process, receiver CPU seconds per POST)."""
        ssl = httpx.create_ssl_context()  # once: building one costs ~15-30 ms of CPU

        def post(n: int) -> None:
            with httpx.Client(trust_env=False, verify=ssl) as client:  # new connection each
                client.post(self.url, content=b"{}", headers={"webhook-id": f"probe_{n}"})

        cpu, started = self.control("stats")["cpu"], time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, range(count)))
        seconds = time.perf_counter() - started
        return count / seconds, (self.control("reset")["cpu"] - cpu) / count

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        for stream in (self.child.stdin, self.child.stdout):
            stream and stream.close()
        self.child.wait(10)


class Load(Protocol):
    """What a drain needs from the stack (bench/delivery.py's ``Stack``)."""

    broker_url: str
    env: dict[str, str]
    tmp: Path
    receiver: Receiver

    def seed(
        self, count: int, batch: int = ..., after_commit: Callable[[list[str]], None] | None = ...
    ) -> dict[str, float]: ...

    def unsettled(self) -> int: ...  # deliveries not (yet) recorded as sent


@dataclass(frozen=True)
class WorkerSpec:
    processes: int
    pool: str
    concurrency: int
    batched: bool = False  # enqueue watchfloor.deliver_batch (today) or one deliver per id

    def command(self) -> str:
        return f"celery -A worker.app worker -Q deliver -P {self.pool} -c {self.concurrency}"


@dataclass
class Drain:
    """One measured run: deliveries/s from the first enqueue to the last receipt."""

    name: str
    count: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds
    producer_seconds: float = 0.0
    duplicates: int = 0
    worker_cpu: float = 0.0  # CPU seconds the worker processes used in the run
    busy: float = 0.0  # share of the machine's CPU (all cores) busy during the run

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Workers:
    """``spec.processes`` deliver workers, answering a ping on entry, stopped on exit."""

    def __init__(self, load: Load, spec: WorkerSpec, tag: str) -> None:
        self.load, self.spec = load, spec
        self.app = Celery("bench", broker=load.broker_url)
        self.app.conf.broker_connection_retry_on_startup = True
        argv = [sys.executable, "-m", *spec.command().split()]
        argv += ["--loglevel=INFO", "--without-mingle", "--without-gossip"]
        self.argvs = [[*argv, "-n", f"{tag}{n}@%h"] for n in range(spec.processes)]
        self.services: list[Service] = []

    def __enter__(self) -> Workers:
        for argv in self.argvs:
            self.services.append(
                Service(argv, self.load.env, self.load.tmp / f"{argv[-1].split('@')[0]}.log")
            )
        if not wait_until(lambda: len(self.app.control.ping(timeout=0.5)) >= len(self.argvs), 60):
            self.__exit__()
            raise RuntimeError(f"workers did not start:\n{self.log_tail()}")
        return self

    def enqueue(self, ids: Iterable[str]) -> None:
        """What ``worker.tasks.enqueue_deliveries`` does after the outbox commit (batched),
        or the one-task-per-delivery path it replaced."""
        route = {"queue": "deliver", "routing_key": "deliver"}
        ids = list(ids)
        with self.app.producer_or_acquire() as producer:
            if self.spec.batched:
                for start in range(0, len(ids), BATCH_MAX):
                    chunk = ids[start : start + BATCH_MAX]
                    self.app.send_task(
                        "watchfloor.deliver_batch", [chunk], producer=producer, **route
                    )
                return
            for delivery_id in ids:
                self.app.send_task("watchfloor.deliver", [delivery_id], producer=producer, **route)

    def cpu(self) -> float:
        return sum(group_cpu(s.proc.pid) for s in self.services)

    def log_tail(self, lines: int = 12) -> str:
        return "\n".join("\n".join(s.log().splitlines()[-lines:]) for s in self.services)

    def __exit__(self, *exc: object) -> None:
        for service in self.services:
            service.stop()
        self.app.close()


def wait_for_receipts(load: Load, workers: Workers, count: int) -> None:
    """Until ``count`` arrived and all are recorded as sent; a stall fails the run."""
    last, since = -1, time.monotonic()
    while (received := load.receiver.counts()[0]) < count:
        if received != last:
            last, since = received, time.monotonic()
        elif time.monotonic() - since > STALL_SECONDS:
            raise RuntimeError(f"stalled at {received}/{count} receipts:\n{workers.log_tail()}")
        time.sleep(0.1)
    if not wait_until(lambda: load.unsettled() == 0, 30):
        raise RuntimeError(f"received but not recorded as sent:\n{workers.log_tail()}")


def warm_up(load: Load, workers: Workers) -> None:
    """Every pool child builds its engine, config and channel before a clock starts."""
    count = 2 * workers.spec.processes * workers.spec.concurrency
    load.receiver.control("reset")
    workers.enqueue(load.seed(count))
    wait_for_receipts(load, workers, count)


def measure(load: Load, workers: Workers, name: str, count: int, batch: int, pre: bool) -> Drain:
    """Pipelined: each batch is enqueued after its commit, as the poller does. Preseeded
    (``pre``): all rows are written first, then enqueued at once, so the producer stays idle."""
    load.receiver.control("reset")
    start: list[Mark] = []

    def after_commit(ids: list[str]) -> None:
        start or start.append((time.time(), workers.cpu(), machine_cpu()))
        workers.enqueue(ids)

    created = load.seed(count, batch, None if pre else after_commit)
    if pre:
        after_commit(list(created))
    return finish(load, workers, name, created, start[0])


def finish(
    load: Load, workers: Workers, name: str, created: dict[str, float], start: Mark
) -> Drain:
    """Wait for every receipt; then the figures, from ``start`` (time, worker CPU, machine)."""
    produced = time.time() - start[0]
    wait_for_receipts(load, workers, len(created))
    (busy, total), (busy0, total0) = machine_cpu(), start[2]
    arrivals = load.receiver.control("arrivals")
    result = Drain(name, len(created), max(arrivals.values()) - start[0], producer_seconds=produced)
    result.latencies = [arrivals[d] - t for d, t in created.items()]
    result.duplicates = load.receiver.counts()[1]
    result.worker_cpu, result.busy = workers.cpu() - start[1], (busy - busy0) / (total - total0)
    return result


def compare(
    load: Load, pool: str, concurrency: int, count: int, batched: bool = False
) -> list[Drain]:
    """The same preseeded load on 1, then on 2 worker processes of the same settings."""
    results = []
    for processes in (1, 2):
        spec = WorkerSpec(processes, pool, concurrency, batched)
        with Workers(load, spec, f"p{processes}-") as workers:
            warm_up(load, workers)
            name = f"{processes} process" + "es" * (processes > 1)
            results.append(measure(load, workers, name, count, 100, pre=True))
    return results


if __name__ == "__main__":
    if sys.argv[1:] == ["--receiver"]:
        asyncio.run(serve_receiver())
        sys.exit(0)
    from bench.delivery import main

    sys.exit(main(["--only", "scaleout", *sys.argv[1:]]))
