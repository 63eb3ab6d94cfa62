"""One alert per story: copies of one wire story in three feeds give one alert naming all three."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import WebhookReceiver
from tests.helpers.smtp import SMTPServer
from tests.worker.guarantees import SECRET, WATCHLIST
from worker import pipeline
from worker.models import Item, MatchRow
from worker.outbox.deliver import deliver as deliver_row
from worker.outbox.store import Kind
from worker.runtime import build_runtime
from worker.settings import load_settings

COPIES = {
    "yonhap": (
        "N. Korea fires ballistic missile into East Sea: JCS",
        "SEOUL, Nov. 28 (Yonhap) -- North Korea fired a ballistic missile into the East Sea on "
        "Saturday, South Korea's Joint Chiefs of Staff (JCS) said, in its first launch in two "
        "months. The missile was fired from the Pyongyang area at around 7:50 a.m.",
    ),
    "reuters": (
        "North Korea fires ballistic missile toward sea off its east coast, Seoul says",
        "SEOUL (Reuters) - North Korea fired a ballistic missile into the East Sea on Saturday, "
        "South Korea's Joint Chiefs of Staff said, its first launch in two months. The missile "
        "was fired from the Pyongyang area at around 7:50 a.m., the JCS said.",
    ),
    "nknews": (
        "North Korea launches ballistic missile in first test in two months",
        "North Korea fired a ballistic missile into the East Sea on Saturday morning, South "
        "Korea's Joint Chiefs of Staff said, in its first launch in two months. The missile was "
        "fired from the Pyongyang area at around 7:50 a.m.",
    ),
}


@contextmanager
def story_stack(
    tmp_path: Path,
    db_url: str,
    official: tuple[str, ...] = (),
    names: tuple[str, ...] = tuple(COPIES),
    watchlists: dict[str, Any] | None = None,
    **watchlist_extra: Any,
) -> Iterator[tuple]:
    """The feeds ``names`` (those in ``official`` tagged so), a webhook and an email
    channel; the guarantees' watch-list unless ``watchlists`` (a whole file) is given."""
    with FeedServer() as feeds, WebhookReceiver() as hook, SMTPServer() as smtp:
        watchlist = {**WATCHLIST, "channels": ["hook", "mail"], **watchlist_extra}
        config_dir = write_config(
            tmp_path / "config",
            feeds=[
                {
                    "id": name,
                    "url": feeds.url(name),
                    "tags": ["official"] if name in official else [],
                }
                for name in names
            ],
            watchlists=watchlists or {"watchlists": [watchlist]},
            channels=[
                {"id": "hook", "type": "webhook", "url": hook.url, "secret": SECRET},
                {
                    "id": "mail",
                    "type": "email",
                    "to": ["desk@example.org"],
                    "from": "wf@example.org",
                    "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
                },
            ],
        )
        settings = replace(
            load_settings(), config_dir=config_dir, database_url=db_url, allow_private_urls=True
        )
        rt = build_runtime(settings)
        yield rt, feeds, hook, smtp
        rt.close()  # its channels too: the email channel keeps SMTP sessions


@pytest.fixture
def setup(tmp_path: Path, engine: sa.Engine, db_url: str) -> Iterator[tuple]:
    with story_stack(tmp_path, db_url) as stack:
        yield stack


def test_same_story_in_three_feeds_gives_one_alert_listing_three_sources(setup) -> None:
    rt, feeds, hook, smtp = setup
    for i, (name, (title, summary)) in enumerate(COPIES.items()):
        feeds.publish(name, FeedEntry(f"{name}-{i}", title, summary))
    outcomes = [pipeline.poll_feed(rt, name) for name in COPIES]
    delivery_ids = [d for o in outcomes for d in o.delivery_ids]
    assert len(delivery_ids) == 2  # one match (webhook + email), not three
    assert [deliver_row(rt, Kind.DELIVERY, d).status for d in delivery_ids] == ["sent", "sent"]
    story = json.loads(hook.requests[0].body)["data"]["story"]
    assert story["sources"] == list(COPIES)
    text = smtp.messages[0].parsed().get_body(("plain",)).get_content()
    assert "reuters" in text and "nknews" in text
    with rt.sessions() as s:
        story_ids = set(s.scalars(sa.select(Item.story_id)))
        assert len(story_ids) == 1 and s.scalar(sa.select(sa.func.count(MatchRow.id))) == 1


def test_edited_title_under_same_guid_is_an_update_not_a_new_alert(setup) -> None:
    rt, feeds, _, _ = setup
    title, summary = COPIES["yonhap"]
    feeds.publish("yonhap", FeedEntry("g1", title, summary))
    assert len(pipeline.poll_feed(rt, "yonhap").matches) == 1
    feeds.feeds["yonhap"][0] = FeedEntry("g1", "(LEAD) " + title + " toward Japan", summary)
    outcome = pipeline.poll_feed(rt, "yonhap")
    assert outcome.status == "ok" and outcome.new_items == [] and outcome.matches == []


def test_a_different_story_on_the_same_topic_alerts_again(setup) -> None:
    rt, feeds, _, _ = setup
    feeds.publish("yonhap", FeedEntry("a", *COPIES["yonhap"]))
    feeds.publish(
        "reuters",
        FeedEntry(
            "b",
            "UN Security Council to meet over North Korea ballistic missile launch",
            "Diplomats said the United States, Japan and South Korea requested the closed-door "
            "session in New York; China and Russia are expected to block any new statement.",
        ),
    )
    first, second = pipeline.poll_feed(rt, "yonhap"), pipeline.poll_feed(rt, "reuters")
    assert len(first.matches) == 1 and len(second.matches) == 1


def test_notify_updates_sends_one_short_update_per_official_source_and_source_count(
    tmp_path: Path, engine: sa.Engine, db_url: str
) -> None:
    extra = {"notify_updates": True, "update_at_sources": 3}
    with story_stack(tmp_path, db_url, official=("reuters",), **extra) as stack:
        rt, feeds, hook, smtp = stack
        for i, (name, (title, summary)) in enumerate(COPIES.items()):
            feeds.publish(name, FeedEntry(f"{name}-{i}", title, summary))
        per_feed = [pipeline.poll_feed(rt, name) for name in COPIES]
        assert [len(o.matches) for o in per_feed] == [1, 1, 1]  # the alert, then two updates
        again = [pipeline.poll_feed(rt, name) for name in COPIES]
        assert [len(o.matches) for o in again] == [0, 0, 0]
        for outcome in per_feed:
            assert {deliver_row(rt, Kind.DELIVERY, d).status for d in outcome.delivery_ids} == {
                "sent"
            }
        data = [json.loads(r.body)["data"] for r in hook.requests]
        assert [d.get("update") for d in data] == [
            None,
            "now reported by an official source (reuters)",
            "now reported by 3 sources",
        ]
        assert len({d["story"]["id"] for d in data}) == 1
        assert data[-1]["story"]["sources"] == list(COPIES)
        subjects = [m.parsed()["Subject"] for m in smtp.messages]
        assert ["Update: " in s for s in subjects] == [False, True, True]


# One launch as Yonhap, TASS and Reuters report it: no word in common across the three.
LAUNCH = {
    "yonhap-ko": (
        '北, 동해상으로 탄도미사일 발사…합참 "600여㎞ 비행"',
        "(서울=연합뉴스) 북한이 {day}일 오전 7시 50분께 평양 일대에서 동해상으로 탄도미사일 "
        "1발을 발사했다고 합동참모본부가 밝혔다. 미사일은 {km}여㎞를 비행했다.",
    ),
    "tass-ru": (
        "КНДР запустила баллистическую ракету в сторону Японского моря",
        "СЕУЛ, {day} ноября. /ТАСС/. КНДР утром запустила баллистическую ракету в сторону "
        "Японского моря из района Пхеньяна, сообщил Объединенный комитет начальников штабов "
        "Республики Корея. Ракета пролетела около {km} км.",
    ),
    "reuters-en": (
        "North Korea fires ballistic missile off its east coast, Seoul says",
        "SEOUL (Reuters) - North Korea fired a ballistic missile into the East Sea on Saturday "
        "from the Pyongyang area, South Korea's Joint Chiefs of Staff said. The missile flew "
        "about {km} km.",
    ),
}
MULTILINGUAL = {
    "aliases": {
        "dprk": ["North Korea", "북한", "北", "КНДР"],
        "missile": ["ballistic missile", "탄도미사일", "баллистическ*"],
    },
    "watchlists": [
        {"id": "missile-tests", "title": "Missile tests", "query": "@dprk AND @missile",
         "severity": "high", "channels": ["hook", "mail"]},
        {"id": "dprk", "title": "Anything on North Korea", "query": "@dprk",
         "severity": "low", "channels": ["hook"]},
    ],
}  # fmt: skip


def test_one_event_in_korean_russian_and_english_is_one_alert_per_watchlist(
    tmp_path: Path, engine: sa.Engine, db_url: str
) -> None:
    """Three feeds, three languages: one alert per watch-list, naming all three sources and
    languages; the same kind of launch a week later is a new story and alerts again."""
    stack = story_stack(tmp_path, db_url, names=tuple(LAUNCH), watchlists=MULTILINGUAL)
    with stack as (rt, feeds, hook, smtp):
        now = datetime.now(UTC)
        for name in LAUNCH:  # the first poll of each feed is behind us
            feeds.publish(name, FeedEntry(f"{name}-old", "Seoul stocks close higher"))
            pipeline.poll_feed(rt, name)

        def launch(week: int, day: int, km: int) -> list[str]:
            for n, (name, (title, summary)) in enumerate(LAUNCH.items()):
                at = now - timedelta(days=7 * (1 - week), hours=3 - n)
                text = summary.format(day=day, km=km)
                feeds.publish(name, FeedEntry(f"{name}-{week}", title, text, published=at))
            outcomes = [pipeline.poll_feed(rt, name) for name in LAUNCH]
            return [d for o in outcomes for d in o.delivery_ids]

        first = launch(0, 21, 600)
        assert len(first) == 3  # missile-tests by webhook and email, dprk by webhook
        for delivery_id in first:
            assert deliver_row(rt, Kind.DELIVERY, delivery_id).status == "sent"
        data = [json.loads(r.body)["data"] for r in hook.requests]
        assert sorted(d["watchlist"]["id"] for d in data) == ["dprk", "missile-tests"]
        for d in data:
            assert d["item"]["language"] == "ko"  # Yonhap was first
            assert d["story"]["sources"] == list(LAUNCH)
            assert d["story"]["languages"] == ["ko", "ru", "en"]
        text = smtp.messages[0].parsed().get_body(("plain",)).get_content()
        assert "Also reported by: tass-ru, reuters-en" in text
        assert "Reported in: ko, ru, en" in text
        with rt.sessions() as s:
            stories = set(s.scalars(sa.select(Item.story_id).where(Item.guid.like("%-0"))))
            assert len(stories) == 1

        second = launch(1, 28, 450)  # a week later: a new launch, a new story
        assert len(second) == 3
        with rt.sessions() as s:
            again = set(s.scalars(sa.select(Item.story_id).where(Item.guid.like("%-1"))))
            assert len(again) == 1 and again.isdisjoint(stories)
            assert s.scalar(sa.select(sa.func.count(MatchRow.id))) == 4
