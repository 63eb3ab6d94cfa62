"""poll_feed on real parts: a loopback feed server and a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import REPO
from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import Reply, WebhookReceiver
from tests.worker.guarantees import SECRET, WATCHLIST, send_ops_alerts_to
from worker import pipeline
from worker.models import Delivery, Feed, Item, MatchRow, OpsEvent
from worker.outbox.deliver import deliver as deliver_row
from worker.outbox.store import Kind
from worker.planning import CHANNEL_FAILING_AFTER as FAILING_AFTER
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings

HIT = "North Korea fires ballistic missile toward the East Sea"
MISS = "Seoul stocks close higher on chip exports"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


def _runtime(tmp_path: Path, db_url: str, server: FeedServer, **feed: str) -> Runtime:
    wire = {"id": "wire", "url": server.url("wire"), "interval": "1m", **feed}
    config_dir = write_config(tmp_path / "config", feeds=[wire])
    settings = replace(
        load_settings(), config_dir=config_dir, database_url=db_url, allow_private_urls=True
    )
    return build_runtime(settings)


@pytest.fixture
def rt(tmp_path: Path, engine: sa.Engine, db_url: str, server: FeedServer) -> Iterator[Runtime]:
    runtime = _runtime(tmp_path, db_url, server)
    yield runtime
    runtime.engine.dispose()


def deliver(rt: Runtime, delivery_id: str, now: datetime | None = None):  # type: ignore[no-untyped-def]
    return deliver_row(rt, Kind.DELIVERY, delivery_id, now=now)


def count(rt: Runtime, model: type) -> int:
    with rt.sessions() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))


def test_conditional_get_second_poll_is_304_and_stores_nothing(rt: Runtime, server: FeedServer):
    server.publish("wire", FeedEntry("g1", HIT), FeedEntry("g2", MISS))
    first = pipeline.poll_feed(rt, "wire")
    assert first.status == "ok" and len(first.new_items) == 2
    items_before, feed_before = count(rt, Item), _feed(rt)
    second = pipeline.poll_feed(rt, "wire")
    assert second.status == "not-modified"
    assert server.statuses("wire") == [200, 304]
    assert count(rt, Item) == items_before == 2
    assert _feed(rt).etag == feed_before.etag is not None


def _feed(rt: Runtime) -> Feed:
    with rt.sessions() as s:
        return s.get(Feed, "wire")


def test_only_new_matching_items_create_one_match_and_deliveries(rt: Runtime, server: FeedServer):
    server.publish("wire", FeedEntry("g1", MISS))
    assert pipeline.poll_feed(rt, "wire").matches == []
    server.publish("wire", FeedEntry("g2", HIT))
    outcome = pipeline.poll_feed(rt, "wire")
    assert [m.watchlist_id for _, m in outcome.matches] == ["missile-tests"]
    assert len(outcome.delivery_ids) == 1
    server.publish("wire", FeedEntry("g3", MISS))
    assert pipeline.poll_feed(rt, "wire").matches == []
    assert (count(rt, MatchRow), count(rt, Delivery)) == (1, 1)


def test_first_poll_alerts_only_recent_items(rt: Runtime, server: FeedServer):
    old = datetime.now(UTC) - timedelta(days=3)
    server.publish("wire", FeedEntry("old", HIT, published=old), FeedEntry("new", HIT))
    outcome = pipeline.poll_feed(rt, "wire")
    assert len(outcome.new_items) == 2
    assert len(outcome.matches) == 1
    server.publish("wire", FeedEntry("later-but-old-date", HIT, published=old))
    assert len(pipeline.poll_feed(rt, "wire").matches) == 1  # after the first poll, all new alert


def test_fetch_error_is_recorded_and_backs_off(rt: Runtime, server: FeedServer):
    outcome = pipeline.poll_feed(rt, "wire")  # nothing published: 404
    assert outcome.status == "error"
    feed = _feed(rt)
    assert feed.error_count == 1 and "404" in feed.last_error
    assert feed.next_poll_at > datetime.now(UTC)
    server.publish("wire", FeedEntry("g1", MISS))
    assert pipeline.poll_feed(rt, "wire").status == "ok"
    assert _feed(rt).error_count == 0 and _feed(rt).last_error is None


def test_feed_failing_past_threshold_alerts_the_ops_channel_once(
    rt: Runtime, server: FeedServer, tmp_path: Path
) -> None:
    with WebhookReceiver() as ops:
        send_ops_alerts_to(rt.settings.config_dir, ops.url)
        rt.settings = replace(rt.settings, feed_failing_after=timedelta(minutes=30))
        start = datetime.now(UTC)
        ops_ids = []
        for minutes in (0, 10, 20, 31, 40, 50):  # nothing published: every poll is a 404
            outcome = pipeline.poll_feed(rt, "wire", now=start + timedelta(minutes=minutes))
            assert outcome.status == "error"
            ops_ids += outcome.delivery_ids  # written with the error record, sent by the queue
            assert len(ops_ids) == (minutes >= 31)
        assert count(rt, OpsEvent) == 1 and ops.requests == []  # nothing sent from the poll
        last = start + timedelta(minutes=50)
        assert [deliver(rt, d, now=last).status for d in ops_ids] == ["sent"]
        assert len(ops.requests) == 1
        data = json.loads(ops.requests[0].body)["data"]
        assert data["item"]["title"].startswith("feed wire is failing")
        assert "404" in data["item"]["summary"]


def test_channel_failing_alerts_the_ops_channel_at_the_threshold_not_every_time(
    rt: Runtime, server: FeedServer
) -> None:
    with WebhookReceiver() as hook, WebhookReceiver() as ops:
        hook.default = Reply(500)
        channels = [
            {"id": "hook", "type": "webhook", "url": hook.url, "secret": SECRET},
            {"id": "ops", "type": "webhook", "url": ops.url, "secret": SECRET},
        ]
        config = rt.settings.config_dir
        (config / "channels.yaml").write_text(
            yaml.safe_dump({"ops_channel": "ops", "channels": channels})
        )
        watchlist = {**WATCHLIST, "channels": ["hook"]}
        (config / "watchlists.yaml").write_text(yaml.safe_dump({"watchlists": [watchlist]}))
        server.publish("wire", FeedEntry("g1", HIT))
        [delivery_id] = pipeline.poll_feed(rt, "wire").delivery_ids
        later = datetime.now(UTC)
        ops_ids = []
        for attempt in range(1, FAILING_AFTER + 2):
            later += timedelta(days=1)  # past any retry delay
            outcome = deliver(rt, delivery_id, now=later)
            assert outcome.status == "failed"
            ops_ids += outcome.enqueue  # the ops alert is an outbox row of its own
            assert len(ops_ids) == (attempt >= FAILING_AFTER)
        assert ops.requests == []
        assert [deliver(rt, d).status for d in ops_ids] == ["sent"]
        assert len(hook.requests) == FAILING_AFTER + 1
        data = json.loads(ops.requests[0].body)["data"]
        assert data["item"]["title"] == f"channel hook is failing: {FAILING_AFTER} errors in a row"
        assert "500" in data["item"]["summary"]


def test_feeds_command_shows_health(rt: Runtime, server: FeedServer) -> None:
    server.publish("wire", FeedEntry("g1", MISS))
    pipeline.poll_feed(rt, "wire")
    env = {
        **os.environ,
        "WATCHFLOOR_CONFIG_DIR": str(rt.settings.config_dir),
        "WATCHFLOOR_DATABASE_URL": rt.settings.database_url,
    }
    out = subprocess.run(
        [sys.executable, "-m", "worker", "feeds", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    [row] = [json.loads(line) for line in out.stdout.splitlines()]
    assert (row["id"], row["status"], row["items"], row["error_count"]) == ("wire", "ok", 1, 0)


def test_a_window_overflow_is_recorded_shown_and_polled_sooner(
    tmp_path: Path, engine: sa.Engine, db_url: str, server: FeedServer
):
    """A feed that carries two items got three new ones since the last poll: every item is
    new and the oldest is newer than that poll, so one fell off unseen. (Four items in
    all teach adaptive polling nothing yet: the interval stays the configured 1m.)"""
    from worker import read

    rt = _runtime(tmp_path, db_url, server, min_interval="10s")

    old = datetime.now(UTC) - timedelta(hours=2)
    server.publish("wire", *(FeedEntry(f"a{n}", MISS, published=old) for n in range(2)))
    first = pipeline.poll_feed(rt, "wire")
    assert first.status == "ok" and not first.window_overflowed
    assert _feed(rt).window_overflows == 0
    later = _feed(rt).last_success_at + timedelta(seconds=1)  # <pubDate> has whole seconds
    with server.lock:  # the window moved on by three items: b1 was never served
        server.feeds["wire"] = [FeedEntry(f"b{n}", MISS, published=later) for n in (2, 3)]
    second = pipeline.poll_feed(rt, "wire")
    assert second.window_overflowed and len(second.new_items) == 2
    feed = _feed(rt)
    assert feed.window_overflows == 1 and feed.last_overflow_at is not None
    assert feed.poll_interval_s == 30  # half the 1m interval: poll sooner
    assert feed.next_poll_at - feed.last_polled_at == timedelta(seconds=30)
    with rt.sessions() as s:
        [row] = read.feed_health(rt.config.current().feeds, read.feeds(s))
    assert (row["window_overflows"], row["interval_s"]) == (1, 30)
    with server.lock:  # one new item beside a known one: the window reaches back
        server.feeds["wire"] = [FeedEntry("b3", MISS, published=later), FeedEntry("c", MISS)]
    third = pipeline.poll_feed(rt, "wire")
    assert len(third.new_items) == 1 and not third.window_overflowed
    assert _feed(rt).window_overflows == 1
    assert _feed(rt).poll_interval_s > 30  # no longer hurried: the rhythm decides again
    rt.engine.dispose()


def test_a_quiet_feed_earns_a_longer_interval_written_and_followed(rt: Runtime, server: FeedServer):
    """Ten items, one every 32 minutes, the last just now: the next is expected in 32
    minutes, polled 8 times in that wait, every 4m (the feed's bounds are 1m, its own
    interval, to 1h; planning.learned_interval)."""
    now = datetime.now(UTC)
    gap = timedelta(minutes=32)
    entries = [FeedEntry(f"g{n}", MISS, published=now - gap * n) for n in range(10)]
    server.publish("wire", *entries)
    pipeline.poll_feed(rt, "wire")
    feed = _feed(rt)
    assert 230 <= feed.poll_interval_s <= 250
    waited = feed.next_poll_at - feed.last_polled_at  # the column keeps whole seconds
    assert abs(waited - timedelta(seconds=feed.poll_interval_s)) < timedelta(seconds=1)


def test_each_item_language_is_stored_filters_watch_lists_and_shows_in_the_alert(
    tmp_path: Path, engine: sa.Engine, db_url: str, server: FeedServer
) -> None:
    from alerts.render import webhook_payload
    from alerts.render_chat import chat_body
    from worker.outbox import store as outbox_store
    from worker.outbox.messages import alert_of

    wire = {"id": "wire", "url": server.url("wire"), "interval": "1m"}
    aliases = {
        "dprk": ["North Korea", "북한", "КНДР"],
        "missile": ["missile", "탄도미사일", "ракет*"],
    }
    watchlists = {
        "aliases": aliases,
        "watchlists": [
            {"id": "korean-press", "title": "Korean press", "query": "@dprk AND @missile",
             "languages": ["ko"], "channels": ["console"]},
            {"id": "all-press", "title": "All press", "query": "@dprk AND @missile",
             "channels": ["console"]},
        ],
    }  # fmt: skip
    config_dir = write_config(tmp_path / "config", feeds=[wire], watchlists=watchlists)
    settings = replace(
        load_settings(), config_dir=config_dir, database_url=db_url, allow_private_urls=True
    )
    rt = build_runtime(settings)
    try:
        server.publish(
            "wire",
            FeedEntry("ko", "북한, 서해상으로 탄도미사일 발사", "합동참모본부가 오늘 밝혔다."),
            FeedEntry("ru", "КНДР провела испытание ракетного двигателя", "Сообщили в Сеуле."),
            FeedEntry("en", "North Korea fires ballistic missile into East Sea", "Seoul said."),
        )
        outcome = pipeline.poll_feed(rt, "wire")
        items = dict(outcome.new_items)
        fired = sorted(
            (m.watchlist_id, items[i].guid.rsplit("/", 1)[-1])
            for i, m in _matched_items(rt, outcome)
        )
        assert fired == [
            ("all-press", "en"), ("all-press", "ko"), ("all-press", "ru"), ("korean-press", "ko"),
        ]  # fmt: skip
        with rt.sessions() as s:
            stored = {
                guid.rsplit("/", 1)[-1]: language
                for guid, language in s.execute(sa.select(Item.guid, Item.language))
            }
            [korean] = s.scalars(
                sa.select(MatchRow.id).where(MatchRow.watchlist_id == "korean-press")
            ).all()
            alert = alert_of(rt.config.current(), outbox_store.alert_facts(s, korean), "dlv_1")
        assert stored == {"ko": "ko", "ru": "ru", "en": "en"}
        assert alert.item.language == "ko"
        assert webhook_payload(alert)["data"]["item"]["language"] == "ko"
        assert "wire (ko)" in chat_body(alert, "text")
    finally:
        rt.engine.dispose()


def _matched_items(rt: Runtime, outcome: pipeline.PollOutcome) -> list[tuple[int, object]]:
    """(item id, match) of each alert the poll recorded."""
    with rt.sessions() as s:
        items = dict(s.execute(sa.select(MatchRow.id, MatchRow.item_id)).all())
    return [(items[match_id], match) for match_id, match in outcome.matches]
