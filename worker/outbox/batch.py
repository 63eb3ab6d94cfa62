"""Deliver many single alerts at once: claim them in one transaction, send them concurrently,
record every outcome in one more.

The guarantees are those of ``deliver.py``, row by row: a row is claimed before it is sent
and keeps its id across attempts, a sent row is never claimed again, and a worker killed
mid-batch leaves its rows ``sending`` until their lease runs out and another worker sends
them with the same ids. What changes is the cost: a few statements per batch instead of a
dozen per alert, and one kept-alive connection per receiver shared by the sending threads.

Each channel's rows go out in the order they were made, at most ``concurrency`` in flight
(``alerts.controls.ChannelControls``); a batch claims no more of a channel's rows than it
can send within half the lease (``batching.channel_cap``), and no more channels than the
process has sending threads for; it leaves the rest for the next. Should the threads still
fall behind (two batches at once in one process), a row whose send could no longer end
within half the lease is not sent but given back (``transitions.Release``) and enqueued
again: a lease never runs out under a send, so no row is sent twice.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from alerts.controls import RetryPolicy
from common.errors import DeliveryError
from worker.config import Config
from worker.models import DeliveryStatus, utcnow
from worker.outbox import batching, messages
from worker.outbox import store as outbox_store
from worker.outbox.deliver import (
    DeliveryOutcome,
    channel_for,
    record_failure,
    send,
    sent_outcome,
)
from worker.outbox.messages import Built
from worker.outbox.store import Kind, OutboxRow
from worker.outbox.transitions import Hold, Release
from worker.runtime import Runtime
from worker.store import channels as channels_store

log = structlog.get_logger(__name__)
S = DeliveryStatus
SEND_THREADS = 32  # sending threads per process, shared by every batch and channel


@dataclass(frozen=True)
class BatchOutcome:
    outcomes: list[DeliveryOutcome]
    # to enqueue after commit: ops alerts raised, and rows left for the next batch
    enqueue: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Result:
    row: OutboxRow
    built: Built | None
    error: DeliveryError | None
    released: bool = False  # not sent: too late in its lease to start


def deliver_batch(rt: Runtime, ids: Sequence[str], now: datetime | None = None) -> BatchOutcome:
    now = now or utcnow()
    config, lease = rt.config.current(), rt.settings.delivery_lease
    with rt.sessions.begin() as session:
        candidates = outbox_store.claim_candidates(session, ids, now, lease)
        caps = {channel_id: _cap(config, channel_id, rt) for _, channel_id in candidates}
        widths = {channel_id: _width(config, channel_id) for _, channel_id in candidates}
        take, later = batching.pick(candidates, caps, widths, SEND_THREADS)
        outbox_store.mark_enqueued(session, Kind.DELIVERY, later, now)
        rows = outbox_store.claim_many(session, take, now, lease)
        rows, held = _hold_over_rate_limits(session, config, rows, now)
        built = messages.build_many(config, session, rows)
        disabled = {
            channel_id: channels_store.health(session, channel_id).disabled_reason
            for channel_id in {row.channel_id for row in rows}
        }
    results = _send_all(rt, rows, built, disabled, now)
    outcomes, enqueue = _record(rt, results)
    return BatchOutcome(held + outcomes, enqueue + later)


def _width(config: Config, channel_id: str) -> int:
    channel = config.channels.get(channel_id)
    return channel.concurrency if channel else 1


def _cap(config: Config, channel_id: str, rt: Runtime) -> int:
    channel = config.channels.get(channel_id)
    if channel is None:
        return batching.BATCH_MAX  # each fails at once: "no longer configured"
    lease = rt.settings.delivery_lease
    return batching.channel_cap(channel.concurrency, channel.worst_send_seconds(), lease)


def _hold_over_rate_limits(
    session: Session, config: Config, rows: list[OutboxRow], now: datetime
) -> tuple[list[OutboxRow], list[DeliveryOutcome]]:
    """Per rate-limited channel, send what its window allows and hold the rest until one
    release time, grouped (as ``deliver._over_rate_limit`` does one row at a time)."""
    send_now, held = [], []
    for channel_id in dict.fromkeys(row.channel_id for row in rows):
        mine = [row for row in rows if row.channel_id == channel_id]
        channel = config.channels.get(channel_id)
        if channel is None or channel.rate_limit is None:
            send_now += mine
            continue
        limit = channel.rate_limit
        channels_store.lock(session, channel_id)  # one worker at a time counts the window
        ids = [row.id for row in mine]
        recent = outbox_store.sent_since(session, channel_id, ids, limit.since(now))
        allowed = batching.allowed_now(limit.count, recent, len(mine))
        send_now += mine[:allowed]
        if allowed < len(mine):
            until = limit.release_at(now, outbox_store.held_release(session, channel_id))
            note = f"rate limit {limit.count} per {limit.per}: sent grouped with the burst"
            for row in mine[allowed:]:
                outbox_store.apply(session, row, Hold(until, note), now, channel.retry)
                held.append(DeliveryOutcome(row.id, S.HELD.value))
    return send_now, held


def _send_all(
    rt: Runtime,
    rows: list[OutboxRow],
    built: dict[str, Built | LookupError],
    disabled: dict[str, str | None],
    claimed: datetime,
) -> list[_Result]:
    """Send every row that can still be sent within half its lease (claimed at
    ``claimed``); returns the results in the order they finished."""
    queues: dict[str, deque[OutboxRow]] = {}
    for row in rows:
        queues.setdefault(row.channel_id, deque()).append(row)
    results: list[_Result] = []
    lock = threading.Lock()
    config, lease = rt.config.current(), rt.settings.delivery_lease

    def lane(channel_id: str, queue: deque[OutboxRow]) -> None:
        channel = config.channels.get(channel_id)
        worst = channel.worst_send_seconds() if channel else 0.0
        while True:
            with lock:
                if not queue:
                    return
                row = queue.popleft()
            elapsed = (utcnow() - claimed).total_seconds()
            if batching.may_start(elapsed, worst, lease):
                result = _send_one(rt, row, built[row.id], disabled.get(channel_id))
            else:
                result = _Result(row, None, None, released=True)
            with lock:
                results.append(result)

    lanes = []
    for channel_id, queue in queues.items():
        channel = config.channels.get(channel_id)
        width = min(channel.concurrency if channel else 1, len(queue))
        lanes += [_pool().submit(lane, channel_id, queue) for _ in range(width)]
    for running in lanes:
        running.result()
    return results


def _send_one(
    rt: Runtime, row: OutboxRow, built: Built | LookupError, disabled: str | None
) -> _Result:
    if isinstance(built, LookupError):
        return _Result(row, None, DeliveryError(str(built), permanent=True))
    try:
        send(channel_for(rt, row.channel_id, disabled), built.message)
    except DeliveryError as exc:
        return _Result(row, built, exc)
    except Exception as exc:  # a bug in one send must not cost the batch its records
        log.exception("send raised", delivery_id=row.id, channel_id=row.channel_id)
        return _Result(row, built, DeliveryError(f"send raised {type(exc).__name__}: {exc}"))
    return _Result(row, built, None)


def _record(rt: Runtime, results: list[_Result]) -> tuple[list[DeliveryOutcome], list[str]]:
    """One transaction: the sent rows in one UPDATE, each failure as ``deliver`` records it,
    and the channels' states in the order the sends finished."""
    now = utcnow()
    outcomes: list[DeliveryOutcome] = []
    enqueue: list[str] = []
    with rt.sessions.begin() as session:
        for result in (r for r in results if r.released):  # Release moves no retry schedule
            if outbox_store.apply(session, result.row, Release(), now, RetryPolicy()) is not None:
                outcomes.append(DeliveryOutcome(result.row.id, S.PENDING.value))
                enqueue.append(result.row.id)
        results = [r for r in results if not r.released]
        sent = [r for r in results if r.error is None]
        won = {row.id for row in outbox_store.mark_sent(session, [r.row for r in sent], now)}
        steps = batching.channel_steps([(r.row.channel_id, r.error is None) for r in results])
        for step in steps:
            if isinstance(step, batching.Succeeded):
                channels_store.record_success(session, step.channel_id, now)
                continue
            failed = results[step.index]
            assert failed.error is not None  # channel_steps marks failures only
            outcome = record_failure(session, rt, failed.row, failed.error, now)
            outcomes.append(outcome)
            enqueue += outcome.enqueue
    for result in sent:
        if result.row.id in won and result.built is not None:
            outcomes.append(sent_outcome(result.row, result.built, now))
        else:  # its lease ran out and another worker took it over: that worker records it
            outcomes.append(DeliveryOutcome(result.row.id, "skipped"))
    return outcomes, enqueue


_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process's sending threads (a forked pool child makes its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(SEND_THREADS, "watchfloor-send"))
        return _POOL[1]
