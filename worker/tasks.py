"""Thin Celery tasks: ids in, plain functions called, transient errors retried."""

from __future__ import annotations

from datetime import timedelta

import structlog
from celery import signals

from feeds.story import STORY_WINDOW
from worker import delivery, metrics, pipeline, store
from worker.app import app
from worker.db import SchemaOutOfDate, make_engine, require_current_schema
from worker.models import utcnow
from worker.runtime import Runtime, runtime
from worker.settings import load_settings

log = structlog.get_logger(__name__)
POLL_LEASE = timedelta(minutes=2)


@signals.worker_init.connect
def _start_metrics(**_: object) -> None:
    port = load_settings().metrics_port
    if port:
        metrics.start_metrics_server(port)


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
def poll_due_feeds() -> list[str]:
    rt = runtime()
    config, now = rt.config.current(), utcnow()
    with rt.sessions.begin() as session:
        store.sync_feeds(session, config.feeds, now)
        store.beat(session, "beat", now)
        enabled = [f for f in config.feeds if f.enabled]
        claimed: list[str] = []
        for feed in enabled:  # one lease per interval, so two beats never double-poll
            claimed += store.claim_due_feeds(
                session, [feed.id], now, max(feed.interval, POLL_LEASE)
            )
    for feed_id in claimed:
        poll_feed.delay(feed_id)
    return claimed


@app.task(name="watchfloor.poll_feed")
def poll_feed(feed_id: str) -> dict[str, object]:
    rt = runtime()
    with structlog.contextvars.bound_contextvars(feed_id=feed_id, task_id=poll_feed.request.id):
        outcome = pipeline.poll_feed(rt, feed_id)
    enqueue_deliveries(rt, outcome.delivery_ids)
    metrics.observe_poll(outcome.status, outcome.fetch_seconds)
    metrics.observe_new_items(feed_id, len(outcome.new_items))
    for _, match in outcome.matches:
        metrics.observe_match(match.watchlist_id)
    return {
        "status": outcome.status,
        "new": len(outcome.new_items),
        "matches": len(outcome.matches),
    }


def enqueue_deliveries(rt: Runtime, delivery_ids: list[str]) -> None:
    """Called after the outbox transaction committed; a lost message is swept up later."""
    for delivery_id in delivery_ids:
        deliver.delay(delivery_id)


@app.task(name="watchfloor.deliver", acks_late=True, reject_on_worker_lost=True)
def deliver(delivery_id: str) -> str:
    rt = runtime()
    with structlog.contextvars.bound_contextvars(
        delivery_id=delivery_id, task_id=deliver.request.id
    ):
        outcome = delivery.deliver(rt, delivery_id)
    if outcome.retry_in is not None and outcome.retry_in <= rt.max_countdown:
        # Short waits ride on a countdown; long ones wait in the database for the sweep.
        with rt.sessions.begin() as session:
            store.mark_enqueued(session, [delivery_id], utcnow())
        deliver.apply_async((delivery_id,), countdown=outcome.retry_in.total_seconds())
    return outcome.status


@app.task(name="watchfloor.sweep")
def sweep() -> int:
    rt = runtime()
    now = utcnow()
    with rt.sessions.begin() as session:
        ids = store.due_deliveries(session, now, rt.delivery_lease, requeue_after=rt.requeue_after)
        metrics.set_outbox_backlog(store.outbox_backlog(session, now))
        metrics.set_feeds_in_error(store.feeds_in_error(session))
    for delivery_id in ids:
        deliver.delay(delivery_id)
    if ids:
        log.info("sweep re-enqueued deliveries", count=len(ids))
    return len(ids)


@app.task(name="watchfloor.prune")
def prune() -> int:
    rt = runtime()
    with rt.sessions.begin() as session:
        removed = store.prune(session, utcnow(), rt.settings.retention, STORY_WINDOW * 2)
    log.info("pruned old items", removed=removed)
    return removed
