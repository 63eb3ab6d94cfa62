"""How soon an alert follows publication: fixed 5-minute polling, fixed 60-minute polling
(Miniflux's default), adaptive polling and WebSub push, in one run.

    python bench/freshness.py [--days 3] [--push-events 120] [--seed 7] [--no-push]

Timelines: every dated feed of ../shared/corpus/real/ (real documents of real publishers)
gives one source and its own rhythm: the gaps between its items' dates, replayed in order
and cycled to fill ``--days`` after 14 days of history. Busy wires (a minute apart) sit
beside quiet blogs (weeks apart), as on a desk's list. Each source's window (the items its
feed carries) is its real item count, 10 to 50.

Polling runs in virtual time against a loopback farm: an HTTP server that answers each
source's URL with the items published by the virtual clock, an ETag and a 304 when nothing
changed. Every poll is a real request through ``feeds.fetch.fetch`` and a real parse
(``feeds.parse.parse_feed``); the schedule comes from the service's own functions
(``worker.planning``: ``learned_interval``, ``window_overflowed``, ``after_overflow``,
``next_poll``). Fixed schedules start at a random phase. Adaptive starts with the 14 days
of history a running store would hold (``items_store.seen_times``, every feed watched
since its start: ``created_at``) and the defaults: the
configured ``interval`` 5m between ``WATCHFLOOR_MIN_INTERVAL`` 1m and
``WATCHFLOOR_MAX_INTERVAL`` 1h. An item's delay is the first poll that sees it minus its
publication; an item that fell off the window before any poll saw it is missed.

WebSub runs in real time, because its delay is the machinery's: flask-websub's hub (from
PyPI) in processes of its own (its web process and its Celery worker, on Redis),
``watchfloor web`` taking pushes at ``/websub/...`` on a
SQLite store, and ``--push-events`` publications spread over the sources. Each publication
adds an item to the farm and pings the hub, which fetches the feed and pushes it; the delay
is from the publication to the item's row (``items.fetched_at``, in the transaction that
writes its alerts). Its requests per source-day are the safety-net polls
(``WATCHFLOOR_PUSH_POLL_INTERVAL``, 1h): the hub's fetches land on the publisher.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.guard import guarded_transport  # noqa: E402
from feeds.fetch import fetch  # noqa: E402
from feeds.parse import parse_feed  # noqa: E402
from worker import planning  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "real"
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)  # virtual time 0: the start of the measured days
HISTORY = planning.RHYTHM_SPAN
HUB_BROKER = "redis://127.0.0.1:6379/15"  # the hub's Celery broker (a queue of its own)
WATCHED_SINCE = EPOCH - HISTORY  # the store has watched every source through its history
CADENCE = planning.Cadence(
    interval=timedelta(minutes=5),
    min_interval=timedelta(minutes=1),
    max_interval=timedelta(hours=1),
)
# the next interval, in seconds, of source n: (n, its seen publication times, now, overflowed)
Rule = Callable[[int, list[datetime], float, bool], float]


@dataclass
class Source:
    name: str
    times: list[float]  # publication times, seconds from EPOCH (negative: history)
    window: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    def published_by(self, now: float) -> int:
        return bisect.bisect_right(self.times, now)


def timelines(days: float, rng: random.Random) -> list[Source]:
    sources = []
    for path in sorted(CORPUS.iterdir()):
        if path.suffix not in (".xml", ".rdf", ".atom", ".json", ".rss"):
            continue
        try:
            parsed = parse_feed(path.read_bytes(), url=f"https://corpus.example/{path.name}")
        except Exception:  # a corpus file that is no feed gives no source
            continue
        dates = sorted(i.published_at for i in parsed.items if i.published_at)
        if len(dates) < 3 or dates[-1] == dates[0]:
            continue
        gaps = [max(1.0, (b - a).total_seconds()) for a, b in itertools.pairwise(dates)]
        start, end = -HISTORY.total_seconds(), days * 86400
        offset = rng.randrange(len(gaps))
        t, k, times = start + rng.uniform(0, gaps[offset]), offset, []
        while t < end:
            times.append(t)
            t += gaps[k % len(gaps)]
            k += 1
        window = min(max(len(parsed.items), 10), 50)
        sources.append(Source(path.stem, times, window))
    return sources


class Farm:
    """Serves ``/s/<n>`` as RSS: the source's last ``window`` items by the farm's clock."""

    def __init__(self, sources: Sequence[Source], hub: str = "") -> None:
        self.sources, self.hub = sources, hub
        self.now: float | None = 0.0  # virtual seconds; None: real time (the WebSub phase)
        self.requests = 0
        self.real_items: dict[int, list[tuple[str, datetime]]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/s/{n}"

    def body(self, n: int) -> tuple[bytes, str]:
        source = self.sources[n]
        if self.now is None:
            items = self.real_items.get(n, [])[-source.window :]
        else:
            count = source.published_by(self.now)
            first = max(0, count - source.window)
            items = [
                (f"{source.name}-{k}", EPOCH + timedelta(seconds=source.times[k]))
                for k in range(first, count)
            ]
        entries = "".join(
            f"<item><guid>{guid}</guid><title>Item {guid}</title>"
            f"<link>https://wire.example/{guid}</link>"
            f"<pubDate>{format_datetime(when)}</pubDate></item>"
            for guid, when in reversed(items)
        )
        hub = f"<atom:link rel='hub' href='{self.hub}'/>" if self.hub else ""
        xml = (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0' "
            f"xmlns:atom='http://www.w3.org/2005/Atom'><channel><title>{source.name}</title>"
            f"{hub}<atom:link rel='self' href='{self.url(n)}'/>{entries}</channel></rss>"
        )
        etag = f'"{n}-{items[-1][0] if items else "empty"}"'
        return xml.encode(), etag

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                farm.requests += 1
                n = int(self.path.rsplit("/", 1)[-1])
                body, etag = farm.body(n)
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                if farm.hub:
                    link = f'<{farm.hub}>; rel="hub", <{farm.url(n)}>; rel="self"'
                    self.send_header("Link", link)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Result:
    name: str
    delays: list[float]  # seconds, one per item seen
    missed: int
    requests: int
    source_days: float

    def line(self) -> str:
        p50, p95 = percentile(self.delays, 50), percentile(self.delays, 95)
        return (
            f"{self.name:<22}{fmt(p50):>9}{fmt(p95):>9}{self.requests / self.source_days:>10.1f}"
            f"{len(self.delays):>8}{self.missed:>8}"
        )


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def fmt(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    if seconds < 1:
        return f"{seconds:.2f}s"
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def simulate(name: str, farm: Farm, days: float, next_interval: Rule, rng: random.Random) -> Result:
    """Poll every source in virtual time; ``next_interval`` (a ``Rule``) decides each wait."""
    sources, end = farm.sources, days * 86400
    transport = guarded_transport(allow_private=True)
    delays: list[float] = []
    requests, missed = 0, 0
    seen: list[set[str]] = [set() for _ in sources]
    history: list[list[datetime]] = [
        [EPOCH + timedelta(seconds=t) for t in s.times if t < 0] for s in sources
    ]
    etags: list[str | None] = [None] * len(sources)
    last_success: list[datetime | None] = [EPOCH] * len(sources)
    for n, s in enumerate(sources):  # what the store holds at the start: the history's items
        seen[n] = {f"{s.name}-{k}" for k in range(s.published_by(0.0))}
    first = CADENCE.interval.total_seconds() if name.startswith("adaptive") else None
    queue = [
        (rng.uniform(0, first or next_interval(n, history[n], 0.0, False)), n)
        for n in range(len(sources))
    ]
    heapq.heapify(queue)
    with httpx.Client(transport=transport, trust_env=False) as client:
        while queue:
            now, n = heapq.heappop(queue)
            if now >= end:
                continue
            farm.now = now
            result = fetch(farm.url(n), etag=etags[n], allow_private=True, client=client)
            requests += 1
            moment = EPOCH + timedelta(seconds=now)
            new: list[datetime | None] = []
            total = 0
            if not result.not_modified:
                etags[n] = result.etag
                parsed = parse_feed(result.body or b"", url=result.url)
                total = len(parsed.items)
                for item in parsed.items:
                    guid = item.guid.rsplit("/", 1)[-1]
                    if guid not in seen[n]:
                        seen[n].add(guid)
                        new.append(item.published_at)
                        if item.published_at is not None:
                            delays.append((moment - item.published_at).total_seconds())
                            history[n].append(min(item.published_at, moment))
            overflowed = planning.window_overflowed(new, total, last_success[n])
            last_success[n] = moment
            interval = next_interval(n, history[n], now, overflowed)
            heapq.heappush(queue, (now + interval, n))
    for n, s in enumerate(sources):
        published = {f"{s.name}-{k}" for k in range(s.published_by(end))}
        missed += len(published - seen[n])
    return Result(name, delays, missed, requests, len(sources) * days)


def fixed(minutes: float) -> Rule:
    def interval(n: int, history: list[datetime], now: float, overflowed: bool) -> float:
        return minutes * 60

    return interval


def adaptive() -> Rule:
    def interval(n: int, history: list[datetime], now: float, overflowed: bool) -> float:
        moment = EPOCH + timedelta(seconds=now)
        learned = planning.learned_interval(history[-200:], moment, CADENCE, WATCHED_SINCE)
        if overflowed:
            learned = planning.after_overflow(learned, CADENCE)
        return learned.total_seconds()

    return interval


# --- WebSub, in real time ---------------------------------------------------------------------


@contextmanager
def websub_stack(tmp: Path, sources: Sequence[Source]) -> Iterator[tuple[Farm, object, str]]:
    """A farm naming flask-websub's hub, the hub, and ``watchfloor web`` as the callback."""
    import yaml

    from tests.helpers.processes import free_port, service_env, wait_until, watchfloor
    from tests.helpers.websub_hub import start_hub
    from worker.runtime import build_runtime
    from worker.settings import load_settings

    hub_port, web_port = free_port(), free_port()
    hub_url = f"http://127.0.0.1:{hub_port}/hub"
    farm = Farm(sources, hub=hub_url)
    farm.now = None
    config = tmp / "config"
    config.mkdir()
    feeds = [{"id": f"s{n}", "url": farm.url(n), "interval": "5m"} for n in range(len(sources))]
    (config / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}))
    watchlist = {"id": "all", "title": "All", "query": "Item", "channels": ["log"]}
    (config / "watchlists.yaml").write_text(yaml.safe_dump({"watchlists": [watchlist]}))
    (config / "channels.yaml").write_text(
        yaml.safe_dump({"channels": [{"id": "log", "type": "log"}]})
    )
    db = f"sqlite:///{tmp / 'watchfloor.db'}"
    env = service_env(tmp, config, db, None, WATCHFLOOR_PUBLIC_URL=f"http://127.0.0.1:{web_port}")
    hub = start_hub(tmp, env, HUB_BROKER, hub_port)  # its web process and Celery worker
    rt = build_runtime(load_settings(env))
    from worker.db import upgrade

    upgrade(rt.engine)
    web = watchfloor(env, tmp / "web.log", "web", "--bind", f"127.0.0.1:{web_port}")

    def up(url: str, method: str) -> bool:
        try:
            return httpx.request(method, url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        assert wait_until(lambda: up(f"http://127.0.0.1:{web_port}/healthz", "GET")), web.log()
        yield farm, rt, hub_url
    finally:
        web.stop()
        hub.stop()
        farm.close()
        rt.engine.dispose()


def measure_websub(sources: Sequence[Source], events: int, rng: random.Random) -> Result:
    import sqlalchemy as sa

    from tests.helpers.processes import wait_until
    from worker import pipeline
    from worker.models import Item, PushState, utcnow
    from worker.store import push as push_store
    from worker.websub.subscriptions import maintain

    with tempfile.TemporaryDirectory() as tmp, websub_stack(Path(tmp), sources) as stack:
        farm, rt, hub_url = stack
        for n in range(len(sources)):
            pipeline.poll_feed(rt, f"s{n}")  # type: ignore[attr-defined]
        maintain(rt, utcnow())  # type: ignore[arg-type]

        def live() -> int:  # the hub verifies each subscription from its worker, afterwards
            with rt.sessions() as session:  # type: ignore[attr-defined]
                subs = push_store.every(session).values()
                return sum(s.state == PushState.LIVE for s in subs)

        assert wait_until(lambda: live() == len(sources)), f"{live()} of {len(sources)} live"
        published: dict[str, datetime] = {}
        for k in range(events):
            n = rng.randrange(len(sources))
            guid, when = f"push-{k}", datetime.now(UTC)
            farm.real_items.setdefault(n, []).append((guid, when))
            published[guid] = when
            ping = {"hub.mode": "publish", "hub.topic": farm.url(n)}
            httpx.post(hub_url, data=ping, timeout=60)
            time.sleep(rng.uniform(0.05, 0.25))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with rt.sessions() as session:  # type: ignore[attr-defined]
                rows = session.execute(
                    sa.select(Item.title, Item.fetched_at).where(Item.title.like("Item push-%"))
                ).all()
            if len(rows) == events:
                break
            time.sleep(0.2)
        if len(rows) < events:  # say why, from the processes' own logs
            for log in ("hub.log", "web.log"):
                tail = (Path(tmp) / log).read_text(errors="replace").splitlines()[-15:]
                print(f"--- {log}", *tail, sep="\n", file=sys.stderr)
    delays = [(fetched - published[title[5:]]).total_seconds() for title, fetched in rows]
    safety_polls_per_day = 86400 / 3600
    return Result("websub (push)", delays, events - len(rows), round(safety_polls_per_day), 1.0)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--days", type=float, default=3.0, help="measured days after the history")
    p.add_argument("--push-events", type=int, default=120)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-push", action="store_true", help="skip WebSub (its real-time phase)")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    sources = timelines(args.days, rng)
    items = sum(s.published_by(args.days * 86400) - s.published_by(0.0) for s in sources)
    print(f"{len(sources)} sources from {CORPUS}, {items} items over {args.days:g} days")
    farm = Farm(sources)
    results = []
    try:
        for name, rule in (
            ("fixed 5m", fixed(5)),
            ("fixed 60m (Miniflux)", fixed(60)),
            ("adaptive (5m, 1m-1h)", adaptive()),
        ):
            started = time.monotonic()
            results.append(simulate(name, farm, args.days, rule, random.Random(args.seed)))
            print(f"  {name}: {time.monotonic() - started:.0f}s", file=sys.stderr)
    finally:
        farm.close()
    if not args.no_push:
        results.append(measure_websub(sources, args.push_events, rng))
    print(f"{'schedule':<22}{'p50':>9}{'p95':>9}{'req/src-d':>10}{'items':>8}{'missed':>8}")
    for result in results:
        print(result.line())
    five, adaptive_r = results[0], results[2]
    ratio = percentile(adaptive_r.delays, 50) / percentile(five.delays, 50)
    fewer = adaptive_r.requests <= five.requests
    print(
        f"adaptive p50 / fixed-5m p50 = {ratio:.2f} (target <= 0.33), requests "
        f"{adaptive_r.requests:,} vs {five.requests:,} ({'no more' if fewer else 'MORE'})"
    )
    ok = ratio <= 1 / 3 and fewer
    if not args.no_push:
        push = results[3]
        p95 = percentile(push.delays, 95)
        pushed = len(push.delays) + push.missed
        print(f"websub p95 = {p95:.2f}s (target <= 5s), {push.missed} of {pushed} missed")
        ok = ok and p95 <= 5 and push.missed == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
