"""Hostile or unusual documents inside a poll batch, on real loopback servers: one feed's
failure is that feed's recorded error, and a burst past the item cap is read, not lost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import feeds.parse
from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.site import Site
from worker import pipeline
from worker.models import Feed, Item
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings

OVERFLOWING_DATE = "Mon, 01 Jan 2020 00:00:00 +99999999999999999999"


def json_feed(title: str, date: str) -> str:
    item = {"id": "x1", "title": title, "date_published": date}
    version = "https://jsonfeed.org/version/1.1"
    return json.dumps({"version": version, "title": "J", "items": [item]})


@contextmanager
def runtime_for(tmp_path: Path, db_url: str, feeds: list[dict[str, str]]) -> Iterator[Runtime]:
    """A worker's runtime on these feeds (loopback URLs allowed)."""
    settings = replace(
        load_settings(),
        config_dir=write_config(tmp_path / "config", feeds=feeds),
        database_url=db_url,
        allow_private_urls=True,
    )
    rt = build_runtime(settings)
    try:
        yield rt
    finally:
        rt.engine.dispose()


@pytest.fixture
def two_feeds(tmp_path: Path, engine: sa.Engine, db_url: str) -> Iterator[tuple[Runtime, Site]]:
    """A good RSS feed and a JSON Feed on another server, polled in one batch."""
    with FeedServer() as server, Site() as site:
        server.publish("good", FeedEntry("g1", "Quiet day"))
        feeds = [
            {"id": "good", "url": server.url("good"), "interval": "1m"},
            {"id": "odd", "url": site.url("/odd.json"), "interval": "1m"},
        ]
        with runtime_for(tmp_path, db_url, feeds) as rt:
            yield rt, site


def stored(rt: Runtime) -> dict[str, str | None]:
    with rt.sessions() as session:
        rows = session.execute(sa.select(Item.title, Item.published_at)).all()
    return {title: published and published.isoformat() for title, published in rows}


def test_a_date_that_overflows_is_no_date_and_the_batch_goes_on(
    two_feeds: tuple[Runtime, Site],
) -> None:
    rt, site = two_feeds
    site.put("/odd.json", json_feed("Harbour closed", OVERFLOWING_DATE))
    outcomes = pipeline.poll_feeds(rt, ["good", "odd"])
    assert {o.feed_id: o.status for o in outcomes} == {"good": "ok", "odd": "ok"}
    assert stored(rt) == {"Quiet day": stored(rt)["Quiet day"], "Harbour closed": None}


def test_an_unexpected_failure_reading_one_feed_is_its_error_alone(
    two_feeds: tuple[Runtime, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a document makes a library raise is recorded on its feed; the batch's other
    feeds are written (a failure once raised out of the batch and lost all of it)."""
    rt, site = two_feeds
    site.put("/odd.json", json_feed("Harbour closed", "2026-03-01T00:00:00Z"))

    def broken(*_: object) -> None:
        raise RuntimeError("a library's bug")

    monkeypatch.setattr(feeds.parse, "_json_entry", broken)
    outcomes = pipeline.poll_feeds(rt, ["good", "odd"])
    assert {o.feed_id: o.status for o in outcomes} == {"good": "ok", "odd": "error"}
    assert list(stored(rt)) == ["Quiet day"]
    with rt.sessions() as session:
        odd = session.get(Feed, "odd")
        assert odd is not None and odd.error_count == 1
        assert odd.last_error == "ParseError: unreadable: RuntimeError: a library's bug"


def test_a_burst_past_the_item_cap_is_read_by_the_next_polls(
    tmp_path: Path, engine: sa.Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cap of 3 (1,000 in production): a burst of 4 new items reads the newest 3 and the
    fourth on the next poll, though nothing new was published meanwhile. On a first poll
    the items past the cap are the backlog: seen, never read."""
    monkeypatch.setattr(feeds.parse, "MAX_ITEMS", 3)
    now = datetime.now(UTC)
    days = [now - timedelta(days=n) for n in range(5)]
    backlog = [FeedEntry(f"b{n}", f"Backlog {n}", published=days[n]) for n in (1, 2, 3, 4)]
    with FeedServer() as server:
        wire = {"id": "wire", "url": server.url("wire"), "interval": "1m"}
        with runtime_for(tmp_path, db_url, [wire]) as rt:
            server.publish("wire", *backlog)
            assert pipeline.poll_feed(rt, "wire").status == "ok"
            assert set(stored(rt)) == {"Backlog 1", "Backlog 2", "Backlog 3"}
            minutes = [now - timedelta(minutes=9 - n) for n in range(5)]
            burst = [
                FeedEntry("g1", "Harbour closed", published=now - timedelta(hours=2)),
                *(FeedEntry(f"g{n}", f"Item {n}", published=minutes[n]) for n in (2, 3, 4)),
            ]
            server.publish("wire", *burst, *backlog)
            second = pipeline.poll_feed(rt, "wire")
            assert sorted(i.title for _, i in second.new_items) == ["Item 2", "Item 3", "Item 4"]
            third = pipeline.poll_feed(rt, "wire")  # the same document
            assert [i.title for _, i in third.new_items] == ["Harbour closed"]
            fourth = pipeline.poll_feed(rt, "wire")
            assert fourth.status == "not-modified" and fourth.new_items == []
            assert "Backlog 4" not in stored(rt)  # the first poll's backlog stays unread


def test_feeds_a_batch_had_no_time_to_read_are_handed_back_and_say_so(
    two_feeds: tuple[Runtime, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch reads until its budget is spent and hands the rest back for the next claim;
    each of those says why it was not polled (they were once told "not in config")."""
    from worker import pipeline as pipeline_module
    from worker import poll_read

    rt, site = two_feeds
    site.put("/odd.json", json_feed("Harbour closed", "2026-03-01T00:00:00Z"))
    real = poll_read.read_one

    def slow_first(rt_: Runtime, source: object, *args: object) -> object:
        if getattr(source, "id", "") == "good":
            time.sleep(0.5)  # past the budget below, so the next feed is not read
        return real(rt_, source, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline_module, "READ_BUDGET", 0.2)
    monkeypatch.setattr(poll_read, "read_one", slow_first)
    outcomes = pipeline.poll_feeds(rt, ["good", "odd"])
    assert [(o.feed_id, o.status, o.error) for o in outcomes] == [
        ("good", "ok", None),
        ("odd", "skipped", "out of time"),
    ]
    assert list(stored(rt)) == ["Quiet day"]
    with rt.sessions() as session:
        odd = session.get(Feed, "odd")
        assert odd is not None and odd.last_polled_at is None  # handed back, due again


@pytest.mark.parametrize("alike", [False, True], ids=["distinct", "identical"])
def test_a_feed_past_the_cap_settles_to_not_modified(
    alike: bool, tmp_path: Path, engine: sa.Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap the validators are dropped until the capped items are read. A document
    of cap + 1 identical items (one text, one digest) once never got there: its read item's
    twin was cut at every poll, and every poll fetched and parsed the whole body again."""
    monkeypatch.setattr(feeds.parse, "MAX_ITEMS", 3)
    now = datetime.now(UTC)
    with FeedServer() as server:
        wire = {"id": "wire", "url": server.url("wire"), "interval": "1m"}
        with runtime_for(tmp_path, db_url, [wire]) as rt:
            server.publish("wire", FeedEntry("q", "Quiet day", published=now - timedelta(days=1)))
            assert pipeline.poll_feed(rt, "wire").status == "ok"  # the first poll
            guids = ["d"] * 4 if alike else [f"d{n}" for n in range(4)]
            server.publish("wire", *(FeedEntry(g, "Harbour closed", published=now) for g in guids))
            statuses = [pipeline.poll_feed(rt, "wire").status for _ in range(4)]
            assert statuses[-1] == "not-modified", statuses
