"""``watchfloor run`` on the embedded defaults (SQLite broker and database), as a user starts it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.processes import service_env, tracebacks, wait_until, watchfloor

HIT = "North Korea fires ballistic missile toward the East Sea"
MISS = "Seoul stocks close higher on chip exports"


def sent_deliveries(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT id, status FROM deliveries")))
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


def _events(log: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_run_on_embedded_defaults_delivers_once(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.publish("wire", FeedEntry("g1", MISS))
        config_dir = write_config(
            tmp_path / "config",
            feeds=[
                {"id": "wire", "url": server.url("wire"), "interval": "1s"},
                {"id": "dead", "url": "http://127.0.0.1:9/closed.xml", "interval": "1s"},
            ],
        )
        env = service_env(tmp_path, config_dir, database_url="", broker_url=None)
        del env["WATCHFLOOR_DATABASE_URL"]  # the embedded default: SQLite under WATCHFLOOR_VAR_DIR
        db = tmp_path / "var" / "watchfloor.db"
        with watchfloor(env, tmp_path / "run.log", "run") as service:
            started = time.monotonic()
            assert wait_until(lambda: len(server.statuses("wire")) >= 2, 90), service.log()
            server.publish("wire", FeedEntry("g2", HIT))
            assert wait_until(lambda: [s for _, s in sent_deliveries(db)] == ["sent"], 90), (
                service.log()
            )
            server.publish("wire", FeedEntry("g3", MISS))
            polls = len(server.statuses("wire"))
            assert wait_until(lambda: len(server.statuses("wire")) >= polls + 3, 60)
            # the first 30 s at least, whatever the machine's speed: an observation window
            time.sleep(max(0.0, 30 - (time.monotonic() - started)))
            assert service.alive()
            log = service.log()
        assert len(sent_deliveries(db)) == 1
        assert tracebacks(log) == [], "no traceback in the first 30 s (nor ever)"
        assert not [e for e in _events(log) if e.get("level") in ("error", "critical")], log
        chatter = [line for line in log.splitlines() if "Task watchfloor." in line]
        assert chatter == [], "task chatter is DEBUG: the default log shows alerts and errors"
        assert not [e for e in _events(log) if e.get("status") == "not-modified"]
        events = _events(log)
        dead_errors = [e for e in events if e.get("feed_id") == "dead" and e.get("error")]
        assert dead_errors, "the unreachable feed's fetch error is logged"
        assert sum(HIT in line for line in log.splitlines() if "alert" in line.lower()) >= 1
