"""A farm of RSS feeds on several loopback addresses, served from a child process.

    with FeedFarm(feeds=2000, hosts=50, latency=0.05) as farm:
        farm.urls            # one URL per feed, round-robin over 127.0.0.2 .. 127.0.0.51
        farm.advance()       # even-numbered feeds publish new items; odd ones answer 304
        farm.stats()         # {"200": n, "304": m}: responses since the last advance

The child runs one asyncio loop (HTTP/1.1 read and written by h11), so hundreds of open
connections cost nothing, and it never competes with the measured poller for its GIL. Every
feed answers after ``latency`` seconds with an ETag; ``If-None-Match`` with the current ETag
gets a 304. Bodies are ~20 items of news-like prose with escaped HTML (10-30 KB), gzipped
when asked, and rendered ahead in ``advance`` so the measured pass finds them ready.
Several addresses rather than one: feeds/fetch.py caps requests per host (4 by default),
as real feeds spread over many hosts; the bench keeps that real limit in force.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

import h11
import httpx


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


WORDS = _words(
    "the of and to in a said on for was with that its by from at as after officials "
    "government military ministry tuesday statement report week year country minister "
    "talks border forces agency state media press conference according analysts security "
    "council region meeting president economic trade energy new first people city sources "
    "expected will would could also more than troops drills sanctions exports launch "
    "satellite vessel port coast guard delegation summit treaty envoy spokesman parliament"
)
SYLLABLES = _words("kang song pyo ri hwa dong chon ma sin po yang hae mun ju sok tae bo won ryong")
PLANTED = "North Korea fires ballistic missile toward {} sea, {} says"  # fires the default list


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _prose(rng: random.Random, words: int) -> str:
    out = [rng.choice(WORDS) if rng.random() > 0.12 else _name(rng) for _ in range(words)]
    return " ".join(out).capitalize() + "."


def render_item(feed: int, index: int, published: datetime) -> str:
    """One ``<item>``, the same text for the same (feed, index) in every process."""
    rng = random.Random(f"{feed}:{index}")
    if rng.random() < 0.02:
        title = PLANTED.format(_name(rng), _name(rng))
    else:
        title = _prose(rng, rng.randint(8, 14))[:-1]
    paragraphs = [_prose(rng, rng.randint(25, 50)) for _ in range(rng.randint(2, 4))]
    link = f"https://news{feed % 97}.example.org/{feed}/{index}"
    html = "".join(f"<p>{p}</p>" for p in paragraphs) + f'<p><a href="{link}">Read more</a></p>'
    return (
        f"<item><title>{escape(title)}</title><link>{link}</link>"
        f"<guid isPermaLink='false'>feed{feed}-item{index}</guid>"
        f"<category>{_name(rng)}</category><pubDate>{format_datetime(published)}</pubDate>"
        f"<description>{escape(html)}</description></item>"
    )


class Catalogue:
    """Feed ``n`` at version ``v`` carries items ``new*v .. new*v + items - 1``, newest first."""

    def __init__(self, feeds: int, items: int, new_per_change: int) -> None:
        self.feeds, self.items, self.new = feeds, items, new_per_change
        self.generation = 0
        self.epoch = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
        self._items: dict[tuple[int, int], str] = {}
        self._bodies: dict[tuple[int, int], tuple[bytes, bytes]] = {}

    def version(self, feed: int) -> int:
        return self.generation if feed % 2 == 0 else 0

    def etag(self, feed: int) -> str:
        return f'"f{feed}-v{self.version(feed)}"'

    def body(self, feed: int) -> tuple[bytes, bytes]:
        """(raw, gzipped) for the current version, rendered once."""
        key = (feed, self.version(feed))
        if key not in self._bodies:
            self._bodies.pop((feed, key[1] - 1), None)
            self._bodies[key] = self._render(feed, key[1])
        return self._bodies[key]

    def advance(self) -> int:
        self.generation += 1
        for feed in range(0, self.feeds, 2):
            self.body(feed)
        return self.generation

    def _render(self, feed: int, version: int) -> tuple[bytes, bytes]:
        first = self.new * version
        parts = []
        for index in range(first + self.items - 1, first - 1, -1):
            if (feed, index) not in self._items:
                published = self.epoch + timedelta(minutes=5 * index)
                self._items[(feed, index)] = render_item(feed, index, published)
            parts.append(self._items[(feed, index)])
        for index in range(first - self.new, first):
            self._items.pop((feed, index), None)
        raw = (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Wire {feed}</title><link>https://news{feed % 97}.example.org/</link>"
            f"<description>Feed {feed}</description>{''.join(parts)}</channel></rss>"
        ).encode()
        return raw, gzip.compress(raw, 6)


class FarmServer:
    """The child's side: answers feeds after the latency, and the two control paths."""

    def __init__(self, catalogue: Catalogue, latency: float) -> None:
        self.catalogue, self.latency = catalogue, latency
        self.served: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            request = await read_request(conn, reader)
            if request is None:
                return
            status, headers, body = self.answer(request)
            if request.target.startswith(b"/feeds/"):
                await asyncio.sleep(self.latency)
            headers += [("Content-Length", str(len(body))), ("Connection", "close")]
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
            writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            await writer.drain()
        except (ConnectionError, h11.ProtocolError):
            pass  # a client that hung up or spoke nonsense: nothing to answer
        finally:
            writer.close()

    def answer(self, request: h11.Request) -> tuple[int, list[tuple[str, str]], bytes]:
        path = request.target.decode("ascii", "replace")
        if path == "/_control/advance":
            self.served.clear()
            generation = self.catalogue.advance()
            return 200, [("Content-Type", "application/json")], b'{"generation": %d}' % generation
        if path == "/_control/stats":
            return 200, [("Content-Type", "application/json")], json.dumps(self.served).encode()
        status, headers, body = self._feed(path, dict(request.headers))
        self.served[str(status)] += 1
        return status, headers, body

    def _feed(self, path: str, headers: dict[bytes, bytes]) -> tuple[int, list, bytes]:
        name = path.removeprefix("/feeds/").removesuffix(".xml")
        if not name.isdigit() or int(name) >= self.catalogue.feeds:
            return 404, [], b"no such feed"
        feed = int(name)
        etag = self.catalogue.etag(feed)
        if headers.get(b"if-none-match", b"").decode() == etag:
            return 304, [("ETag", etag)], b""
        raw, gzipped = self.catalogue.body(feed)
        out = [("ETag", etag), ("Content-Type", "application/rss+xml; charset=utf-8")]
        if b"gzip" in headers.get(b"accept-encoding", b""):
            return 200, [*out, ("Content-Encoding", "gzip")], gzipped
        return 200, out, raw


async def read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The next whole request on a keep-alive connection (h11), or None once the peer closed."""
    request = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))  # b"" tells h11 the peer closed
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None


async def _serve(args: argparse.Namespace) -> None:
    farm = FarmServer(Catalogue(args.feeds, args.items, args.new), args.latency)
    servers, addresses = [], []
    for n in range(args.hosts):
        host = f"127.0.0.{2 + n}"
        server = await asyncio.start_server(farm.handle, host, 0, backlog=1024)
        servers.append(server)
        addresses.append([host, server.sockets[0].getsockname()[1]])
    print(json.dumps({"hosts": addresses}), flush=True)
    await asyncio.to_thread(sys.stdin.buffer.read)  # the parent closed our stdin: stop
    for server in servers:
        server.close()


class FeedFarm:
    """The parent's side: starts the child, knows the URLs, drives generations."""

    def __init__(
        self, feeds: int, hosts: int = 50, latency: float = 0.05, items: int = 20, new: int = 2
    ) -> None:
        if not 1 <= hosts <= 250:
            raise ValueError("hosts must be 1..250 (127.0.0.2 .. 127.0.0.251)")
        self.feeds, self.hosts, self.latency, self.items = feeds, hosts, latency, items
        self.new_per_change = new
        self.addresses: list[tuple[str, int]] = []
        self._child: subprocess.Popen[bytes] | None = None
        self._control: httpx.Client | None = None

    @property
    def urls(self) -> list[str]:
        return [self.url(n) for n in range(self.feeds)]

    def url(self, feed: int) -> str:
        host, port = self.addresses[feed % len(self.addresses)]
        return f"http://{host}:{port}/feeds/{feed:05d}.xml"

    def advance(self) -> int:
        return int(self._call("/_control/advance")["generation"])

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._call("/_control/stats").items()}

    def _call(self, path: str) -> dict[str, object]:
        assert self._control is not None, "use FeedFarm as a context manager"
        host, port = self.addresses[0]
        response = self._control.get(f"http://{host}:{port}{path}")
        response.raise_for_status()
        return dict(response.json())

    def __enter__(self) -> FeedFarm:
        argv = [sys.executable, str(Path(__file__).resolve()), "--feeds", str(self.feeds)]
        argv += ["--hosts", str(self.hosts), "--latency", str(self.latency)]
        argv += ["--items", str(self.items), "--new", str(self.new_per_change)]
        self._child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = _first_line(self._child.stdout)
        if not line:
            self.__exit__()
            raise RuntimeError("the feed farm did not start (see its stderr above)")
        self.addresses = [(host, int(port)) for host, port in json.loads(line)["hosts"]]
        self._control = httpx.Client(trust_env=False, timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._control is not None:
            self._control.close()
        if self._child is not None:
            if self._child.stdin is not None:
                self._child.stdin.close()
            try:
                self._child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            if self._child.stdout is not None:
                self._child.stdout.close()
            self._child = None


def _first_line(stream: IO[bytes] | None) -> str:
    return stream.readline().decode() if stream is not None else ""


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="serve a feed farm (started by FeedFarm)")
    p.add_argument("--feeds", type=int, required=True)
    p.add_argument("--hosts", type=int, default=50)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--items", type=int, default=20)
    p.add_argument("--new", type=int, default=2, help="new items per change")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(_serve(_parse_args()))
