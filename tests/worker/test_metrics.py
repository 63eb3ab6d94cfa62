"""Metrics recorded in several processes (one forked, as Celery's prefork pool does) add up
on one scrape of the HTTP endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.processes import REPO, Service, wait_until

# One "worker" process: records in the parent, forks a child that records too (the pool's
# way), then sets the backlog gauge last.
WRITER = """
import os, sys
from datetime import UTC, datetime, timedelta
from worker import metrics

metrics.observe_poll(sys.argv[1], 0.3)
pid = os.fork()
if pid == 0:
    metrics.observe_poll("ok", 0.7)
    metrics.observe_poll("error", 2.5)
    metrics.observe_poll("unchanged", None)  # fetched nothing: no latency sample
    metrics.observe_new_items("feed-a", 3)
    metrics.observe_match("missile-tests")
    metrics.observe_delivery("desk", "failed", 1)
    metrics.observe_delivery("desk", "sent", 2)
    now = datetime.now(UTC)
    metrics.observe_alert_latency("desk", now - timedelta(minutes=3), now - timedelta(seconds=20),
                                  now)
    os._exit(0)
os.waitpid(pid, 0)
metrics.set_outbox_backlog(int(sys.argv[2]))
"""

SERVER = """
from worker.metrics import start_metrics_server
import time
print("port", start_metrics_server(0, "127.0.0.1"), flush=True)
time.sleep(300)
"""


def _env(multiproc: Path) -> dict[str, str]:
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "PYTHONPATH": str(REPO)}


def _write(multiproc: Path, outcome: str, backlog: int) -> None:
    cmd = [sys.executable, "-c", WRITER, outcome, str(backlog)]
    subprocess.run(cmd, env=_env(multiproc), cwd=REPO, check=True, timeout=60)


def _samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _port(server: Service) -> int | None:
    for line in server.log().splitlines():
        if line.startswith("port "):
            return int(line.split()[1])
    return None


@pytest.mark.timeout(120)
def test_samples_of_all_processes_add_up_on_one_scrape(tmp_path: Path) -> None:
    multiproc = tmp_path / "prom"  # created by the module itself
    _write(multiproc, "skipped", 99)  # a previous run: gone before the server starts
    server_argv = [sys.executable, "-c", SERVER]
    with Service(server_argv, _env(multiproc), tmp_path / "server.log") as server:
        assert wait_until(lambda: _port(server) or not server.alive(), 30), server.log()
        port = _port(server)
        assert port, server.log()
        _write(multiproc, "ok", 3)
        _write(multiproc, "ok", 7)
        got = _samples(port)

    def value(name: str, **labels: str) -> float | None:
        return got.get((name, frozenset(labels.items())))

    assert value("watchfloor_polls_total", outcome="ok") == 4  # 2 processes x (parent + child)
    assert value("watchfloor_polls_total", outcome="error") == 2
    assert value("watchfloor_polls_total", outcome="skipped") is None  # the dead run's file
    assert value("watchfloor_polls_total", outcome="unchanged") == 2
    assert value("watchfloor_fetch_seconds_count") == 6
    assert value("watchfloor_fetch_seconds_sum") == pytest.approx(2 * (0.3 + 0.7 + 2.5))
    assert value("watchfloor_new_items_total", feed="feed-a") == 6
    assert value("watchfloor_matches_total", watchlist="missile-tests") == 2
    assert value("watchfloor_deliveries_total", channel="desk", status="sent") == 2
    assert value("watchfloor_deliveries_total", channel="desk", status="failed") == 2
    attempts = value("watchfloor_delivery_attempts_sum", channel="desk", status="sent")
    assert attempts == 4  # only final outcomes are observed: 2 deliveries x 2 attempts
    assert value("watchfloor_delivery_attempts_count", channel="desk", status="failed") is None
    published = "watchfloor_published_to_delivered_seconds_bucket"
    assert value(published, channel="desk", le="120.0") == 0  # three minutes old
    assert value(published, channel="desk", le="300.0") == 2
    fetched = "watchfloor_fetched_to_delivered_seconds_bucket"
    assert value(fetched, channel="desk", le="30.0") == 2
    assert value("watchfloor_outbox_backlog") == 7  # the most recent value, not the sum


def test_alert_latency_skips_a_publication_time_in_the_future() -> None:
    from datetime import UTC, datetime, timedelta

    from worker import metrics

    labels = metrics.PUBLISHED_TO_DELIVERED.labels("future-channel")
    now = datetime.now(UTC)
    metrics.observe_alert_latency("future-channel", now + timedelta(hours=1), now, now)
    assert _count(labels) == 0
    metrics.observe_alert_latency("future-channel", now - timedelta(hours=1), now, now)
    assert _count(labels) == 1


def _count(histogram: object) -> float:
    metric = next(iter(histogram.collect()))  # type: ignore[attr-defined]
    return next(s.value for s in metric.samples if s.name.endswith("_count"))
