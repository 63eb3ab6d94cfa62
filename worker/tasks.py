"""Thin Celery tasks: ids in, plain functions called, what they wrote enqueued after commit."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any

import structlog
from celery import Task, signals
from sqlalchemy.orm import Session

from feeds.story import STORY_WINDOW
from worker import metrics, pipeline, planning
from worker.app import app
from worker.config import Config
from worker.db import SchemaOutOfDate, make_engine, require_current_schema
from worker.models import utcnow
from worker.outbox import batch
from worker.outbox import store as outbox_store
from worker.outbox.batching import BATCH_MAX
from worker.outbox.deliver import DeliveryOutcome
from worker.outbox.deliver import deliver as deliver_row
from worker.outbox.store import Kind
from worker.runtime import Runtime, runtime, tune_gc
from worker.settings import load_settings
from worker.store import feeds as feeds_store
from worker.store import heartbeats
from worker.store import items as items_store

log = structlog.get_logger(__name__)
POLL_DUE_BUDGET = 60.0  # seconds one poll_due task claims batches for, then it yields


@signals.worker_init.connect
def _start_metrics(**_: object) -> None:
    port = load_settings().metrics_port
    if port:
        metrics.start_metrics_server(port)


@signals.worker_init.connect
def _load_config(**_: object) -> None:
    """Load the config before the pool forks: the last good one is kept on disk, so a pool
    child that starts while the files are broken comes up on it. With none, refuse."""
    from worker.config import ConfigError

    try:
        runtime().config.current()
    except ConfigError as exc:
        for issue in exc.issues:
            log.error("config invalid", error=str(issue))
        raise SystemExit("watchfloor: the config is invalid and no last good one is kept") from exc
    tune_gc()


@signals.worker_init.connect
@signals.beat_init.connect
def _check_schema(**_: object) -> None:
    """Refuse to start on an out-of-date schema (SystemExit passes through Celery's signals)."""
    engine = make_engine(load_settings().database_url)
    try:
        require_current_schema(engine)
    except SchemaOutOfDate as exc:
        log.error("refusing to start", error=str(exc))
        raise SystemExit(f"watchfloor: {exc}") from exc
    finally:
        engine.dispose()  # no connection may cross the fork into the pool children


@app.task(name="watchfloor.poll_due_feeds")
def poll_due_feeds() -> int:
    """Beat's doorbell: keep the feeds table in step with the config, and ring the poll
    workers, one ``poll_due`` message per batch of due feeds (at most ``poll_rings``). The
    workers claim the feeds themselves, so beat never holds a lock for them."""
    rt = runtime()
    config, now = rt.config.current(), utcnow()
    with rt.sessions.begin() as session:
        _sync_config(session, config, now)
        heartbeats.beat(session, "beat", now)
        batch, most = rt.settings.poll_batch, rt.settings.poll_rings
        due = feeds_store.count_due(session, now, cap=batch * max(most, 1))
    rings = planning.doorbell_rings(due, batch, most)
    for _ in range(rings):  # a ring not answered soon is stale: the next beat rings again
        poll_due.apply_async(expires=rt.settings.beat_interval * 4)
    return rings


_synced: tuple[tuple[object, ...], float] | None = None  # the config signature synced, when
RESYNC_EVERY = 600.0  # seconds: another beat, or a CLI command, may have synced an older one


def _sync_config(session: Session, config: Config, now: datetime) -> None:
    """Write the config's feeds into the table when it changed (a read of the whole
    table: 100,000 feeds are not re-read every few seconds for nothing)."""
    global _synced
    fresh = _synced is not None and time.monotonic() - _synced[1] < RESYNC_EVERY
    if fresh and _synced is not None and _synced[0] == config.signature:
        return
    feeds_store.sync_all(session, config.feeds, now)
    _synced = (config.signature, time.monotonic())


@app.task(name="watchfloor.poll_due", acks_late=True)
def poll_due() -> dict[str, int]:
    """Claim due feeds in batches and poll each batch at once (``pipeline.poll_due``)."""
    rt, counts = runtime(), Counter[str]()
    with structlog.contextvars.bound_contextvars(task_id=poll_due.request.id):
        pipeline.poll_due(
            rt, rt.settings.poll_lease, POLL_DUE_BUDGET, lambda o: counts.update([_after_poll(o)])
        )
    return dict(counts)


@app.task(name="watchfloor.poll_feed")
def poll_feed(feed_id: str) -> dict[str, object]:
    """One feed now, whatever its schedule (kept for messages queued before batches)."""
    rt = runtime()
    with structlog.contextvars.bound_contextvars(feed_id=feed_id, task_id=poll_feed.request.id):
        outcome = pipeline.poll_feed(rt, feed_id)
    _after_poll(outcome)
    return {
        "status": outcome.status,
        "new": len(outcome.new_items),
        "matches": len(outcome.matches),
    }


def _after_poll(outcome: pipeline.PollOutcome) -> str:
    """After the poll's commit: its deliveries enqueued, its metrics counted."""
    enqueue_deliveries(outcome.delivery_ids)
    metrics.observe_poll(outcome.status, outcome.fetch_seconds)
    metrics.observe_new_items(outcome.feed_id, len(outcome.new_items))
    for _, match in outcome.matches:
        metrics.observe_match(match.watchlist_id)
    return outcome.status


def enqueue_deliveries(delivery_ids: list[str]) -> None:
    """Called after the outbox transaction committed; a lost message is swept up later.
    Deliveries go in batches (``worker/outbox/batch.py``): one message per BATCH_MAX."""
    for start in range(0, len(delivery_ids), BATCH_MAX):
        deliver_batch.delay(delivery_ids[start : start + BATCH_MAX])


def _deliver(task: Task[Any, Any], kind: Kind, row_id: str) -> str:
    """One path for both tables; short retry waits ride on a countdown, long ones wait in
    the database for the sweep."""
    rt = runtime()
    with structlog.contextvars.bound_contextvars(
        **{f"{kind.value}_id": row_id}, task_id=task.request.id
    ):
        outcome = deliver_row(rt, kind, row_id)
    enqueue_deliveries(outcome.enqueue)
    _retry_soon(rt, task, kind, outcome)
    return outcome.status


def _retry_soon(
    rt: Runtime, task: Task[Any, Any], kind: Kind, outcome: DeliveryOutcome, batch: bool = False
) -> None:
    if outcome.retry_in is not None and outcome.retry_in <= rt.max_countdown:
        with rt.sessions.begin() as session:
            outbox_store.mark_enqueued(session, kind, [outcome.row_id], utcnow())
        arg = [outcome.row_id] if batch else outcome.row_id
        task.apply_async((arg,), countdown=outcome.retry_in.total_seconds())


@app.task(name="watchfloor.deliver_batch", bind=True, acks_late=True, reject_on_worker_lost=True)
def deliver_batch(self: Task[Any, Any], delivery_ids: list[str]) -> dict[str, int]:
    """Many single alerts: claimed together, sent concurrently, recorded together."""
    rt = runtime()
    with structlog.contextvars.bound_contextvars(task_id=self.request.id):
        result = batch.deliver_batch(rt, delivery_ids)
    enqueue_deliveries(result.enqueue)
    for outcome in result.outcomes:
        _retry_soon(rt, self, Kind.DELIVERY, outcome, batch=True)
    return dict(Counter(outcome.status for outcome in result.outcomes))


@app.task(name="watchfloor.deliver", bind=True, acks_late=True, reject_on_worker_lost=True)
def deliver(self: Task[Any, Any], delivery_id: str) -> str:
    return _deliver(self, Kind.DELIVERY, delivery_id)


@app.task(name="watchfloor.deliver_digest", bind=True, acks_late=True, reject_on_worker_lost=True)
def deliver_digest(self: Task[Any, Any], digest_id: str) -> str:
    return _deliver(self, Kind.DIGEST, digest_id)


@app.task(name="watchfloor.sweep")
def sweep() -> int:
    """Re-enqueue what the broker may have lost; form digests whose time has come."""
    rt = runtime()
    now, settings = utcnow(), rt.settings
    lease, requeue = settings.delivery_lease, settings.requeue_after
    with rt.sessions.begin() as session:
        made = outbox_store.batch_digests(session, now)  # marked enqueued: sent after commit
        ids = outbox_store.due_rows(session, Kind.DELIVERY, now, lease, requeue)
        digests = made + outbox_store.due_rows(session, Kind.DIGEST, now, lease, requeue)
        metrics.set_outbox_backlog(outbox_store.outbox_backlog(session, now))
        metrics.set_feeds_in_error(feeds_store.in_error(session))
    enqueue_deliveries(ids)
    for digest_id in digests:
        deliver_digest.delay(digest_id)
    if ids or digests:
        log.info("sweep enqueued", deliveries=len(ids), digests=len(digests))
    return len(ids) + len(digests)


@app.task(name="watchfloor.websub_maintain")
def websub_maintain() -> list[str]:
    """Keep WebSub subscriptions (only where WATCHFLOOR_PUBLIC_URL lets hubs call back)."""
    from worker.websub.subscriptions import maintain

    return [f"{step.action}:{step.feed_id}" for step in maintain(runtime(), utcnow())]


@app.task(name="watchfloor.prune")
def prune() -> int:
    rt = runtime()
    with rt.sessions.begin() as session:
        removed = items_store.prune(session, utcnow(), rt.settings.retention, STORY_WINDOW * 2)
    log.info("pruned old items", removed=removed)
    return removed
