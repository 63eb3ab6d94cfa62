"""Batched polling loses no alert and doubles none, shown under faults on real parts: Celery
poll workers and beats on Redis, loopback feed servers and a loopback webhook receiver.

Each feed carries one matching item about an event of its own, published days apart from
the others (beyond the story window), so every item is a story of its own and the count of
alerts expected is the count of feeds.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer, rss
from tests.helpers.http import WebhookReceiver
from tests.helpers.processes import Service, celery_worker, service_env, wait_until
from tests.worker.guarantees import SECRET, WATCHLIST, deliveries

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NOW = datetime.now(UTC)


def event(n: int) -> FeedEntry:
    """A launch report of its own: published 3n days ago, so no two share a story."""
    title = f"North Korea fires ballistic missile number {n}, the military says"
    return FeedEntry(f"launch-{n}", title, published=NOW - timedelta(days=3 * n, hours=1))


class HangingFeed:
    """One feed whose server holds every request until released: a poll batch that fetches
    it stays in its reading phase, with its other feeds already answered."""

    def __init__(self, entry: FeedEntry) -> None:
        self.release, self.requests = threading.Event(), 0
        body = rss([entry])
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                feed.requests += 1
                feed.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hanging.xml"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def stack_env(
    tmp_path: Path, urls: list[str], hook: WebhookReceiver, db_url: str, redis_url: str
) -> dict[str, str]:
    feeds = [{"id": f"wire{n}", "url": url, "interval": "1h"} for n, url in enumerate(urls)]
    channel = {"id": "hook", "type": "webhook", "url": hook.url, "secret": SECRET}
    config_dir = write_config(tmp_path / "config", feeds, {"watchlists": [WATCHLIST]}, [channel])
    return service_env(
        tmp_path,
        config_dir,
        db_url,
        redis_url,
        WATCHFLOOR_FIRST_POLL_WINDOW_HOURS=str(24 * 60),  # every event here may alert
        WATCHFLOOR_POLL_LEASE="3s",
    )


def alerted_once_each(hook: WebhookReceiver, db_url: str, expected: int) -> bool:
    rows = deliveries(db_url)
    ids = [r.headers.get("webhook-id") for r in hook.requests]
    return (
        len(rows) == expected
        and {r["status"] for r in rows} == {"sent"}
        and sorted(ids) == sorted(str(r["id"]) for r in rows)
    )


def test_a_poll_worker_killed_mid_batch_loses_and_doubles_nothing(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    """kill -9 while a batch waits on its last feed: nothing of the batch was written, so
    after the lease its feeds are claimed again and each alert goes out exactly once."""
    hanging = HangingFeed(event(0))
    try:
        with FeedServer() as feeds, WebhookReceiver() as hook:
            for n in range(1, 6):
                feeds.publish(f"f{n}", event(n))
            urls = [hanging.url, *(feeds.url(f"f{n}") for n in range(1, 6))]
            env = stack_env(tmp_path, urls, hook, db_url, redis_url)
            first = celery_worker(env, tmp_path / "w1.log")
            batch_waits = lambda: hanging.requests >= 1 and len(feeds.requests) >= 5  # noqa: E731
            assert wait_until(batch_waits, 90), first.log()
            first.kill(signal.SIGKILL)  # the whole process group: pool children too
            assert deliveries(db_url) == [] and hook.requests == []
            hanging.release.set()
            with celery_worker(env, tmp_path / "w2.log") as second:
                assert wait_until(lambda: alerted_once_each(hook, db_url, 6), 120), second.log()
                assert wait_until(lambda: len(feeds.requests) >= 10, 60)  # polled again
            assert alerted_once_each(hook, db_url, 6)
    finally:
        hanging.close()


def test_two_poll_workers_and_two_beats_alert_each_story_once(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    """Two beats ring, two workers claim batches side by side: 12 feeds, 12 alerts."""
    with FeedServer() as feeds, WebhookReceiver() as hook:
        for n in range(12):
            feeds.publish(f"f{n}", event(n))
        env = stack_env(tmp_path, [feeds.url(f"f{n}") for n in range(12)], hook, db_url, redis_url)
        env["WATCHFLOOR_POLL_BATCH"] = "3"  # several batches, so both workers claim some
        beat = [sys.executable, "-m", "celery", "-A", "worker.app", "beat", "--loglevel=INFO"]
        beats = [
            Service([*beat, "-s", str(tmp_path / f"beat{i}.db")], env, tmp_path / f"b{i}.log")
            for i in range(2)
        ]
        workers = [
            celery_worker(env, tmp_path / f"w{i}.log", "-n", f"w{i}@%h", beat=False)
            for i in range(2)
        ]
        try:
            logs = lambda: "\n".join(w.log() for w in workers)  # noqa: E731
            assert wait_until(lambda: alerted_once_each(hook, db_url, 12), 120), logs()
            assert wait_until(lambda: len(feeds.requests) >= 12, 30)
        finally:
            for service in [*workers, *beats]:
                service.stop()
        assert alerted_once_each(hook, db_url, 12)
        polled = [path for path, _ in feeds.requests]
        assert sorted(set(polled)) == sorted(f"/f{n}.xml" for n in range(12))
        assert len(polled) == 12  # each feed once: its interval is an hour
