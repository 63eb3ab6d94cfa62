"""What only the concurrent fetcher has: one session for many fetches, the per-host and global
caps inside one process, and fetch_many's one answer per request. The semantics it shares with
feeds.fetch are held in tests/feeds/test_fetch.py, which runs every check against both."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler
from typing import TypeVar

import pytest

from common.errors import BlockedURLError, FetchError
from feeds.fetch_async import AsyncFetcher, FetchRequest, fetch_many
from feeds.fetch_rules import FetchLimits
from feeds.types import FetchResult
from tests.feeds.loopback import RSS, LoopbackServer, send

T = TypeVar("T")


class Concurrency:
    """Counts requests inside a handler at once. The first wave is held at a gate until the
    cap's worth is in, and then a moment more, so that one request over the cap (if the cap
    were broken) has every chance to show; then all answer."""

    def __init__(self) -> None:
        self.lock, self.gate = threading.Lock(), threading.Event()
        self.now = self.peak = 0

    def route(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        self.gate.wait(10)
        with self.lock:
            self.now -= 1
        send(h, 200, RSS)

    def run(self, cap: int, work: Callable[[], T]) -> T:
        done: list[T] = []
        thread = threading.Thread(target=lambda: done.append(work()))
        thread.start()
        for _ in range(500):  # a bounded wait for the first wave
            if self.now >= cap:
                break
            time.sleep(0.01)
        time.sleep(0.3)  # room for a request over the cap to arrive; asserts nothing on time
        self.gate.set()
        thread.join(30)
        return done[0]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


def test_per_host_cap_holds_among_twenty_concurrent_requests(server: LoopbackServer) -> None:
    """Twenty at once to one host: four in the handler at a time, never five."""
    seen = Concurrency()
    server.routes["/feed.xml"] = seen.route
    requests = [FetchRequest(server.url(f"/feed.xml?n={i}")) for i in range(20)]
    results = seen.run(4, lambda: fetch_many(requests, FetchLimits(timeout=15), allow_private=True))
    assert [getattr(r, "body", r) for r in results] == [RSS] * 20
    assert seen.peak == 4
    assert len(server.paths()) == 20


@pytest.fixture
def hosts() -> Iterator[list[LoopbackServer]]:
    """Ten servers on ten loopback addresses: ten hosts to the per-host cap."""
    with ExitStack() as stack:
        yield [stack.enter_context(LoopbackServer(f"127.0.0.{i}")) for i in range(2, 12)]


def test_many_hosts_are_fetched_at_once(hosts: list[LoopbackServer]) -> None:
    """Each host answers only once a request to every host is in flight: a fetcher that went
    one host at a time (or held fewer than ten requests) would get ten 500s."""
    barrier = threading.Barrier(len(hosts), timeout=10)

    def route(h: BaseHTTPRequestHandler) -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            send(h, 500, b"alone")
            return
        send(h, 200, RSS, {"ETag": f'"{h.server.server_address[0]}"'})

    for server in hosts:
        server.routes["/feed.xml"] = route
    requests = [FetchRequest(server.url("/feed.xml")) for server in hosts]
    results = fetch_many(requests, FetchLimits(timeout=15), allow_private=True)
    assert [getattr(r, "etag", r) for r in results] == [f'"{s.host}"' for s in hosts]


def test_max_in_flight_caps_requests_across_hosts(hosts: list[LoopbackServer]) -> None:
    seen = Concurrency()
    for server in hosts[:6]:
        server.routes["/feed.xml"] = seen.route
    requests = [FetchRequest(server.url("/feed.xml")) for server in hosts[:6]]
    limits = FetchLimits(timeout=15)
    results = seen.run(3, lambda: fetch_many(requests, limits, allow_private=True, max_in_flight=3))
    assert [getattr(r, "body", r) for r in results] == [RSS] * 6
    assert seen.peak == 3


def test_waiting_for_a_busy_host_ends_at_the_deadline(server: LoopbackServer) -> None:
    """One slot per host. The waiter starts first (its deadline is the earlier one), is sent on
    to 127.0.0.1 once the holder has that host's slot, and gives up at its own deadline,
    saying why, without ever reaching the host."""
    gate = threading.Event()
    server.routes["/hang"] = lambda h: gate.wait(10)
    server.routes["/feed.xml"] = lambda h: send(h, 200, RSS)
    limits = FetchLimits(timeout=1, per_host_concurrency=1)

    def moved_once_the_slot_is_held(h: BaseHTTPRequestHandler) -> None:
        for _ in range(500):  # a bounded wait for the holder's request to arrive
            if "/hang" in server.paths():
                break
            time.sleep(0.01)
        send(h, 302, headers={"Location": server.url("/feed.xml")})

    async def run(other: LoopbackServer) -> list[FetchResult | BaseException]:
        async with AsyncFetcher(limits, allow_private=True) as fetcher:
            waiter = asyncio.create_task(fetcher.fetch(other.url("/moved")))
            while not other.paths() and not waiter.done():
                await asyncio.sleep(0.01)
            holder = asyncio.create_task(fetcher.fetch(server.url("/hang")))
            return await asyncio.gather(waiter, holder, return_exceptions=True)

    with LoopbackServer("127.0.0.2") as other:
        other.routes["/moved"] = moved_once_the_slot_is_held
        try:
            waited, held = asyncio.run(run(other))
        finally:
            gate.set()
    assert isinstance(waited, FetchError)
    assert waited.message == "too many concurrent requests to 127.0.0.1"
    assert isinstance(held, FetchError)
    assert held.message == "timed out after 1s (total deadline)"
    assert server.paths() == ["/hang"]


def test_fetch_many_answers_each_request_in_order(server: LoopbackServer) -> None:
    """Every failure is that request's answer; an unexpected exception in one (a URL that is
    not even a string) is a FetchError for it alone, and the batch goes on."""
    server.routes["/feed.xml"] = lambda h: send(h, 200, RSS, {"ETag": '"v1"'})
    server.routes["/cached.xml"] = lambda h: send(h, 304)
    server.routes["/gone"] = lambda h: send(h, 410)
    server.routes["/slow"] = lambda h: time.sleep(3)
    requests = [
        FetchRequest(server.url("/feed.xml")),
        FetchRequest(12345),  # type: ignore[arg-type]
        FetchRequest(server.url("/gone")),
        FetchRequest("file:///etc/passwd"),
        FetchRequest(server.url("/slow")),
        FetchRequest(server.url("/cached.xml"), etag='"v1"'),
        FetchRequest(server.url("/nothing-here")),
    ]
    results = fetch_many(requests, FetchLimits(timeout=1), allow_private=True)
    ok, exploded, gone, blocked, slow, cached, missing = results
    assert isinstance(ok, FetchResult) and ok.body == RSS and ok.etag == '"v1"'
    assert isinstance(exploded, FetchError) and exploded.message.startswith("unexpected ")
    assert isinstance(gone, FetchError) and gone.permanent
    assert isinstance(blocked, BlockedURLError)
    assert isinstance(slow, FetchError) and slow.message == "timed out after 1s (total deadline)"
    assert isinstance(cached, FetchResult) and cached.not_modified and cached.body is None
    assert isinstance(missing, FetchError) and missing.message == "HTTP 404: not found"
    sent = dict(server.requests)
    assert sent["/cached.xml"]["If-None-Match"] == '"v1"'


def test_fetch_many_of_nothing_is_nothing() -> None:
    assert fetch_many([]) == []


def test_fetch_outside_async_with_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(AsyncFetcher().fetch("http://127.0.0.1/"))
