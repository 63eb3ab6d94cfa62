"""A delivery batch never lets a lease run out under a send: a batch wider than the process's
sending threads, and two batches at once sharing them, against a slow real receiver, on
SQLite and PostgreSQL. Before, rows waited for a thread past their lease, another worker took
them over, and every one of them was sent twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.types import Hit, Match
from feeds.sources import FeedSource
from feeds.types import FeedItem
from tests.helpers.configdir import write_config
from tests.helpers.http import Reply, WebhookReceiver
from tests.worker.guarantees import SECRET
from worker.models import Delivery, DeliveryStatus, Story, utcnow
from worker.outbox import batch
from worker.outbox import store as outbox
from worker.outbox.batch import BatchOutcome, deliver_batch
from worker.planning import Plan
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings
from worker.store import feeds, items

pytestmark = pytest.mark.timeout(180)


def setup(
    tmp_path: Path, db_url: str, hook: WebhookReceiver, channels: int, timeout: str, lease: float
) -> tuple[Runtime, Runtime, list[str]]:
    """``channels`` webhook channels of concurrency 1, one alert to each; two workers."""
    names = [f"h{i}" for i in range(channels)]
    chans = [
        {"id": n, "type": "webhook", "url": hook.url, "secret": SECRET, "concurrency": 1,
         "timeout": timeout}
        for n in names
    ]  # fmt: skip
    wl = {"id": "wl", "title": "M", "query": "missile", "channels": names}
    config_dir = write_config(
        tmp_path / "config",
        feeds=[{"id": "wire", "url": "http://127.0.0.1:9/feed"}],
        watchlists={"watchlists": [wl]},
        channels=chans,
    )
    settings = replace(
        load_settings(),
        config_dir=config_dir,
        database_url=db_url,
        allow_private_urls=True,
        delivery_lease=timedelta(seconds=lease),
    )
    rt, other = build_runtime(settings), build_runtime(settings)
    now = utcnow()
    with rt.sessions.begin() as s:
        feeds.sync(s, [FeedSource(id="wire", url="http://127.0.0.1:9/feed")], now)
        fresh = FeedItem("g1", "Missile test", "https://n.example/1", "s", now, "1" * 64)
        [(item_id, _)] = items.insert_new(s, "wire", [fresh], now)
        story = Story(first_seen=now, last_seen=now, title="Missile test", signature="")
        s.add(story)
        s.flush()
        s.execute(
            sa.text("UPDATE items SET story_id = :s WHERE id = :i"), {"s": story.id, "i": item_id}
        )
        hit = Hit(term="missile", field="title", start=0, end=7, snippet="Missile")
        match = Match("wl", (hit,), "Missile test")
        match_id = outbox.insert_alert(s, item_id, story.id, "", "high", match, now)
        plans = {n: Plan(DeliveryStatus.PENDING, now) for n in names}
        ids = outbox.insert_deliveries(s, plans, now, match_id=match_id)
    return rt, other, ids


def unsent(rt: Runtime, ids: list[str]) -> list[str]:
    with rt.sessions() as s:
        rows = s.scalars(
            sa.select(Delivery.id).where(Delivery.id.in_(ids), Delivery.status != "sent")
        )
        return sorted(rows)


def in_thread(rt: Runtime, ids: list[str]) -> tuple[threading.Thread, list[BatchOutcome]]:
    out: list[BatchOutcome] = []
    worker = threading.Thread(target=lambda: out.append(deliver_batch(rt, ids)))
    worker.start()
    return worker, out


def sent_once_each(hook: WebhookReceiver, ids: list[str]) -> None:
    counts = Counter(r.headers["webhook-id"] for r in hook.requests)
    assert {i: c for i, c in counts.items() if c > 1} == {}, "sent twice"
    assert len(counts) == len(ids)


@pytest.fixture
def slow_hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(keep_alive=True) as hook:
        hook._server.socket.listen(256)  # no SYN backlog delays with 32 connections at once
        yield hook


def test_a_batch_wider_than_the_sending_threads_is_sent_once_each(
    tmp_path: Path, engine: sa.Engine, db_url: str, slow_hook: WebhookReceiver
) -> None:
    """70 channels of one row each (more than twice the 32 threads), replies in 3 s of a 4 s
    timeout, a lease of 8 s; a second worker takes the same message once the lease is over,
    as the sweep would. The batch claims what its threads can send; the rest waits."""
    slow_hook.default = Reply(200, delay=3.0)
    rt, other, ids = setup(tmp_path, db_url, slow_hook, 70, "4s", 8.0)
    try:
        first, _ = in_thread(rt, ids)
        time.sleep(8.3)  # past the lease of anything the first batch claimed
        left = deliver_batch(other, ids).enqueue
        first.join()
        for _ in range(5):  # what the workers enqueue for the next batches, until none is left
            if not (left := unsent(rt, ids)):
                break
            deliver_batch(other, left)
        sent_once_each(slow_hook, ids)
    finally:
        rt.close()
        other.close()


def test_rows_a_batch_can_no_longer_send_in_time_are_given_back_not_sent_late(
    tmp_path: Path,
    engine: sa.Engine,
    db_url: str,
    slow_hook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two batches at once in one process share its sending threads (4 here): one batch's
    lanes wait while the other sends. A row whose send would end past half its lease is not
    sent but released (pending, due now) and goes out once in a later batch."""
    monkeypatch.setattr(batch, "SEND_THREADS", 4)
    monkeypatch.setattr(batch, "_POOL", None)  # a pool of 4 for this test
    slow_hook.default = Reply(200, delay=3.0)
    rt, other, ids = setup(tmp_path, db_url, slow_hook, 8, "3500ms", 10.0)
    try:
        (a, a_out), (b, b_out) = in_thread(rt, ids[:4]), in_thread(other, ids[4:])
        a.join()
        b.join()
        statuses = Counter(o.status for o in a_out[0].outcomes + b_out[0].outcomes)
        assert statuses["pending"] >= 1, statuses  # the lanes that waited gave their rows back
        assert statuses["sent"] + statuses["pending"] == 8, statuses
        for _ in range(8):
            if not (left := unsent(rt, ids)):
                break
            deliver_batch(other, left)
        assert unsent(rt, ids) == []
        sent_once_each(slow_hook, ids)
    finally:
        monkeypatch.setattr(batch, "_POOL", None)
        rt.close()
        other.close()
