"""Page sources end to end on real parts: a loopback site, the real fetcher, parser and
follower, the real poll path on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers.configdir import write_config
from tests.helpers.http import WebhookReceiver
from tests.helpers.site import Site
from tests.worker.guarantees import send_ops_alerts_to
from worker import pipeline, read
from worker.models import Feed, Item, MatchRow, OpsEvent
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings

DELAY = 0.3  # seconds between two article fetches of one host
WATCHLISTS = {
    "watchlists": [
        {
            "id": "missile-tests",
            "title": "Missile tests",
            "query": 'ICBM AND (Pyongyang OR "North Korea")',
            "severity": "high",
            "channels": ["console"],
        }
    ]
}
ROBOTS = "User-agent: *\nDisallow: /private/\n"


def list_page(rows: list[tuple[str, str, str]]) -> str:
    """The ministry's board: one <li> per release, newest first."""
    items = "".join(
        f'<li><a href="{href}">{title}</a><span class="date">{date}</span></li>'
        for href, title, date in rows
    )
    return (
        "<html><head><title>Press releases</title></head><body><nav><a href='/'>Home</a></nav>"
        f'<ul class="board-list">{items}</ul><footer>Ministry</footer></body></html>'
    )


def article(title: str, text: str) -> str:
    filler = " ".join(["The ministry said it would keep a close watch on the situation."] * 4)
    return (
        f"<html><head><title>{title}</title></head><body><nav>Home | News | Contact</nav>"
        f"<article><h1>{title}</h1><p>{text}</p><p>{filler}</p></article>"
        "<footer>Copyright the ministry. All rights reserved.</footer></body></html>"
    )


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as s:
        s.put("/robots.txt", ROBOTS, content_type="text/plain")
        yield s


@pytest.fixture
def rt(tmp_path: Path, engine: sa.Engine, db_url: str, site: Site) -> Iterator[Runtime]:
    feed = {
        "id": "mou-press",
        "type": "page",
        "url": site.url("/releases"),
        "interval": "10m",
        "select": {"item": "ul.board-list > li", "link": "a@href", "title": "a", "date": ".date"},
        "follow": True,
        "follow_delay": f"{int(DELAY * 1000)}ms",
        "headers": {"User-Agent": "WatchfloorTest/1.0"},
    }
    with page_runtime(tmp_path, db_url, feed) as runtime:
        yield runtime


@contextmanager
def page_runtime(tmp_path: Path, db_url: str, feed: dict[str, Any]) -> Iterator[Runtime]:
    """A runtime on ``db_url`` whose config holds the one page source ``feed``."""
    config_dir = write_config(tmp_path / "config", feeds=[feed], watchlists=WATCHLISTS)
    settings = replace(
        load_settings(), config_dir=config_dir, database_url=db_url, allow_private_urls=True
    )
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.engine.dispose()


def today(ahead: timedelta = timedelta()) -> str:
    """The date of the poll's clock: a poll ``ahead`` of now in the last hour of a UTC day
    would find a row dated by the wall clock more than a day old."""
    return (datetime.now(UTC) + ahead).strftime("%Y.%m.%d")


POLL_AHEAD = timedelta(hours=1)  # the hostile-page polls run an hour ahead of the wall clock


def test_a_new_row_alerts_once_on_its_articles_text(rt: Runtime, site: Site) -> None:
    old = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y년 %m월 %d일")
    rows = [("/news/1", "Minister meets envoy", old), ("/news/2", "Weekly briefing", old)]
    site.put("/releases", list_page(rows))
    first = pipeline.poll_feed(rt, "mou-press")
    assert first.status == "ok" and len(first.new_items) == 2 and first.matches == []
    assert site.requests("/news/") == []  # a first poll follows only items that may alert
    text = article("Press release 3", "North Korea fired an ICBM from Pyongyang.")
    site.put("/news/3?ref=board", text)  # the link's fragment is not part of the request
    rows.insert(0, ("/news/3?ref=board#top", "Press release 3", today()))
    site.put("/releases", list_page(rows))
    second = pipeline.poll_feed(rt, "mou-press")
    assert [item.title for _, item in second.new_items] == ["Press release 3"]
    [(_, match)] = second.matches
    assert match.watchlist_id == "missile-tests"
    assert {hit.field for hit in match.hits} == {"summary"}  # the title says nothing
    third = pipeline.poll_feed(rt, "mou-press")
    assert third.new_items == [] and third.matches == []
    assert [path for path, _ in site.requests("/news/")] == ["/news/3?ref=board"]
    with rt.sessions() as s:
        stored = s.scalars(sa.select(Item.canonical_url).order_by(Item.id)).all()
        assert s.scalar(sa.select(sa.func.count()).select_from(MatchRow)) == 1
    assert stored[-1] == site.url("/news/3?ref=board")  # the canonical link is its identity


def test_follow_fetches_are_polite_and_robots_txt_is_obeyed(rt: Runtime, site: Site) -> None:
    site.put("/releases", list_page([("/news/0", "Older", "2026.01.02")]))
    pipeline.poll_feed(rt, "mou-press")
    rows = [
        ("/news/4", "Release 4", today()),
        ("/private/5", "Release 5", today()),
        ("/news/6", "Release 6", today()),
        ("/news/7", "Release 7", today()),
    ]
    for href, title, _ in rows:
        site.put(href, article(title, "North Korea fired an ICBM from Pyongyang."))
    site.put("/releases", list_page(rows))
    outcome = pipeline.poll_feed(rt, "mou-press")
    assert len(outcome.new_items) == 4  # the disallowed one too, with the list's text only
    fetched = site.requests("/news/")
    assert [p for p, _ in fetched] == ["/news/4", "/news/6", "/news/7"]
    assert site.requests("/private/") == []
    gaps = [b - a for (_, a), (_, b) in pairwise(fetched)]
    assert all(gap >= DELAY * 0.95 for gap in gaps), gaps
    assert len(site.requests("/robots.txt")) == 1  # read once per poll
    assert len(outcome.matches) == 1  # one story: the same text four times


def test_an_article_that_asks_to_wait_is_followed_next_poll(rt: Runtime, site: Site) -> None:
    site.put("/releases", list_page([("/news/0", "Older", "2026.01.02")]))
    pipeline.poll_feed(rt, "mou-press")
    site.put("/news/8", b"busy", status=503, headers=(("Retry-After", "120"),))
    site.put("/releases", list_page([("/news/8", "Release 8", today())]))
    waiting = pipeline.poll_feed(rt, "mou-press")
    assert waiting.new_items == [] and waiting.status == "ok"
    site.put("/news/8", article("Release 8", "North Korea fired an ICBM from Pyongyang."))
    done = pipeline.poll_feed(rt, "mou-press")  # same list: no 304, no unchanged body
    assert [item.title for _, item in done.new_items] == ["Release 8"]
    assert len(done.matches) == 1


def test_a_redesigned_page_is_a_selector_error_and_raises_the_ops_alert(
    rt: Runtime, site: Site
) -> None:
    site.put("/releases", list_page([("/news/1", "Minister meets envoy", "2026.01.02")]))
    assert pipeline.poll_feed(rt, "mou-press").status == "ok"
    site.put("/releases", "<html><body><div class='cards'><a href='/n/1'>x</a></div></body></html>")
    with WebhookReceiver() as ops:
        send_ops_alerts_to(rt.settings.config_dir, ops.url)
        rt.settings = replace(rt.settings, feed_failing_after=timedelta(minutes=30))
        start = datetime.now(UTC)
        alerts = []
        for minutes in (0, 20, 40):
            outcome = pipeline.poll_feed(rt, "mou-press", now=start + timedelta(minutes=minutes))
            assert outcome.status == "error"
            assert outcome.error.startswith("SelectorError: item selector matched nothing")
            alerts += outcome.delivery_ids
        assert len(alerts) == 1
    with rt.sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(OpsEvent)) == 1
        feed = s.get(Feed, "mou-press")
        assert feed.error_count == 3 and feed.last_error.startswith("SelectorError")
        [row] = read.feed_health(rt.config.current().feeds, read.feeds(s))
    assert row["status"] == "error" and row["last_error"].startswith("SelectorError")
    json.dumps(row)  # what `watchfloor feeds --json` prints


def test_parse_feed_shows_what_the_selectors_and_the_articles_give(
    rt: Runtime, site: Site, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    rows = [("/news/9", "Release 9", today()), ("/gone", "Release 10", today())]
    site.put("/news/9", article("Release 9", "North Korea fired an ICBM from Pyongyang."))
    site.put("/releases", list_page(rows))
    env = {
        **os.environ,
        "WATCHFLOOR_CONFIG_DIR": str(rt.settings.config_dir),
        "WATCHFLOOR_VAR_DIR": str(tmp_path / "var"),
        "WATCHFLOOR_ALLOW_PRIVATE_URLS": "1",
    }
    argv = [sys.executable, "-m", "worker", "parse", "--feed", "mou-press"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["title"], r["url"]) for r in lines] == [
        ("Release 9", site.url("/news/9")),
        ("Release 10", site.url("/gone")),
    ]
    assert "ICBM" in lines[0]["text"] and lines[0]["error"] is None
    assert lines[1]["text"] == "" and "404" in lines[1]["error"]
    unknown = subprocess.run(
        [*argv[:-1], "nope"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: no feed 'nope'")
    assert "Traceback" not in unknown.stderr


def test_a_json_api_source_alerts_like_a_feed(
    tmp_path: Path, engine: sa.Engine, db_url: str, site: Site
) -> None:
    feed = {
        "id": "mfa-api",
        "type": "json",
        "url": site.url("/api/releases"),
        "select": {"item": "data.items", "link": "link", "title": "title", "date": "published"},
    }
    config_dir = write_config(tmp_path / "api-config", feeds=[feed], watchlists=WATCHLISTS)
    settings = replace(
        load_settings(), config_dir=config_dir, database_url=db_url, allow_private_urls=True
    )
    rt = build_runtime(settings)
    now = datetime.now(UTC).isoformat()
    old = {"link": "/r/1", "title": "Briefing", "published": "2026-01-05"}
    site.put(
        "/api/releases", json.dumps({"data": {"items": [old]}}), content_type="application/json"
    )
    assert pipeline.poll_feed(rt, "mfa-api").status == "ok"
    new = {"link": "/r/2", "title": "North Korea ICBM launch near Pyongyang", "published": now}
    body = json.dumps({"data": {"items": [new, old]}})
    site.put("/api/releases", body, content_type="application/json")
    outcome = pipeline.poll_feed(rt, "mfa-api")
    assert [item.url for _, item in outcome.new_items] == [site.url("/r/2")]
    assert [m.watchlist_id for _, m in outcome.matches] == ["missile-tests"]
    site.put("/api/releases", json.dumps({"items": []}), content_type="application/json")
    broken = pipeline.poll_feed(rt, "mfa-api")
    assert broken.status == "error" and broken.error.startswith("SelectorError")
    rt.engine.dispose()


def test_hostile_pages_are_refused_or_capped_and_nothing_crashes(
    rt: Runtime, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With private addresses refused, as in production. The test site's 127.0.0.1 stands
    for a public host (the guard is told so, and only of that one address); every other
    loopback, private or link-local address and every non-http scheme stays refused, on
    the first hop, after a redirect and for a followed article alike."""
    import ipaddress

    from common import guard

    real = guard.blocked_reason
    site_ip = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(guard, "blocked_reason", lambda ip: None if ip == site_ip else real(ip))
    rt.settings = replace(rt.settings, allow_private_urls=False)
    with Site("127.0.0.2") as private:  # a service on the host that no feed may reach
        private.put("/x", list_page([("/news/1", "Private page", today(POLL_AHEAD))]))
        private.put("/news/1", article("Private", "North Korea fires ICBM from Pyongyang."))
        _hostile_pages(rt, site, private)
        assert private.requests() == []


def _hostile_pages(rt: Runtime, site: Site, private: Site) -> None:

    def poll() -> pipeline.PollOutcome:
        return pipeline.poll_feed(rt, "mou-press", now=datetime.now(UTC) + POLL_AHEAD)

    site.put("/releases", b"<html><body>" + b"<p>x</p>" * (50 * 1024 * 1024 // 8))  # 50 MB
    outcome = poll()
    assert outcome.status == "error" and "larger than the 10,485,760-byte cap" in outcome.error
    # a redirect to another loopback address (a private service on the host)
    site.put("/releases", "", status=302, headers=(("Location", private.url("/x")),))
    outcome = poll()
    assert outcome.status == "error" and "BlockedURLError" in outcome.error
    assert "loopback" in outcome.error
    for target in ("http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
        site.put("/releases", "", status=302, headers=(("Location", target),))
        outcome = poll()
        assert outcome.status == "error" and "BlockedURLError" in outcome.error
    deep = "<div>" * 200_000 + list_page([("/news/1", "Deep", today(POLL_AHEAD))])
    site.put("/releases", deep)
    assert poll().status in ("ok", "error")  # read or refused, in bounded time
    # follow links to private addresses and other schemes: refused, the items kept
    rows = [
        ("file:///etc/passwd", "File", today(POLL_AHEAD)),
        ("http://10.0.0.1/article", "Private", today(POLL_AHEAD)),
        (private.url("/news/1"), "Loopback", today(POLL_AHEAD)),
        ("/news/ok", "North Korea fires ICBM from Pyongyang", today(POLL_AHEAD)),
    ]
    site.put("/news/ok", article("Fine", "An ordinary article."))
    site.put("/releases", list_page(rows))
    outcome = poll()
    assert outcome.status == "ok", outcome.error
    titles = sorted(item.title for _, item in outcome.new_items)
    assert titles == sorted(["Private", "Loopback", "North Korea fires ICBM from Pyongyang"])
    assert [path for path, _ in site.requests("/news/")] == ["/news/ok"]
    assert len(outcome.matches) == 1
    with rt.sessions() as s:
        feed = s.get(Feed, "mou-press")
        assert feed is not None and feed.error_count == 0
