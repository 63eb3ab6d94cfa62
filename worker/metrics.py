"""Prometheus metrics, safe under Celery's prefork pool.

Multi-process mode is on when ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment before
this module is first imported (the image sets it; compose mounts a tmpfs there so it starts
empty). Every process then writes its samples to files in that directory, a forked child to
files of its own, and the server started by ``start_metrics_server`` in the main process sums
them on each scrape. Without the variable the metrics live in this process only.

Gauges that describe shared state (feeds in error, outbox backlog) use ``mostrecent``: the
last process to measure wins, whichever child that was.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:  # the value files are created when the metrics below are defined
    Path(MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

from prometheus_client import (  # noqa: E402 - the directory must exist first
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

# Seconds to several hours: alert latency spans a fast feed and a retried delivery.
LATENCY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600, 86400)
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60)
ATTEMPT_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10)

POLLS = Counter("watchfloor_polls", "Feed polls by outcome", ["outcome"])
FETCH_SECONDS = Histogram(
    "watchfloor_fetch_seconds", "Time to fetch a feed document", buckets=FETCH_BUCKETS
)
NEW_ITEMS = Counter("watchfloor_new_items", "Items seen for the first time", ["feed"])
MATCHES = Counter("watchfloor_matches", "Matches recorded per watch-list", ["watchlist"])
DELIVERIES = Counter(
    "watchfloor_deliveries", "Delivery attempts by channel and outcome", ["channel", "status"]
)
DELIVERY_ATTEMPTS = Histogram(
    "watchfloor_delivery_attempts",
    "Attempts a delivery took until it was sent or given up",
    ["channel", "status"],
    buckets=ATTEMPT_BUCKETS,
)
PUBLISHED_TO_DELIVERED = Histogram(
    "watchfloor_published_to_delivered_seconds",
    "From the item's publication time to the alert's delivery",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
FETCHED_TO_DELIVERED = Histogram(
    "watchfloor_fetched_to_delivered_seconds",
    "From the poll that found the item to the alert's delivery",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
FEEDS_IN_ERROR = Gauge(
    "watchfloor_feeds_in_error", "Feeds whose last poll failed", multiprocess_mode="mostrecent"
)
OUTBOX_BACKLOG = Gauge(
    "watchfloor_outbox_backlog",
    "Deliveries due and not yet sent (pending or failed)",
    multiprocess_mode="mostrecent",
)


def observe_poll(outcome: str, seconds: float | None) -> None:
    """``outcome``: the poll's status ("ok", "not-modified", "error", ...); ``seconds``: how
    long the fetch took, failed or not (None when the poll fetched nothing)."""
    POLLS.labels(outcome).inc()
    if seconds is not None:
        FETCH_SECONDS.observe(seconds)


def observe_new_items(feed_id: str, count: int) -> None:
    if count:
        NEW_ITEMS.labels(feed_id).inc(count)


def observe_match(watchlist_id: str) -> None:
    MATCHES.labels(watchlist_id).inc()


def observe_delivery(channel_id: str, status: str, attempts: int) -> None:
    """One attempt's outcome; a final one ("sent", "dead") also records the attempts it took."""
    DELIVERIES.labels(channel_id, status).inc()
    if status in ("sent", "dead"):
        DELIVERY_ATTEMPTS.labels(channel_id, status).observe(attempts)


def observe_alert_latency(
    channel_id: str, published_at: datetime | None, fetched_at: datetime, delivered_at: datetime
) -> None:
    """Both clocks of a delivered alert; a feed's publication time may be missing or future."""
    if published_at is not None and published_at <= delivered_at:
        seconds = (delivered_at - published_at).total_seconds()
        PUBLISHED_TO_DELIVERED.labels(channel_id).observe(seconds)
    seconds = max((delivered_at - fetched_at).total_seconds(), 0.0)
    FETCHED_TO_DELIVERED.labels(channel_id).observe(seconds)


def set_feeds_in_error(count: int) -> None:
    FEEDS_IN_ERROR.set(count)


def set_outbox_backlog(count: int) -> None:
    OUTBOX_BACKLOG.set(count)


def registry() -> CollectorRegistry:
    """What a scrape shows: the sum over this host's processes in multi-process mode."""
    if not MULTIPROC_DIR:
        return REGISTRY
    collecting = CollectorRegistry()
    multiprocess.MultiProcessCollector(collecting, path=MULTIPROC_DIR)  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated
    return collecting


def remove_dead_process_files(path: str | None = MULTIPROC_DIR) -> list[str]:
    """Drop value files of processes that are gone (a previous run's), so counters restart.

    Call it once at start-up, before the pool forks. Files of live processes stay, so two
    workers that share a directory do not erase each other.
    """
    removed = []
    for file in Path(path).glob("*_*.db") if path else ():
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            file.unlink(missing_ok=True)
            removed.append(file.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> int:
    """Serve ``/metrics`` from a daemon thread; returns the bound port (``port=0`` picks one)."""
    remove_dead_process_files()
    server, _thread = start_http_server(port, addr=addr, registry=registry())
    return int(server.server_address[1])
