"""Ops behaviour of the real processes: graceful shutdown, two beats, no secret in the logs."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import Reply, WebhookReceiver
from tests.helpers.processes import Service, celery_worker, service_env, wait_until
from tests.helpers.smtp import SMTPServer
from tests.worker.guarantees import HIT, SECRET, WATCHLIST, deliveries, hook_stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_sigterm_lets_an_in_flight_delivery_finish(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    with FeedServer() as feeds, WebhookReceiver() as hook:
        hook.script(Reply(delay=4))  # the receiver takes its time over the first request
        feeds.publish("wire", FeedEntry("g1", HIT))
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        worker = celery_worker(env, tmp_path / "w.log")
        assert wait_until(lambda: len(hook.requests) == 1, 90), worker.log()
        assert worker.stop(timeout=60) == 0  # SIGTERM: Celery's warm shutdown
        assert [d["status"] for d in deliveries(db_url)] == ["sent"]
        assert len(hook.requests) == 1
        assert SECRET not in worker.log()


def test_two_beats_poll_each_feed_once_per_interval(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    with FeedServer() as feeds, WebhookReceiver() as hook:
        feeds.publish("wire", FeedEntry("g1", "Seoul stocks close higher on chip exports"))
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        config = Path(env["WATCHFLOOR_CONFIG_DIR"]) / "feeds.yaml"
        config.write_text(config.read_text().replace("interval: 1s", "interval: 3s"))
        beat = [sys.executable, "-m", "celery", "-A", "worker.app", "beat", "--loglevel=INFO"]
        beats = [
            Service([*beat, "-s", str(tmp_path / f"beat{i}.db")], env, tmp_path / f"b{i}.log")
            for i in range(2)
        ]
        try:
            with celery_worker(env, tmp_path / "w.log", beat=False) as worker:
                assert wait_until(lambda: len(feeds.statuses("wire")) >= 5, 90), worker.log()
        finally:
            for b in beats:
                b.stop()
        times = feeds.times["/wire.xml"]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 3 * 0.9, gaps  # never two polls within one interval
        assert all("beat: Starting" in b.log() for b in beats)


def test_configured_secrets_never_reach_the_logs(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    """A full run at DEBUG (poll, email with SMTP AUTH, signed webhook, a failing delivery, the
    operator commands): no configured secret in any log line or command output."""
    smtp_password, hook_secret = os.urandom(12).hex(), SECRET
    with (
        FeedServer() as feeds,
        WebhookReceiver() as hook,
        SMTPServer(tls="starttls", auth=("wf", smtp_password)) as smtp,
    ):
        hook.script(Reply(status=500))  # one failure first: errors get logged too
        feeds.publish("wire", FeedEntry("g1", HIT))
        smtp_conf = {
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "starttls",
            "username": "wf",
            "password": "${SMTP_PASSWORD}",
            "ca_file": str(smtp.ca_file),
        }
        config = write_config(
            tmp_path / "config",
            feeds=[{"id": "wire", "url": feeds.url("wire"), "interval": "1s"}],
            watchlists={"watchlists": [{**WATCHLIST, "channels": ["hook", "mail"]}]},
            channels=[
                {"id": "hook", "type": "webhook", "url": hook.url, "secret": "${WEBHOOK_SECRET}"},
                {
                    "id": "mail",
                    "type": "email",
                    "to": ["desk@example.org"],
                    "from": "wf@example.org",
                    "smtp": smtp_conf,
                },
            ],
        )
        env = service_env(
            tmp_path,
            config,
            db_url,
            redis_url,
            SMTP_PASSWORD=smtp_password,
            WEBHOOK_SECRET=hook_secret,
            WATCHFLOOR_LOG_LEVEL="DEBUG",
            WATCHFLOOR_RETRY_SCHEDULE="1s",
        )
        with celery_worker(env, tmp_path / "w.log") as worker:
            sent = lambda: [d["status"] for d in deliveries(db_url)] == ["sent", "sent"]  # noqa: E731
            assert wait_until(sent, 90), worker.log()
            outputs = [worker.log()]
            for args in (["status"], ["deliveries"], ["feeds"], ["health"], ["check"]):
                run = subprocess.run(
                    [sys.executable, "-m", "worker", *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                outputs.append(run.stdout + run.stderr)
        assert "alert delivered" in outputs[0] and "500" in outputs[0]  # the log saw it all
        assert smtp.messages[0].authenticated_as == "wf"
        assert len(hook.requests) == 2  # the failure, then the success: the secret was used
        for text in outputs:
            assert smtp_password not in text
            assert hook_secret not in text and hook_secret.removeprefix("whsec_") not in text
