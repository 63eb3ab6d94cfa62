"""The console's read model on a real database, SQLite (FTS5) and PostgreSQL (tsvector):
search in English, Korean and Russian, keyset pages and filters (the ``db_url`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from alerts.types import Hit, Match
from feeds.sources import FeedSource
from feeds.types import FeedItem
from worker import archive
from worker.archive import AlertFilter
from worker.db import session_factory
from worker.outbox import store as outbox
from worker.store import feeds, items

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TEXTS = {
    "en": ("North Korea fires ballistic missiles toward the East Sea", "Seoul said."),
    "ko": ("북한의 탄도미사일 발사에 합참이 경계 강화", "합참은 오늘 밝혔다."),
    "ru": ("КНДР запустила баллистические ракеты", "Сеул сообщил об этом."),
    "other": ("Seoul stocks close higher on chip exports", "Markets rallied."),
}


def feed_item(key: str, title: str, summary: str) -> FeedItem:
    return FeedItem(
        guid=key, title=title, url="", summary=summary, published_at=NOW, fingerprint=key * 8
    )


@pytest.fixture
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    factory = session_factory(engine)
    with factory.begin() as session:
        feeds.sync(session, [FeedSource(id="f1", url="http://127.0.0.1/feed")], NOW)
        items.insert_new(session, "f1", [feed_item(k, *t) for k, t in TEXTS.items()], NOW)
    return factory


def found(sessions: sessionmaker[Session], q: str) -> set[str]:
    with sessions() as session:
        return {row.title for row in archive.search_items(session, q)}


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("missile", {"en"}),  # missiles, by prefix
        ("BALLISTIC missiles", {"en"}),
        ("북한", {"ko"}),  # the noun inside 북한의: no space before the particle
        ("미사일", {"ko"}),  # inside 탄도미사일
        ("ракет", {"ru"}),  # ракеты, by prefix
        ("кндр", {"ru"}),
        ("seoul", {"en", "other"}),  # in a summary too; not the Russian Сеул
        ("Сеул", {"ru"}),
        ("missile 북한", set()),  # every word must be there
        ('"; DROP TABLE items; --', set()),  # hostile input is words, never SQL
        ("", set()),
    ],
)
def test_search_finds_words_in_three_languages(
    sessions: sessionmaker[Session], query: str, keys: set[str]
) -> None:
    assert found(sessions, query) == {TEXTS[k][0] for k in keys}
    with sessions() as session:  # the table is still there after the hostile query
        assert session.scalar(sa.text("SELECT count(*) FROM items")) == len(TEXTS)


def _alerts(sessions: sessionmaker[Session], count: int) -> list[int]:
    """``count`` alerts over two watch-lists, some sharing a second (keyset ties)."""
    hit = Hit(term="missile", field="title", start=0, end=7, snippet="missile")
    made = []
    with sessions.begin() as session:
        item_ids = session.scalars(sa.text("SELECT id FROM items ORDER BY id")).all()
        for n in range(count):
            watchlist = "missiles" if n % 3 else "sanctions"
            match = Match(watchlist_id=watchlist, hits=(hit,), snippet="missile")
            at = NOW + timedelta(seconds=n // 4)  # four alerts per second
            severity = "high" if n % 2 else "low"
            item_id = item_ids[n % len(item_ids)]
            match_id = outbox.insert_alert(session, item_id, 1000 + n, "", severity, match, at)
            assert match_id is not None
            made.append(match_id)
    return made


def test_keyset_pages_cover_every_alert_once_newest_first(
    sessions: sessionmaker[Session],
) -> None:
    made = _alerts(sessions, 23)
    seen: list[int] = []
    cursor = None
    with sessions() as session:
        for _ in range(10):
            page = archive.alerts(session, AlertFilter(), cursor, limit=5)
            seen += [row.match_id for row in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    with sessions() as session:
        times = session.execute(
            sa.text("SELECT id, created_at FROM matches ORDER BY created_at DESC, id DESC")
        ).all()
    assert seen == [row[0] for row in times]
    with sessions() as session:  # a cursor that does not parse starts from the top
        assert (
            archive.alerts(session, AlertFilter(), "garbage", limit=5).rows[0].match_id == seen[0]
        )


def test_filters_narrow_the_archive(sessions: sessionmaker[Session]) -> None:
    _alerts(sessions, 12)

    def ids(**fields: object) -> set[tuple[str, str]]:
        with sessions() as session:
            page = archive.alerts(session, AlertFilter(**fields), limit=200)  # type: ignore[arg-type]
            return {(row.watchlist_id, row.severity) for row in page.rows}

    assert ids(watchlists=("sanctions",)) == {("sanctions", "low"), ("sanctions", "high")}
    assert ids(severities=("high",)) == {("missiles", "high"), ("sanctions", "high")}
    late = NOW + timedelta(seconds=2)  # alerts 8 to 11
    assert ids(since=late, watchlists=("sanctions",)) == {("sanctions", "high")}  # alert 9
    assert ids(since=NOW + timedelta(seconds=3)) == set()
    with sessions() as session:
        all_rows = archive.alerts(session, AlertFilter(), limit=200).rows
        ko_rows = archive.alerts(session, AlertFilter(q="북한"), limit=200).rows
    assert ko_rows and {row.title for row in ko_rows} == {TEXTS["ko"][0]}
    assert len(ko_rows) < len(all_rows)
