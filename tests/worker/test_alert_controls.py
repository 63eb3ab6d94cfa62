"""Digests, rate limits, silences and quiet hours on real parts (Celery on Redis, aiosmtpd,
a loopback webhook receiver)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from standardwebhooks.webhooks import Webhook

from tests.conftest import REPO
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import WebhookReceiver
from tests.helpers.processes import celery_worker, wait_until
from tests.helpers.smtp import SMTPServer
from tests.worker.guarantees import SECRET, WATCHLIST, deliveries, hook_stack_env
from tests.worker.test_delivery_guarantees import DISTINCT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def set_channels(env: dict[str, str], channels: list[dict]) -> None:
    path = Path(env["WATCHFLOOR_CONFIG_DIR"]) / "channels.yaml"
    path.write_text(yaml.safe_dump({"channels": channels}))


def set_watchlists(env: dict[str, str], watchlists: list[dict]) -> None:
    path = Path(env["WATCHFLOOR_CONFIG_DIR"]) / "watchlists.yaml"
    path.write_text(yaml.safe_dump({"watchlists": watchlists}))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


DIGEST_EVERY = 60  # seconds (the shortest digest period); windows are epoch-aligned
DIGEST_TEST_NEEDS = 20  # seconds of the window the test needs to record all three matches


def start_early_in_a_digest_window() -> None:
    """All three matches must fall into one window, whatever the clock says when we start."""
    left = DIGEST_EVERY - time.time() % DIGEST_EVERY
    if left < DIGEST_TEST_NEEDS:
        time.sleep(left + 0.2)


def test_digest_groups_a_window_once_across_a_worker_crash(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    with FeedServer() as feeds, SMTPServer() as smtp:
        env = hook_stack_env(tmp_path, feeds.url("wire"), "http://127.0.0.1:9/", db_url, redis_url)
        mail = {
            "id": "hook",
            "type": "email",
            "to": ["desk@example.org"],
            "from": "wf@example.org",
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
            "mode": "digest",
            "digest": f"every {DIGEST_EVERY}s",
        }
        set_channels(env, [mail])
        start_early_in_a_digest_window()
        feeds.publish("wire", FeedEntry("a", *DISTINCT[0]), FeedEntry("b", *DISTINCT[1]))
        first = celery_worker(env, tmp_path / "w1.log")
        assert wait_until(lambda: len(deliveries(db_url)) == 2, 60), first.log()
        first.kill()  # a crash in the middle of the window
        first.stop()
        feeds.publish("wire", FeedEntry("c", *DISTINCT[2]))
        with celery_worker(env, tmp_path / "w2.log") as second:
            assert wait_until(lambda: len(deliveries(db_url)) == 3, 60), second.log()
            assert wait_until(lambda: smtp.messages, 120), second.log()
            polls = len(feeds.statuses("wire"))
            assert wait_until(lambda: len(feeds.statuses("wire")) >= polls + 4, 60)
        assert len(smtp.messages) == 1
        text = smtp.messages[0].parsed().get_body(("plain",)).get_content()
        for title, _ in DISTINCT[:3]:
            assert title in text
        assert {d["status"] for d in deliveries(db_url)} == {"sent"}


def test_rate_limit_sends_the_rest_of_a_burst_as_one_grouped_message(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    with FeedServer() as feeds, WebhookReceiver() as hook:
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        channel = {"id": "hook", "type": "webhook", "url": hook.url, "secret": SECRET}
        set_channels(env, [{**channel, "rate_limit": "2/20s"}])
        feeds.publish("wire", *(FeedEntry(f"g{i}", *story) for i, story in enumerate(DISTINCT)))
        with celery_worker(env, tmp_path / "w.log") as worker:
            assert wait_until(lambda: len(deliveries(db_url)) == 4, 60), worker.log()
            assert wait_until(lambda: {d["status"] for d in deliveries(db_url)} == {"sent"}, 90), (
                worker.log()
            )
        bodies = [Webhook(SECRET).verify(r.body, r.headers) for r in hook.requests]
        kinds = sorted(b["type"] for b in bodies)
        assert kinds == ["alert.created.v1", "alert.created.v1", "alert.digest.v1"]
        [grouped] = [b for b in bodies if b["type"] == "alert.digest.v1"]
        assert grouped["data"]["reason"] == "rate-limit" and len(grouped["data"]["alerts"]) == 2


def test_silenced_matches_are_recorded_and_listed_not_sent(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    with FeedServer() as feeds, WebhookReceiver() as hook:
        feeds.publish("wire", FeedEntry("g0", "Seoul stocks close higher on chip exports"))
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        added = cli(
            env,
            "silence",
            "add",
            "--watchlist",
            "missile-tests",
            "--for",
            "2h",
            "--reason",
            "exercise week",
        )
        assert added.returncode == 0, added.stdout + added.stderr
        assert "missile-tests on all channels until" in cli(env, "silence", "list").stdout
        with celery_worker(env, tmp_path / "w.log") as worker:
            feeds.publish("wire", FeedEntry("g1", *DISTINCT[0]))
            assert wait_until(lambda: len(deliveries(db_url)) == 1, 60), worker.log()
            polls = len(feeds.statuses("wire"))
            assert wait_until(lambda: len(feeds.statuses("wire")) >= polls + 3, 60)
        assert hook.requests == []
        [row] = deliveries(db_url)
        assert row["status"] == "silenced" and "exercise week" in str(row["last_error"])
        listed = cli(env, "deliveries", "--status", "silenced", "--json")
        assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [row["id"]]


def test_quiet_hours_hold_alerts_but_critical_breaks_through(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    now = datetime.now(UTC)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    with FeedServer() as feeds, WebhookReceiver() as hook:
        feeds.publish("wire", FeedEntry("g0", "Seoul stocks close higher on chip exports"))
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        channel = {"id": "hook", "type": "webhook", "url": hook.url, "secret": SECRET}
        set_channels(env, [{**channel, "quiet_hours": quiet}])
        critical = {
            **WATCHLIST,
            "id": "satellite",
            "title": "Satellite",
            "severity": "critical",
            "query": '"reconnaissance satellite"',
        }
        set_watchlists(env, [WATCHLIST, critical])
        with celery_worker(env, tmp_path / "w.log") as worker:
            feeds.publish(
                "wire",
                FeedEntry("g1", *DISTINCT[0]),
                FeedEntry(
                    "g2",
                    "North Korea launches reconnaissance satellite from Sohae",
                    "State media said the satellite reached orbit.",
                ),
            )
            assert wait_until(lambda: len(hook.requests) == 1, 60), worker.log()
            polls = len(feeds.statuses("wire"))
            assert wait_until(lambda: len(feeds.statuses("wire")) >= polls + 3, 60)
        assert len(hook.requests) == 1
        assert json.loads(hook.requests[0].body)["data"]["watchlist"]["id"] == "satellite"
        held = [d for d in deliveries(db_url) if d["status"] == "pending"]
        assert len(held) == 1 and "held for quiet hours" in str(held[0]["last_error"])
