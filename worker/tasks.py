"""Thin Celery tasks: ids in, plain functions called, transient errors retried."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from celery import signals

from feeds.story import STORY_WINDOW
from worker import delivery, metrics, pipeline, store
from worker.app import app
from worker.db import SchemaOutOfDate, make_engine, require_current_schema
from worker.models import Delivery, DigestRow, utcnow
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
    _retry_soon(rt, Delivery, deliver, delivery_id, outcome)
    return outcome.status


def _retry_soon(rt: Runtime, model: type, task: Any, row_id: str, outcome: Any) -> None:
    """Short waits ride on a countdown; long ones wait in the database for the sweep."""
    if outcome.retry_in is not None and outcome.retry_in <= rt.max_countdown:
        with rt.sessions.begin() as session:
            store.mark_enqueued(session, model, [row_id], utcnow())
        task.apply_async((row_id,), countdown=outcome.retry_in.total_seconds())


@app.task(name="watchfloor.sweep")
def sweep() -> int:
    """Re-enqueue what the broker may have lost; form digests whose time has come."""
    rt = runtime()
    now = utcnow()
    lease, requeue = rt.delivery_lease, rt.requeue_after
    with rt.sessions.begin() as session:
        made = store.batch_digests(session, now)  # marked enqueued: sent right after commit
        ids = store.due_rows(session, Delivery, now, lease, requeue)
        digests = made + store.due_rows(session, DigestRow, now, lease, requeue)
        metrics.set_outbox_backlog(store.outbox_backlog(session, now))
        metrics.set_feeds_in_error(store.feeds_in_error(session))
    for delivery_id in ids:
        deliver.delay(delivery_id)
    for digest_id in digests:
        deliver_digest.delay(digest_id)
    if ids or digests:
        log.info("sweep enqueued", deliveries=len(ids), digests=len(digests))
    return len(ids) + len(digests)


@app.task(name="watchfloor.deliver_digest", acks_late=True, reject_on_worker_lost=True)
def deliver_digest(digest_id: str) -> str:
    rt = runtime()
    with structlog.contextvars.bound_contextvars(digest_id=digest_id):
        outcome = delivery.deliver_digest(rt, digest_id)
    _retry_soon(rt, DigestRow, deliver_digest, digest_id, outcome)
    return outcome.status


@app.task(name="watchfloor.prune")
def prune() -> int:
    rt = runtime()
    with rt.sessions.begin() as session:
        removed = store.prune(session, utcnow(), rt.settings.retention, STORY_WINDOW * 2)
    log.info("pruned old items", removed=removed)
    return removed
