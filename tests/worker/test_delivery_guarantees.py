"""Alerts are never lost and never doubled, shown under faults on real parts:
Celery workers on Redis, a loopback feed server and a loopback webhook receiver."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from standardwebhooks.webhooks import Webhook

from alerts.channels.chat import ID_HEADER
from tests.conftest import REPO
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import Reply, WebhookReceiver
from tests.helpers.processes import celery_worker, free_port, wait_until
from tests.worker.guarantees import HIT, SECRET, channel_state, deliveries, hook_stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


CHANNELS = pytest.mark.parametrize("channel", ["webhook", "apprise"])


def ids(hook: WebhookReceiver) -> set[str]:
    """The delivery id each request carried: Standard Webhooks' header, or ours on Apprise."""
    return {r.headers.get("webhook-id") or r.headers[ID_HEADER.lower()] for r in hook.requests}


@pytest.fixture
def feeds():
    with FeedServer() as server:
        server.publish("wire", FeedEntry("g1", HIT))
        yield server


@CHANNELS
def test_500_three_times_then_200_one_success_same_id_backoff(
    tmp_path: Path, engine, db_url: str, redis_url: str, feeds: FeedServer, channel: str
) -> None:
    with WebhookReceiver() as hook:
        hook.fail_times(3)
        env = hook_stack_env(
            tmp_path,
            feeds.url("wire"),
            hook.url,
            db_url,
            redis_url,
            channel,
            WATCHFLOOR_RETRY_SCHEDULE="1s,2s,3s,30s",
        )
        with celery_worker(env, tmp_path / "w.log") as worker:
            assert wait_until(lambda: [d["status"] for d in deliveries(db_url)] == ["sent"], 90), (
                worker.log()
            )
        [row] = deliveries(db_url)
        assert row["attempts"] == 4
        assert len(hook.requests) == 4 and len(ids(hook)) == 1 and row["id"] in ids(hook)
        gaps = [b.at - a.at for a, b in zip(hook.requests, hook.requests[1:], strict=False)]
        assert [g >= want * 0.9 for g, want in zip(gaps, (1, 2, 3), strict=True)] == [True] * 3, (
            gaps
        )
        for request in hook.requests:
            if channel == "webhook":
                Webhook(SECRET).verify(request.body, request.headers)
            else:
                assert json.loads(request.body)["title"] == "\\[HIGH\\] Missile tests"


@CHANNELS
def test_receiver_down_then_up_alert_arrives(
    tmp_path: Path, engine, db_url: str, redis_url: str, feeds: FeedServer, channel: str
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    env = hook_stack_env(
        tmp_path,
        feeds.url("wire"),
        url,
        db_url,
        redis_url,
        channel,
        WATCHFLOOR_RETRY_SCHEDULE="1s" + ",1s" * 30,
    )
    with celery_worker(env, tmp_path / "w.log") as worker:
        assert wait_until(
            lambda: any(d["attempts"] >= 2 and d["status"] == "failed" for d in deliveries(db_url)),
            90,
        ), worker.log()
        [row] = deliveries(db_url)
        refused = "refused" if channel == "webhook" else "connection error"
        assert row["status"] == "failed" and refused in str(row["last_error"]).lower()
        with WebhookReceiver(port=port) as hook:
            assert wait_until(lambda: [d["status"] for d in deliveries(db_url)] == ["sent"], 90)
            assert len(hook.requests) == 1 and ids(hook) == {row["id"]}


@CHANNELS
def test_worker_killed_mid_delivery_redelivers_with_same_id(
    tmp_path: Path, engine, db_url: str, redis_url: str, feeds: FeedServer, channel: str
) -> None:
    with WebhookReceiver() as hook:
        hook.script(Reply(hang=True))  # the first attempt never gets an answer
        env = hook_stack_env(
            tmp_path,
            feeds.url("wire"),
            hook.url,
            db_url,
            redis_url,
            channel,
            WATCHFLOOR_DELIVERY_LEASE="4",
            WATCHFLOOR_REQUEUE_AFTER="2",
            WATCHFLOOR_VISIBILITY_TIMEOUT="5",
        )
        first = celery_worker(env, tmp_path / "w1.log")
        try:
            assert wait_until(lambda: len(hook.requests) == 1, 90), first.log()
        finally:
            first.kill()  # SIGKILL to the whole process group, mid-request
            first.stop()
        assert [d["status"] for d in deliveries(db_url)] == ["sending"]
        with celery_worker(env, tmp_path / "w2.log") as second:
            assert wait_until(lambda: [d["status"] for d in deliveries(db_url)] == ["sent"], 90), (
                second.log()
            )
        assert len(hook.requests) >= 2
        assert ids(hook) == {deliveries(db_url)[0]["id"]}


DISTINCT = [  # four more stories: each its own alert, none a copy of another
    (
        "Pyongyang tests solid-fuel ballistic missile from a submarine off Sinpo",
        "South Korea's Joint Chiefs said the launch from waters near the Sinpo shipyard flew "
        "about 600 km before splashing down; analysts said it was the third SLBM test this year.",
    ),
    (
        "UN panel: North Korea ballistic missile debris found in Kharkiv",
        "Investigators who examined wreckage recovered after a strike on the Ukrainian city "
        "said components matched the Hwasong-11 family, pointing to transfers to Russia.",
    ),
    (
        "Japan protests North Korea ballistic missile landing inside its economic zone",
        "Tokyo lodged a protest through diplomatic channels in Beijing after the coast guard "
        "warned vessels off Hokkaido; no damage to ships or aircraft was reported.",
    ),
    (
        "US Treasury sanctions shipping firms over North Korea ballistic missile programme",
        "The designations target three Hong Kong-registered companies and two tankers accused "
        "of ship-to-ship transfers of refined petroleum that fund weapons development.",
    ),
]


def _private_redis(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    assert wait_until(lambda: _ping(client), 20)
    return proc


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_redis_restart_without_persistence_loses_nothing(
    tmp_path: Path, engine, db_url: str, feeds: FeedServer
) -> None:
    port = free_port()
    feeds.publish("wire", *(FeedEntry(f"g{i}", *story) for i, story in enumerate(DISTINCT, 2)))
    broker = f"redis://127.0.0.1:{port}/0"
    server = _private_redis(tmp_path, port)
    try:
        with WebhookReceiver() as hook:
            env = hook_stack_env(
                tmp_path, feeds.url("wire"), hook.url, db_url, broker, WATCHFLOOR_REQUEUE_AFTER="2"
            )
            # a worker that only polls: the deliveries wait in Redis's "deliver" queue
            with celery_worker(env, tmp_path / "poll.log", "-Q", "poll") as poller:
                client = redis.Redis(port=port)
                assert wait_until(lambda: len(deliveries(db_url)) == 5, 90), poller.log()
                assert wait_until(lambda: client.llen("deliver") >= len(deliveries(db_url)), 30)
            queued = len(deliveries(db_url))
            server.kill()
            server.wait()
            server = _private_redis(tmp_path, port)  # empty: the queued messages are gone
            assert redis.Redis(port=port).llen("deliver") == 0
            with celery_worker(env, tmp_path / "all.log") as worker:
                assert wait_until(lambda: len(hook.requests) >= queued, 90), worker.log()
                assert wait_until(lambda: {d["status"] for d in deliveries(db_url)} == {"sent"}, 60)
            assert len(ids(hook)) == queued == 5
    finally:
        server.kill()
        server.wait()


def test_retry_longer_than_visibility_timeout_runs_once(
    tmp_path: Path, engine, db_url: str, redis_url: str, feeds: FeedServer
) -> None:
    with WebhookReceiver() as hook:
        hook.fail_times(1)
        env = hook_stack_env(
            tmp_path,
            feeds.url("wire"),
            hook.url,
            db_url,
            redis_url,
            WATCHFLOOR_RETRY_SCHEDULE="8s",
            WATCHFLOOR_VISIBILITY_TIMEOUT="2",
        )
        with celery_worker(env, tmp_path / "w.log") as worker:
            assert wait_until(lambda: [d["status"] for d in deliveries(db_url)] == ["sent"], 90), (
                worker.log()
            )
            polls = len(feeds.statuses("wire"))
            assert wait_until(lambda: len(feeds.statuses("wire")) >= polls + 6, 60)
        assert len(hook.requests) == 2
        assert deliveries(db_url)[0]["attempts"] == 2


def test_410_disables_channel_and_4xx_is_dead_and_retry_keeps_id(
    tmp_path: Path, engine, db_url: str, redis_url: str, feeds: FeedServer
) -> None:
    with WebhookReceiver() as hook:
        hook.script(Reply(400, body=b"bad payload"))
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        with celery_worker(env, tmp_path / "w.log") as worker:
            assert wait_until(lambda: [d["status"] for d in deliveries(db_url)] == ["dead"], 90), (
                worker.log()
            )
            [dead] = deliveries(db_url)
            assert dead["attempts"] == 1 and "400" in str(dead["last_error"])
            retry = subprocess.run(
                [sys.executable, "-m", "worker", "deliveries", "retry", str(dead["id"])],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert retry.returncode == 0, retry.stderr
            assert wait_until(lambda: [d["status"] for d in deliveries(db_url)] == ["sent"], 60)
            assert [r.headers["webhook-id"] for r in hook.requests] == [dead["id"]] * 2

            hook.default = Reply(410)
            feeds.publish("wire", FeedEntry("g2", *DISTINCT[1]))
            assert wait_until(
                lambda: (channel_state(db_url, "hook") or {}).get("disabled_reason"), 60
            )
            assert "410" in str(channel_state(db_url, "hook")["disabled_reason"])
            feeds.publish("wire", FeedEntry("g3", *DISTINCT[2]))
            assert wait_until(
                lambda: [d["status"] for d in deliveries(db_url)] == ["sent", "dead", "dead"], 60
            )
        assert len(hook.requests) == 3  # nothing more was sent to the gone channel
        assert "channel disabled" in str(deliveries(db_url)[2]["last_error"])
        listed = subprocess.run(
            [sys.executable, "-m", "worker", "deliveries", "--status", "dead", "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert len([json.loads(line) for line in listed.stdout.splitlines()]) == 2


def test_3xx_is_not_followed(
    tmp_path: Path, engine, db_url: str, redis_url: str, feeds: FeedServer
) -> None:
    with WebhookReceiver() as target, WebhookReceiver() as hook:
        hook.default = Reply(302, headers={"Location": target.url})
        env = hook_stack_env(
            tmp_path,
            feeds.url("wire"),
            hook.url,
            db_url,
            redis_url,
            WATCHFLOOR_RETRY_SCHEDULE="1s,1s",
        )
        with celery_worker(env, tmp_path / "w.log") as worker:
            assert wait_until(lambda: [d["status"] for d in deliveries(db_url)] == ["dead"], 90), (
                worker.log()
            )
        assert len(hook.requests) == 3 and target.requests == []
        assert "302" in str(deliveries(db_url)[0]["last_error"])


@pytest.mark.parametrize("workers", [2])
def test_two_workers_polling_one_feed_at_once_alert_once(
    tmp_path: Path, engine, db_url: str, redis_url: str, feeds: FeedServer, workers: int
) -> None:
    from celery import Celery

    with WebhookReceiver() as hook:
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        procs = [
            celery_worker(env, tmp_path / f"w{i}.log", "-n", f"w{i}@%h", beat=False)
            for i in range(workers)
        ]
        try:
            app = Celery(broker=redis_url)
            assert wait_until(lambda: all(" ready." in p.log() for p in procs), 60)
            for _ in range(8):  # eight polls of one feed at once, over four pool processes
                app.send_task(
                    "watchfloor.poll_feed", args=["wire"], queue="poll", routing_key="poll"
                )
            assert wait_until(lambda: len(feeds.statuses("wire")) >= 8, 60)
            assert wait_until(lambda: len(hook.requests) >= 1, 60)
            assert wait_until(lambda: {d["status"] for d in deliveries(db_url)} == {"sent"}, 60)
        finally:
            for proc in procs:
                proc.stop()
        assert len(deliveries(db_url)) == 1 and len(hook.requests) == 1


def test_an_ops_alert_is_an_outbox_row_retried_with_one_id_and_sent_once(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    """A feed failing past its threshold, two workers polling it, an ops webhook that
    answers 500 three times: the ops alert arrives once, every attempt with the same id."""
    import yaml

    with FeedServer() as dead_feed, WebhookReceiver() as hook, WebhookReceiver() as ops:
        ops.fail_times(3)
        env = hook_stack_env(
            tmp_path,
            dead_feed.url("wire"),  # nothing published: every poll is a 404
            hook.url,
            db_url,
            redis_url,
            WATCHFLOOR_RETRY_SCHEDULE="1s,1s,1s,30s",
            WATCHFLOOR_FEED_FAILING_AFTER_MINUTES="0.05",  # 3 s
        )
        channels = Path(env["WATCHFLOOR_CONFIG_DIR"]) / "channels.yaml"
        config = yaml.safe_load(channels.read_text())
        config["channels"].append(
            {"id": "ops", "type": "webhook", "url": ops.url, "secret": SECRET}
        )
        channels.write_text(yaml.safe_dump({**config, "ops_channel": "ops"}))
        procs = [
            celery_worker(env, tmp_path / f"w{i}.log", "-n", f"w{i}@%h", beat=i == 0)
            for i in range(2)
        ]
        try:
            assert wait_until(lambda: len(ops.requests) == 4, 120), procs[0].log()
            polls = len(dead_feed.statuses("wire"))
            assert wait_until(lambda: len(dead_feed.statuses("wire")) >= polls + 2, 60)
        finally:
            for proc in procs:
                proc.stop()
        assert len(ids(ops)) == 1, "one ops alert, one id on every attempt"
        assert len(ops.requests) == 4 and hook.requests == []
        data = json.loads(ops.requests[-1].body)["data"]
        assert data["watchlist"]["id"] == "watchfloor-ops"
        assert data["item"]["title"].startswith("feed wire is failing")
        [row] = [d for d in deliveries(db_url) if d["id"] in ids(ops)]
        assert (row["status"], row["attempts"]) == ("sent", 4)
        for request in ops.requests:  # signed like any alert
            Webhook(SECRET).verify(request.body, request.headers)
