"""``watchfloor health`` as a container runs it: a subprocess on a real database and Redis."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.helpers.configdir import write_config
from tests.helpers.processes import REPO, service_env
from worker.models import Delivery, Feed, Item, MatchRow, utcnow
from worker.store import heartbeats

BROKER = "redis://127.0.0.1:6379/12"
pytestmark = pytest.mark.timeout(60)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health(
    tmp_path: Path, config_dir: Path, db_url: str, *args: str, broker: str = BROKER
) -> tuple[int, list[str]]:
    env = service_env(tmp_path, config_dir, db_url, broker)
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "health", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
    )
    return proc.returncode, proc.stdout.splitlines()


def beat_at(engine: sa.Engine, at: datetime) -> None:
    with Session(engine) as session, session.begin():
        heartbeats.beat(session, "beat", at)


def add_feed(session: Session, feed_id: str, next_poll_at: datetime) -> Feed:
    feed = Feed(id=feed_id, url=f"http://127.0.0.1:1/{feed_id}", config_url="x")
    feed.config_url, feed.next_poll_at, feed.error_count = feed.url, next_poll_at, 0
    session.add(feed)
    return feed


def add_delivery(session: Session, delivery_id: str, status: str, due: datetime) -> None:
    """A delivery with the feed, item and match it belongs to."""
    now = utcnow()
    add_feed(session, f"feed-{delivery_id}", now)
    session.flush()
    item = Item(
        feed_id=f"feed-{delivery_id}", guid=delivery_id, canonical_url="http://x/", title="t",
        summary="s", fingerprint="f", fetched_at=now,
    )  # fmt: skip
    session.add(item)
    session.flush()
    match = MatchRow(
        item_id=item.id, watchlist_id="missile-tests", story_id=item.id, update_kind="",
        severity="high", hits=[], snippet="s", created_at=now,
    )  # fmt: skip
    session.add(match)
    session.flush()
    session.add(
        Delivery(id=delivery_id, match_id=match.id, channel_id="console", status=status,
                 attempts=1, next_attempt_at=due, created_at=now)
    )  # fmt: skip


def test_healthy_when_everything_answers(
    tmp_path: Path, engine: sa.Engine, db_url: str, config_dir: Path
) -> None:
    beat_at(engine, utcnow())
    code, lines = health(tmp_path, config_dir, db_url)
    assert lines[:2] == ["ok   database", "ok   broker"]
    assert lines[2].startswith("ok   beat: last heartbeat ")
    assert lines[3:] == ["ok   outbox", "ok   feeds"]
    assert code == 0


def test_closed_broker_port_fails(
    tmp_path: Path, engine: sa.Engine, db_url: str, config_dir: Path
) -> None:
    beat_at(engine, utcnow())
    broker = f"redis://127.0.0.1:{closed_port()}/0"
    code, lines = health(tmp_path, config_dir, db_url, "--component", "worker", broker=broker)
    assert lines[0] == "ok   database"
    assert lines[1].startswith("FAIL broker: ")
    assert "refused" in lines[1].lower()
    assert code == 1


def test_beat_without_heartbeat_fails_but_a_worker_does_not_need_one(
    tmp_path: Path, engine: sa.Engine, db_url: str, config_dir: Path
) -> None:
    code, lines = health(tmp_path, config_dir, db_url, "--component", "beat")
    assert lines == [
        "ok   database",
        "ok   broker",
        "FAIL beat: no heartbeat yet: is beat running, and a worker on 'poll'?",
    ]
    assert code == 1
    assert health(tmp_path, config_dir, db_url, "--component", "worker") == (
        0,
        ["ok   database", "ok   broker"],
    )


def test_stale_heartbeat_fails(
    tmp_path: Path, engine: sa.Engine, db_url: str, config_dir: Path
) -> None:
    beat_at(engine, utcnow() - timedelta(minutes=5))
    code, lines = health(tmp_path, config_dir, db_url, "--component", "beat")
    assert lines[2].startswith("FAIL beat: last heartbeat ")
    assert lines[2].endswith("ago (limit 60s)")
    assert code == 1
    code, lines = health(
        tmp_path, config_dir, db_url, "--component", "beat", "--beat-max-age", "600"
    )
    assert lines[2].startswith("ok   beat: last heartbeat ")
    assert code == 0


def test_outbox_backlog_fails_but_a_scheduled_retry_is_no_backlog(
    tmp_path: Path, engine: sa.Engine, db_url: str, config_dir: Path
) -> None:
    beat_at(engine, utcnow())
    now = utcnow()
    with Session(engine) as session, session.begin():
        add_delivery(session, "msg_later", "failed", now + timedelta(hours=5))
        add_delivery(session, "msg_sent", "sent", now - timedelta(hours=5))
        add_delivery(session, "msg_recent", "pending", now - timedelta(minutes=1))
    assert health(tmp_path, config_dir, db_url)[0] == 0
    with Session(engine) as session, session.begin():
        add_delivery(session, "msg_stuck", "pending", now - timedelta(minutes=45))
        add_delivery(session, "msg_retry", "failed", now - timedelta(minutes=20))
    code, lines = health(tmp_path, config_dir, db_url)
    assert "FAIL outbox: 2 deliveries overdue, oldest due 45m ago" in lines
    assert code == 1


def test_overdue_feeds_warn_only_for_configured_enabled_feeds(
    tmp_path: Path, engine: sa.Engine, db_url: str
) -> None:
    beat_at(engine, utcnow())
    feeds = [
        {"id": "late", "url": "http://127.0.0.1:1/late.xml"},
        {"id": "on-time", "url": "http://127.0.0.1:1/ok.xml"},
        {"id": "off", "url": "http://127.0.0.1:1/off.xml", "enabled": False},
    ]
    config_dir = write_config(tmp_path / "config", feeds=feeds)
    now = utcnow()
    with Session(engine) as session, session.begin():
        add_feed(session, "late", now - timedelta(hours=2))
        add_feed(session, "on-time", now + timedelta(minutes=1))
        add_feed(session, "off", now - timedelta(hours=2))
        add_feed(session, "removed-from-config", now - timedelta(hours=2))
    code, lines = health(tmp_path, config_dir, db_url)
    assert lines[-1] == "warn feeds: 1 overdue by more than 15m: late"
    assert code == 0  # a warning, not a failure


def test_failing_feeds_warn_and_every_feed_failing_fails(
    tmp_path: Path, engine: sa.Engine, db_url: str
) -> None:
    beat_at(engine, utcnow())
    feeds = [{"id": name, "url": f"http://127.0.0.1:1/{name}.xml"} for name in ("a", "b")]
    config_dir = write_config(tmp_path / "config", feeds=feeds)
    now = utcnow()
    with Session(engine) as session, session.begin():
        add_feed(session, "a", now + timedelta(minutes=1)).error_count = 3
        add_feed(session, "b", now + timedelta(minutes=1))
        session.get(Feed, "a").last_error = "FetchError: cannot resolve host 'a.example'"
    code, lines = health(tmp_path, config_dir, db_url)
    assert (code, lines[-1]) == (0, "warn feeds: 1 of 2 failing: a")
    with Session(engine) as session, session.begin():
        session.get(Feed, "b").error_count = 1
        session.get(Feed, "b").last_error = "FetchError: cannot resolve host 'b.example'"
    code, lines = health(tmp_path, config_dir, db_url)
    expected = (
        "FAIL feeds: all 2 feeds failing (last error: FetchError: cannot resolve host 'a.example')"
    )
    assert (code, lines[-1]) == (1, expected)


def test_unmigrated_database_fails_and_skips_what_needs_it(
    tmp_path: Path, config_dir: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'empty.db'}"
    code, lines = health(tmp_path, config_dir, db_url)
    assert lines[0] == (
        "FAIL database: database schema is at nothing, code needs "
        f"{_head()}: run 'watchfloor db upgrade'"
    )
    assert lines[1] == "ok   broker"
    assert lines[2:] == [
        f"skip {name}: database unavailable" for name in ("beat", "outbox", "feeds")
    ]
    assert code == 1


def test_unreachable_postgresql_fails(tmp_path: Path, config_dir: Path) -> None:
    db_url = f"postgresql+psycopg://watchfloor:secret@127.0.0.1:{closed_port()}/watchfloor"
    code, lines = health(tmp_path, config_dir, db_url, "--component", "worker")
    assert lines[0].startswith("FAIL database: ")
    assert "secret" not in lines[0]
    assert lines[1] == "ok   broker"
    assert code == 1


def _head() -> str | None:
    from worker.db import head_revision

    return head_revision()
