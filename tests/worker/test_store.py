"""Store behaviour on a real database: SQLite and PostgreSQL (the ``db_url`` fixture)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from alerts.controls import RetryPolicy
from alerts.types import Hit, Match
from feeds.sources import FeedSource
from feeds.types import FeedItem
from worker.db import make_engine, session_factory, upgrade
from worker.models import ChannelState, Delivery, DigestRow, Feed, Item, MatchRow
from worker.models import DeliveryStatus as S
from worker.outbox import store as outbox
from worker.outbox.store import Kind
from worker.outbox.transitions import Failed, Sent
from worker.planning import Plan
from worker.store import channels, feeds, items
from worker.stories import file_items

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def item(guid: str, url: str = "", title: str = "t") -> FeedItem:
    return FeedItem(
        guid=guid, title=title, url=url, summary="s", published_at=NOW, fingerprint="f" * 64
    )


def a_match(watchlist: str = "wl") -> Match:
    hit = Hit(term="missile", field="title", start=0, end=7, snippet="missile")
    return Match(watchlist_id=watchlist, hits=(hit,), snippet="missile")


@pytest.fixture
def sessions(engine: sa.Engine):
    factory = session_factory(engine)
    with factory.begin() as session:
        feeds.sync(session, [FeedSource(id="f1", url="http://127.0.0.1/feed")], NOW)
    return factory


def test_new_items_dedup_by_guid_then_canonical_url(sessions) -> None:
    with sessions.begin() as s:
        first = items.insert_new(s, "f1", [item("a", "http://x/1"), item("b", "")], NOW)
    with sessions.begin() as s:
        again = items.insert_new(
            s,
            "f1",
            [item("a", "http://x/1"), item("c", "http://x/1"), item("d", "http://x/2")],
            NOW,
        )
    assert [i.guid for _, i in first] == ["a", "b"]
    assert [i.guid for _, i in again] == ["d"]
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Item)) == 3


def test_datetimes_round_trip_as_aware_utc(sessions) -> None:
    with sessions.begin() as s:
        [(item_id, _)] = items.insert_new(s, "f1", [item("a")], NOW)
    with sessions() as s:
        assert s.get(Item, item_id).published_at == NOW


def test_one_match_per_watchlist_and_story(sessions) -> None:
    with sessions.begin() as s:
        [(item_id, _)] = items.insert_new(s, "f1", [item("a")], NOW)
        first = outbox.insert_alert(s, item_id, item_id, "", "high", a_match(), NOW)
        second = outbox.insert_alert(s, item_id, item_id, "", "high", a_match(), NOW)
        other = outbox.insert_alert(s, item_id, item_id, "", "high", a_match("wl2"), NOW)
    assert first is not None and other is not None
    assert second is None


def _delivery(sessions: object) -> str:
    with sessions.begin() as s:  # type: ignore[attr-defined]
        [(item_id, _)] = items.insert_new(s, "f1", [item("a")], NOW)
        match_id = outbox.insert_alert(s, item_id, item_id, "", "high", a_match(), NOW)
        now = Plan(S.PENDING, NOW)
        ids = outbox.insert_deliveries(s, {"mail": now, "hook": now}, NOW, match_id=match_id)
        assert outbox.insert_deliveries(s, {"mail": now}, NOW, match_id=match_id) == []
    return ids[0]


def claim(s: Session, delivery_id: str, now: datetime) -> outbox.OutboxRow | None:
    return outbox.claim(s, Kind.DELIVERY, delivery_id, now, LEASE)


def test_claim_is_exclusive_and_sent_is_final(sessions) -> None:
    delivery_id = _delivery(sessions)
    with sessions.begin() as s:
        claimed = claim(s, delivery_id, NOW)
        assert claimed is not None and claimed.state.attempts == 1
    with sessions.begin() as s:
        assert claim(s, delivery_id, NOW + timedelta(seconds=1)) is None
    with sessions.begin() as s:
        assert outbox.apply(s, claimed, Sent(), NOW, RetryPolicy()) is not None
    with sessions.begin() as s:
        assert claim(s, delivery_id, NOW + timedelta(days=9)) is None
        assert outbox.apply(s, claimed, Sent(), NOW, RetryPolicy()) is None  # state moved on


def test_stuck_sending_is_reclaimed_after_lease_with_same_id(sessions) -> None:
    delivery_id = _delivery(sessions)
    with sessions.begin() as s:
        claim(s, delivery_id, NOW)
    requeue = timedelta(seconds=60)
    with sessions.begin() as s:
        assert delivery_id not in outbox.due_rows(s, Kind.DELIVERY, NOW + LEASE / 2, LEASE, requeue)
        assert delivery_id in outbox.due_rows(s, Kind.DELIVERY, NOW + LEASE, LEASE, requeue)
    with sessions.begin() as s:
        again = claim(s, delivery_id, NOW + LEASE)
        assert again is not None and again.id == delivery_id and again.state.attempts == 2


def test_failure_schedules_retry_and_dead_is_final(sessions) -> None:
    delivery_id = _delivery(sessions)
    policy = RetryPolicy(schedule=(timedelta(seconds=30),), jitter=0)
    with sessions.begin() as s:
        d = claim(s, delivery_id, NOW)
        failed = outbox.apply(s, d, Failed("HTTP 500"), NOW, policy)
        assert failed is not None and failed.state.next_attempt_at == NOW + timedelta(seconds=30)
    with sessions.begin() as s:
        assert claim(s, delivery_id, NOW + timedelta(seconds=10)) is None
        d = claim(s, delivery_id, NOW + timedelta(seconds=31))
        assert d is not None
        outbox.apply(s, d, Failed("HTTP 400", permanent=True), NOW, policy)
    with sessions() as s:
        row = s.get(Delivery, delivery_id)
        assert (row.status, row.attempts, row.last_error) == (S.DEAD, 2, "HTTP 400")


def test_claim_batch_leases_each_due_feed_once(sessions) -> None:
    with sessions.begin() as s:
        assert feeds.claim_batch(s, NOW, 10, LEASE) == ["f1"]
    with sessions.begin() as s:
        assert feeds.claim_batch(s, NOW + timedelta(seconds=1), 10, LEASE) == []
        assert s.get(Feed, "f1").next_poll_at == NOW + LEASE


def _configure(sessions, sources: list[FeedSource], at: datetime = NOW) -> None:
    with sessions.begin() as s:
        feeds.sync_all(s, sources, at)


def test_claim_batch_takes_the_longest_due_first_up_to_its_limit(sessions) -> None:
    sources = [FeedSource(id=f"n{n}", url=f"http://127.0.0.1/{n}") for n in range(6)]
    _configure(sessions, sources)
    with sessions.begin() as s:
        for n in range(6):  # n5 has waited longest
            s.get(Feed, f"n{n}").next_poll_at = NOW - timedelta(minutes=n)
        s.get(Feed, "f1").next_poll_at = NOW + timedelta(minutes=1)  # not due yet
    with sessions.begin() as s:
        first = feeds.claim_batch(s, NOW, 4, LEASE)
    with sessions.begin() as s:
        rest = feeds.claim_batch(s, NOW, 4, LEASE)
        assert feeds.count_due(s, NOW, cap=100) == 0
    assert (first, rest) == (["n2", "n3", "n4", "n5"], ["n0", "n1"])


def test_the_doorbell_counts_due_feeds_up_to_its_cap(sessions) -> None:
    sources = [FeedSource(id=f"n{n}", url=f"http://127.0.0.1/{n}") for n in range(6)]
    _configure(sessions, sources)
    with sessions.begin() as s:
        for n in range(6):
            s.get(Feed, f"n{n}").next_poll_at = NOW - timedelta(minutes=n)
    with sessions.begin() as s:
        assert [feeds.count_due(s, NOW, cap) for cap in (1, 4, 6, 100)] == [1, 4, 6, 6]


def test_feeds_the_config_no_longer_holds_or_disables_are_never_claimed(sessions) -> None:
    kept = FeedSource(id="kept", url="http://127.0.0.1/kept")
    paused = FeedSource(id="paused", url="http://127.0.0.1/paused", enabled=False)
    _configure(sessions, [kept, paused])  # f1 left the config
    with sessions.begin() as s:
        assert feeds.count_due(s, NOW, cap=100) == 1
        assert feeds.claim_batch(s, NOW, 10, LEASE) == ["kept"]
    _configure(sessions, [kept, paused.model_copy(update={"enabled": True})], NOW + LEASE)
    with sessions.begin() as s:  # back in the config: claimable again
        assert feeds.claim_batch(s, NOW + LEASE, 10, LEASE) == ["kept", "paused"]
        assert not s.get(Feed, "f1").active


def test_released_feeds_are_due_again_at_once(sessions) -> None:
    with sessions.begin() as s:
        assert feeds.claim_batch(s, NOW, 10, LEASE) == ["f1"]
        feeds.release(s, ["f1"], NOW)
    with sessions.begin() as s:
        assert feeds.claim_batch(s, NOW, 10, LEASE) == ["f1"]


@pytest.mark.postgres
def test_concurrent_claims_skip_each_others_rows_without_waiting(pg_url: str) -> None:
    """FOR UPDATE SKIP LOCKED: a second process claims other feeds while the first holds
    its batch uncommitted; it never waits on the first (a lock wait fails the statement)."""
    engine = make_engine(pg_url)
    upgrade(engine)
    factory = session_factory(engine)
    _configure(factory, [FeedSource(id=f"n{n}", url=f"http://127.0.0.1/{n}") for n in range(10)])
    with factory.begin() as first, factory.begin() as second:
        second.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
        mine = feeds.claim_batch(first, NOW, 4, LEASE)
        theirs = feeds.claim_batch(second, NOW, 10, LEASE)
    assert len(mine) == 4 and len(theirs) == 6 and not set(mine) & set(theirs)
    engine.dispose()


def test_poll_row_counts_errors_and_keeps_what_the_poll_did_not_learn() -> None:
    """The columns a poll writes, from the feed's state before it (a pure function)."""
    state = feeds.FeedState(
        id="f", url="http://a/", etag='"e1"', last_modified=None, body_hash="h1",
        error_count=2, created_at=NOW, last_success_at=None, last_error_at=None,
        disabled_reason=None, window_overflows=1, item_digests=frozenset({"b", "a"}),
    )  # fmt: skip
    ok = feeds.poll_row(state, feeds.PollRecord(next_poll_at=NOW, overflowed=True), NOW)
    assert (ok["etag"], ok["body_hash"], ok["item_digests"]) == ('"e1"', "h1", "a b")
    assert (ok["error_count"], ok["last_error"], ok["last_success_at"]) == (0, None, NOW)
    assert (ok["window_overflows"], ok["last_overflow_at"]) == (2, NOW)
    record = feeds.PollRecord(next_poll_at=NOW, error="x" * 900, disable=True)
    failed = feeds.poll_row(state, record, NOW)
    assert failed["error_count"] == 3 and len(failed["last_error"]) == 500
    assert failed["disabled_reason"] == failed["last_error"] and "last_success_at" not in failed
    moved = feeds.PollRecord(next_poll_at=NOW, etag='"e2"', url="http://b/", item_digests=())
    row = feeds.poll_row(state, moved, NOW)
    assert (row["etag"], row["url"], row["item_digests"]) == ('"e2"', "http://b/", None)


def test_concurrent_inserts_of_one_item_yield_one_row_and_one_match(db_url: str, sessions) -> None:
    """Two connections race to insert the same item and match: exactly one wins each."""
    barrier, results = threading.Barrier(2), []
    engine = make_engine(db_url)

    def race() -> None:
        with Session(engine) as s, s.begin():
            barrier.wait()
            new = items.insert_new(s, "f1", [item("same")], NOW)
            for item_id, _ in new:
                results.append(outbox.insert_alert(s, item_id, 1, "", "high", a_match(), NOW))

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Item)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(MatchRow)) == 1
    assert len([r for r in results if r is not None]) == 1


def test_prune_drops_old_unalerted_items_and_keeps_alerted_ones(sessions) -> None:
    with sessions.begin() as s:
        [(_old_id, _), (alerted_id, _)] = items.insert_new(
            s, "f1", [item("old"), item("alerted")], NOW - timedelta(days=40)
        )
        [(fresh_id, _)] = items.insert_new(s, "f1", [item("fresh")], NOW)
        outbox.insert_alert(s, alerted_id, alerted_id, "", "high", a_match(), NOW)
    with sessions.begin() as s:
        assert items.prune(s, NOW, timedelta(days=30), timedelta(days=4)) == 1
    with sessions() as s:
        assert set(s.scalars(sa.select(Item.id))) == {alerted_id, fresh_id}


def test_batch_digests_puts_each_due_delivery_in_exactly_one_digest(sessions) -> None:
    window_end = NOW + timedelta(minutes=1)
    with sessions.begin() as s:
        new = items.insert_new(s, "f1", [item("a"), item("b"), item("c")], NOW)
        for n, (item_id, _) in enumerate(new):
            match_id = outbox.insert_alert(s, item_id, item_id, "", "high", a_match(), NOW)
            later = window_end + timedelta(hours=1) if n == 2 else window_end
            outbox.insert_deliveries(s, {"mail": Plan(S.DIGEST, later)}, NOW, match_id=match_id)
    with sessions.begin() as s:
        assert outbox.batch_digests(s, NOW) == []  # nothing due before the window ends
    with sessions.begin() as s:
        [digest_id] = outbox.batch_digests(s, window_end)
    with sessions.begin() as s:
        assert outbox.batch_digests(s, window_end) == []  # a second sweep finds nothing
        rows = s.scalars(sa.select(Delivery).order_by(Delivery.created_at)).all()
        assert [r.digest_id for r in rows].count(digest_id) == 2
        assert sorted(r.status for r in rows) == ["batched", "batched", "digest"]
        digest = s.get(DigestRow, digest_id)
        assert digest.window_start == NOW and digest.window_end == window_end


def test_first_records_of_a_new_channel_from_two_workers_both_commit(engine) -> None:
    """Two deliveries of a channel that never sent before record their outcome at once."""
    delivery_ids = [_delivery_on(engine, guid) for guid in ("a", "b")]
    factory = session_factory(engine)
    loaded = threading.Barrier(2)
    errors: list[BaseException] = []

    def record(delivery_id: str) -> None:
        try:
            with factory.begin() as session:
                assert session.get(ChannelState, "mail") is None
                loaded.wait(10)  # both saw no channel_state row
                channels.record_success(session, "mail", NOW)
                session.execute(
                    sa.update(Delivery).where(Delivery.id == delivery_id).values(status=S.SENT)
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(d,)) for d in delivery_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with factory() as s:
        assert {d.status for d in s.scalars(sa.select(Delivery))} == {"sent"}
        assert s.get(ChannelState, "mail").last_success_at == NOW


def _delivery_on(engine: sa.Engine, guid: str) -> str:
    with session_factory(engine).begin() as s:
        feeds.sync(s, [FeedSource(id="f1", url="http://127.0.0.1/feed")], NOW)
        [(item_id, _)] = items.insert_new(s, "f1", [item(guid)], NOW)
        match_id = outbox.insert_alert(s, item_id, item_id, "", "high", a_match(), NOW)
        plans = {"mail": Plan(S.PENDING, NOW)}
        [delivery_id] = outbox.insert_deliveries(s, plans, NOW, match_id=match_id)
    return delivery_id


def test_a_storys_languages_are_its_items_detected_ones(sessions) -> None:
    titles = {
        "en": "North Korea fires a ballistic missile into the sea, officials say",
        "ko": "북한, 동해상으로 탄도미사일 발사했다고 합참이 밝혔다",
        "ru": "КНДР запустила баллистическую ракету, сообщили в Сеуле",
        "und": "ICBM",
    }
    with sessions.begin() as s:
        new = items.insert_new(
            s, "f1", [item(g, f"http://x/{g}", t) for g, t in titles.items()], NOW
        )
        ids = {stored.guid: item_id for item_id, stored in new}
        story = file_items(s, new[:1], NOW)[ids["en"]]
        # one story for all four (how items join one is test_stories' and bench/stories')
        s.execute(sa.update(Item).values(story_id=story))
    with sessions() as s:
        assert sorted(items.story_languages(s, story, except_item=ids["ru"])) == ["en", "ko"]
        assert items.story_languages(s, None, except_item=ids["ru"]) == []


def test_a_band_key_shared_by_too_many_stories_finds_none(sessions) -> None:
    """The database drops an over-shared key (a stock phrase): none of its rows reach Python,
    and a key of a few stories still finds them."""
    from feeds.story import MAX_STORIES_PER_KEY
    from worker.models import Story, StoryBand

    crowd, few, old_key = 111, 222, 333
    with sessions.begin() as s:
        ids = []
        for n in range(MAX_STORIES_PER_KEY + 1):
            story = Story(title=f"s{n}", signature="{}", first_seen=NOW, last_seen=NOW)
            s.add(story)
            s.flush()
            ids.append(story.id)
        s.add_all(StoryBand(key=crowd, story_id=i, seen_at=NOW) for i in ids)
        s.add_all(StoryBand(key=few, story_id=i, seen_at=NOW) for i in ids[:2])
        stale = Story(title="old", signature="{}", first_seen=NOW, last_seen=NOW - LEASE * 100)
        s.add(stale)
        s.flush()
        s.add(StoryBand(key=old_key, story_id=stale.id, seen_at=NOW))
    since = NOW - LEASE
    with sessions() as s:
        rows = s.execute(items.band_lookup([crowd, few, old_key], since)).all()
        assert sorted(rows) == sorted((few, i) for i in ids[:2])
        # one fewer story and the crowded key is informative again
        fewer = s.execute(items.band_lookup([crowd], since, limit=MAX_STORIES_PER_KEY + 1)).all()
        assert len(fewer) == MAX_STORIES_PER_KEY + 1
        assert items.band_index(s, [crowd, few], since) == {few: set(ids[:2])}
        if s.get_bind().dialect.name == "postgresql":  # band_index reads the capped lookup
            capped = s.execute(items.band_lookup_capped([crowd, few, old_key], since)).all()
            newest = sorted(ids, reverse=True)[: MAX_STORIES_PER_KEY + 1]
            assert sorted(capped) == sorted(
                [(few, i) for i in ids[:2]] + [(crowd, i) for i in newest]
            )
