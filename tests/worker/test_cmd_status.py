"""``watchfloor status`` as an operator runs it, on a real database with a day's worth of state."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.helpers.configdir import write_config
from tests.helpers.processes import REPO, service_env
from worker.models import ChannelState, Delivery, Feed, Item, MatchRow, utcnow
from worker.outbox.store import new_row_id
from worker.store import heartbeats

pytestmark = pytest.mark.timeout(60)


def status(tmp_path: Path, config_dir: Path, db_url: str, *args: str) -> tuple[int, str]:
    env = service_env(tmp_path, config_dir, db_url, "redis://127.0.0.1:6379/12")
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "status", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
    )
    return proc.returncode, proc.stdout + proc.stderr  # errors go to stderr


def feed(session: Session, feed_id: str, errors: int = 0, **fields: object) -> None:
    url = f"http://127.0.0.1:1/{feed_id}"
    session.add(Feed(id=feed_id, url=url, config_url=url, error_count=errors, **fields))


def match(
    session: Session, watchlist: str, created_at: datetime, *deliveries: tuple[str, str]
) -> None:
    """A match and its deliveries, given as (channel id, status)."""
    n = session.scalar(sa.select(sa.func.count()).select_from(Item)) or 0
    item = Item(
        feed_id="fine", guid=f"g{n}", canonical_url=f"http://x/{n}", title="t", summary="s",
        fingerprint="f", fetched_at=created_at,
    )  # fmt: skip
    session.add(item)
    session.flush()
    row = MatchRow(
        item_id=item.id, watchlist_id=watchlist, story_id=item.id, update_kind="", severity="high",
        hits=[], snippet="s", created_at=created_at,
    )  # fmt: skip
    session.add(row)
    session.flush()
    for channel_id, state in deliveries:
        session.add(
            Delivery(id=new_row_id(), match_id=row.id, channel_id=channel_id,
                     status=state, attempts=1, next_attempt_at=created_at, created_at=created_at)
        )  # fmt: skip


def seed(engine: sa.Engine, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        feed(session, "fine", last_polled_at=now - timedelta(seconds=30))
        feed(
            session,
            "flaky",
            3,
            last_error="fetch: timed out",
            last_error_at=now - timedelta(minutes=10),
        )
        feed(session, "gone", 1, last_error="http: 410 Gone", disabled_reason="http: 410 Gone")
        session.flush()
        match(session, "missile-tests", now, ("console", "sent"), ("desk", "dead"))
        match(session, "missile-tests", now, ("console", "pending"), ("desk", "dead"))
        match(session, "sanctions", now, ("console", "failed"))
        match(session, "sanctions", now - timedelta(days=1), ("console", "sent"))
        session.add(ChannelState(id="console", error_count=0, last_success_at=now))
        session.add(ChannelState(id="desk", error_count=2, last_error="smtp: 550 no such user",
                                 disabled_reason="smtp: 550 no such user"))  # fmt: skip
        session.add(ChannelState(id="old-hook", error_count=0))
        heartbeats.beat(session, "beat", now - timedelta(seconds=5))


def test_status_shows_one_screen_of_state(tmp_path: Path, engine: sa.Engine, db_url: str) -> None:
    channels = [
        {"id": "console", "type": "log"},
        {"id": "desk", "type": "log"},
        {"id": "spare", "type": "log"},
    ]
    config_dir = write_config(tmp_path / "config", channels=channels)
    seed(engine, utcnow())
    code, out = status(tmp_path, config_dir, db_url)
    assert code == 0, out
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[0].startswith("Watchfloor status at ")
    assert lines[2].startswith("last poll       20")
    assert lines[2].endswith(" ago)")
    assert lines[3].startswith("beat heartbeat  20")
    assert "feeds: 3 known, 1 in error, 1 disabled" in lines
    assert [line.split()[:3] for line in lines if line.startswith(("  flaky", "  gone"))] == [
        ["flaky", "3", "10m"],
        ["gone", "1", "-"],
    ]
    assert any(line.endswith("fetch: timed out") for line in lines)
    assert any(line.endswith("DISABLED: http: 410 Gone") for line in lines)
    assert "deliveries: pending 1, sending 0, failed 1, dead 2, sent 2" in lines
    assert "alerts today (since 00:00 UTC): 3" in lines
    wl_rows = [line.split() for line in lines if line.startswith(("  missile", "  sanctions"))]
    assert wl_rows == [["missile-tests", "2", "1"], ["sanctions", "1", "0"]]
    assert "channels: 4" in lines
    table = {line.split()[0]: line.split()[1:3] for line in lines if line.startswith("  ")}
    assert table["console"] == ["ok", "0"]
    assert table["desk"] == ["disabled", "2"]
    assert table["old-hook"] == ["removed", "0"]
    assert table["spare"] == ["unused", "0"]


def test_status_on_an_empty_database(
    tmp_path: Path, engine: sa.Engine, db_url: str, config_dir: Path
) -> None:
    code, out = status(tmp_path, config_dir, db_url)
    assert code == 0
    assert "last poll       never" in out
    assert "deliveries: pending 0, sending 0, failed 0, dead 0, sent 0" in out
    assert "alerts today (since 00:00 UTC): 0" in out


def test_status_refuses_an_unmigrated_database(tmp_path: Path, config_dir: Path) -> None:
    code, out = status(tmp_path, config_dir, f"sqlite:///{tmp_path / 'empty.db'}")
    assert code == 1
    assert "run 'watchfloor db upgrade'" in out
