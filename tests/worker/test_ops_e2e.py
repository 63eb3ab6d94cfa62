"""Ops behaviour of the real processes: graceful shutdown, two beats, no secret in the logs."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import Reply, WebhookReceiver
from tests.helpers.processes import Service, celery_worker, wait_until
from tests.worker.guarantees import HIT, SECRET, deliveries, hook_stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_sigterm_lets_an_in_flight_delivery_finish(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    with FeedServer() as feeds, WebhookReceiver() as hook:
        hook.script(Reply(delay=4))  # the receiver takes its time over the first request
        feeds.publish("wire", FeedEntry("g1", HIT))
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        worker = celery_worker(env, tmp_path / "w.log")
        assert wait_until(lambda: len(hook.requests) == 1, 90), worker.log()
        assert worker.stop(timeout=60) == 0  # SIGTERM: Celery's warm shutdown
        assert [d["status"] for d in deliveries(db_url)] == ["sent"]
        assert len(hook.requests) == 1
        assert SECRET not in worker.log()


def test_two_beats_poll_each_feed_once_per_interval(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    with FeedServer() as feeds, WebhookReceiver() as hook:
        feeds.publish("wire", FeedEntry("g1", "Seoul stocks close higher on chip exports"))
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        config = Path(env["WATCHFLOOR_CONFIG_DIR"]) / "feeds.yaml"
        config.write_text(config.read_text().replace("interval: 1s", "interval: 3s"))
        beat = [sys.executable, "-m", "celery", "-A", "worker.app", "beat", "--loglevel=INFO"]
        beats = [
            Service([*beat, "-s", str(tmp_path / f"beat{i}.db")], env, tmp_path / f"b{i}.log")
            for i in range(2)
        ]
        try:
            with celery_worker(env, tmp_path / "w.log", beat=False) as worker:
                assert wait_until(lambda: len(feeds.statuses("wire")) >= 5, 90), worker.log()
        finally:
            for b in beats:
                b.stop()
        times = feeds.times["/wire.xml"]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 3 * 0.9, gaps  # never two polls within one interval
        assert all("beat: Starting" in b.log() for b in beats)
