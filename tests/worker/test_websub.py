"""WebSub end to end against a third-party hub: flask-websub's (from PyPI) on loopback, the
console (`watchfloor web`) as the callback, the real poll path, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
import sqlalchemy as sa

from feeds.websub import sign
from tests.helpers.configdir import write_config
from tests.helpers.processes import Service, free_port, service_env, wait_until, watchfloor
from tests.helpers.site import Site
from tests.helpers.websub_hub import HubProcesses, start_hub
from tests.worker.test_page_sources import WATCHLISTS
from worker import pipeline, read
from worker.models import Feed, Item, MatchRow, PushState, utcnow
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings
from worker.store import push as push_store
from worker.websub.plan import Action
from worker.websub.subscriptions import maintain

FEED_ID = "wire"
HUB_BROKER = os.environ.get("WATCHFLOOR_TEST_REDIS", "redis://127.0.0.1:6379") + "/15"


def rss(items: list[tuple[str, str]], hub: str, self_url: str) -> str:
    """An RSS 2.0 feed that names its hub the way WordPress and Blogger do (atom:link)."""
    now = format_datetime(datetime.now(UTC))
    body = "".join(
        f"<item><guid>{guid}</guid><title>{escape(title)}</title>"
        f"<link>https://wire.example/{guid}</link><pubDate>{now}</pubDate></item>"
        for guid, title in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?>"
        "<rss version='2.0' xmlns:atom='http://www.w3.org/2005/Atom'><channel><title>Wire</title>"
        f"<atom:link rel='hub' href='{hub}'/><atom:link rel='self' href='{self_url}'/>"
        f"{body}</channel></rss>"
    )


@dataclass
class Push:
    rt: Runtime
    site: Site
    hub_url: str
    hub: HubProcesses
    hub_storage: Path
    console: Service
    console_url: str
    env: dict[str, str]
    tmp: Path

    @property
    def topic(self) -> str:
        return self.site.url("/feed.xml")

    def put_feed(self, items: list[tuple[str, str]]) -> None:
        # flask-websub reads the hub and self links from the Link header when it publishes
        link = f'<{self.hub_url}>; rel="hub", <{self.topic}>; rel="self"'
        body = rss(items, self.hub_url, self.topic)
        self.site.put(
            "/feed.xml", body, content_type="application/rss+xml", headers=(("Link", link),)
        )

    def publish(self) -> httpx.Response:
        """What a publisher does: ping the hub, which fetches the topic and pushes it."""
        form = {"hub.mode": "publish", "hub.topic": self.topic}
        return httpx.post(self.hub_url, data=form, timeout=60)

    def subscription(self):  # type: ignore[no-untyped-def]
        with self.rt.sessions() as session:
            return push_store.of_feed(session, FEED_ID)

    def hub_rows(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.hub_storage) as db:
            return list(db.execute("select topic_url, callback_url from hub"))

    def matches(self) -> int:
        with self.rt.sessions() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(MatchRow)) or 0

    def feeds_cli(self) -> str:
        import subprocess

        done = subprocess.run(
            [sys.executable, "-m", "worker", "feeds"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def push(tmp_path: Path, engine: sa.Engine, db_url: str) -> Iterator[Push]:
    with Site() as site:
        hub = start_hub(tmp_path, service_env(tmp_path, tmp_path, "", None), HUB_BROKER)
        hub_url, storage = hub.url, hub.storage
        feed = {"id": FEED_ID, "url": site.url("/feed.xml"), "interval": "10m"}
        config_dir = write_config(tmp_path / "config", feeds=[feed], watchlists=WATCHLISTS)
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        env = service_env(tmp_path, config_dir, db_url, None, WATCHFLOOR_PUBLIC_URL=public)
        console = watchfloor(env, tmp_path / "web.log", "web", "--bind", f"127.0.0.1:{port}")

        def healthy() -> bool:
            try:
                return httpx.get(f"{public}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(lambda: not console.alive() or healthy()), console.log()
        rt = build_runtime(load_settings(env))
        p = Push(rt, site, hub_url, hub, storage, console, public, env, tmp_path)
        p.put_feed([("old-1", "Weekly briefing")])
        try:
            yield p
        finally:
            p.rt.engine.dispose()


def subscribe(p: Push) -> None:
    first = pipeline.poll_feed(p.rt, FEED_ID)
    assert first.status == "ok"
    with p.rt.sessions() as session:
        feed = session.get(Feed, FEED_ID)
        assert feed is not None and (feed.hub_url, feed.topic_url) == (p.hub_url, p.topic)
    steps = maintain(p.rt, utcnow())
    assert [(s.action, s.error) for s in steps] == [(Action.SUBSCRIBE, None)]
    # the hub took the request (202) and verifies our intent from its worker, afterwards;
    # it stores the subscription once we have answered, so wait for that too
    assert wait_until(lambda: p.subscription().state == PushState.LIVE), p.hub.log()
    assert wait_until(lambda: len(p.hub_rows()) == 1), p.hub.log()


def test_subscribe_verify_and_a_push_alerts_once(push: Push) -> None:
    subscribe(push)
    [(topic, callback)] = push.hub_rows()
    sub = push.subscription()
    assert topic == push.topic and callback == f"{push.console_url}/websub/{sub.callback_token}"
    assert sub.lease_seconds == 7 * 86400  # what we asked, within the hub's bounds
    # while the hub pushes, polling is a slow safety net
    pipeline.poll_feed(push.rt, FEED_ID)
    with push.rt.sessions() as session:
        assert read.feeds(session)[FEED_ID].poll_interval_s == 3600
    assert f"{FEED_ID}" in (line := push.feeds_cli().splitlines()[1]) and " live " in line

    push.put_feed(
        [
            ("launch-1", "North Korea fires ICBM from Pyongyang, Seoul says"),
            ("old-1", "Weekly briefing"),
        ]
    )
    answer = push.publish()
    assert answer.status_code == 202, answer.text
    assert wait_until(lambda: push.matches() == 1), push.console.log()
    with push.rt.sessions() as session:
        titles = session.scalars(sa.select(Item.title).where(Item.feed_id == FEED_ID)).all()
    assert "North Korea fires ICBM from Pyongyang, Seoul says" in titles
    assert push.subscription().pushes == 1
    push.publish()  # the same content again: no second alert
    assert wait_until(lambda: push.subscription().pushes == 2)
    assert push.matches() == 1
    assert "websub push taken in" in push.console.log()


def test_a_push_with_a_bad_signature_is_dropped_and_logged(push: Push) -> None:
    subscribe(push)
    sub = push.subscription()
    body = rss([("forged", "North Korea fires ICBM from Pyongyang")], push.hub_url, push.topic)
    url = f"{push.console_url}/websub/{sub.callback_token}"
    headers = {"Content-Type": "application/rss+xml"}
    cases = {
        "bad": {"X-Hub-Signature": sign("not-the-secret", body.encode())},
        "none": {},
        "sha1": {"X-Hub-Signature": "sha1=" + "0" * 40},
    }
    for case in cases.values():
        answer = httpx.post(url, content=body, headers={**headers, **case}, timeout=30)
        assert answer.status_code == 202  # acknowledged, so a hub does not retry; ignored
    unknown = httpx.post(f"{push.console_url}/websub/nope", content=body, timeout=30)
    assert unknown.status_code == 410  # Gone: a hub stops pushing to it
    assert push.matches() == 0
    sub = push.subscription()
    assert sub.refused_pushes == 3 and sub.pushes == 0
    log = push.console.log()
    assert "websub push refused" in log and "bad signature" in log
    with push.rt.sessions() as session:
        assert not session.scalars(sa.select(Item).where(Item.guid == "forged")).all()
    # the right secret is taken in: the check is the signature, not the sender
    good = {"X-Hub-Signature": sign(sub.secret, body.encode())}
    assert httpx.post(url, content=body, headers={**headers, **good}, timeout=30).status_code == 202
    assert push.matches() == 1


def test_the_lease_is_renewed_before_it_ends(push: Push) -> None:
    subscribe(push)
    before = push.subscription()
    assert maintain(push.rt, utcnow() + timedelta(days=1)) == []  # not yet
    later = utcnow() + timedelta(days=6)  # past 80% of the 7-day lease
    [step] = maintain(push.rt, later)
    assert (step.action, step.error) == (Action.SUBSCRIBE, None)
    # the hub verifies the renewal from its worker (the console's clock sets the new lease)
    assert wait_until(lambda: push.console.log().count("websub subscription live") == 2)
    after = push.subscription()
    assert after.state == PushState.LIVE and after.callback_token == before.callback_token
    assert after.expires_at > before.expires_at
    assert len(push.hub_rows()) == 1  # the hub holds one subscription, renewed


def test_polling_takes_over_when_the_hub_goes_away(push: Push) -> None:
    subscribe(push)
    push.hub.stop()
    later = utcnow() + timedelta(days=6)
    [step] = maintain(push.rt, later)
    assert step.action == Action.SUBSCRIBE and "cannot reach the hub" in (step.error or "")
    sub = push.subscription()
    assert sub.state == PushState.FAILED and sub.error_count == 1
    with push.rt.sessions() as session:
        feed = session.get(Feed, FEED_ID)
        assert feed is not None and feed.next_poll_at <= later  # poll at once, not in an hour
    pipeline.poll_feed(push.rt, FEED_ID)
    with push.rt.sessions() as session:
        row = read.feeds(session)[FEED_ID]
    assert row.push == "failed" and row.poll_interval_s == 600  # the feed's own interval
    assert "cannot reach the hub" in push.feeds_cli()
    # a lease that runs out unrenewed falls back too
    assert maintain(push.rt, later) == []  # the retry waits its backoff


def test_a_lapsed_lease_falls_back_to_polling(push: Push) -> None:
    subscribe(push)
    with push.rt.sessions.begin() as session:
        session.execute(sa.update(Feed).values(next_poll_at=utcnow() + timedelta(hours=1)))
    sub = push.subscription()
    [step] = maintain(push.rt, sub.expires_at + timedelta(seconds=1))
    assert step.action == Action.LAPSE
    assert push.subscription().state == PushState.FAILED


def test_a_feed_that_leaves_the_config_is_unsubscribed(push: Push) -> None:
    subscribe(push)
    assert len(push.hub_rows()) == 1
    other = {"id": "other", "url": push.site.url("/other.xml")}
    write_config(push.tmp / "config", feeds=[other], watchlists=WATCHLISTS)
    push.rt.engine.dispose()
    push.rt = build_runtime(replace(push.rt.settings))  # a worker that reads the new config
    [step] = maintain(push.rt, utcnow())
    assert (step.action, step.error) == (Action.UNSUBSCRIBE, None)
    assert wait_until(lambda: push.subscription() is None)  # the hub verified; the row is gone
    assert wait_until(lambda: push.hub_rows() == [])


def test_a_pushed_body_has_the_fetch_paths_limits(push: Push) -> None:
    import gzip

    subscribe(push)
    sub = push.subscription()
    url = f"{push.console_url}/websub/{sub.callback_token}"
    huge = b"<rss>" + b" " * (11 * 1024 * 1024)
    answer = httpx.post(url, content=huge, headers={"X-Hub-Signature": sign(sub.secret, huge)})
    assert answer.status_code == 413  # over the fetch path's 10 MB cap: never read whole
    bomb = gzip.compress(b"<rss>" + b" " * (200 * 1024 * 1024))
    headers = {"X-Hub-Signature": sign(sub.secret, bomb), "Content-Encoding": "gzip"}
    assert httpx.post(url, content=bomb, headers=headers, timeout=60).status_code == 202
    assert "body larger than" in (push.subscription().last_error or "")
    assert push.console.alive() and httpx.get(f"{push.console_url}/healthz").status_code == 200
