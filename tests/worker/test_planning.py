"""The poll path's decisions, without a database or a feed server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from common.errors import FetchError
from feeds.sources import FeedSource
from feeds.types import FetchResult
from worker import planning
from worker.store.feeds import FeedState

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SOURCE = FeedSource(id="wire", url="http://127.0.0.1/feed.xml", interval="5m")
FEED = FeedState(
    id="wire",
    url=SOURCE.url,
    etag=None,
    last_modified=None,
    body_hash=None,
    error_count=0,
    created_at=NOW - timedelta(days=3),
    last_success_at=NOW - timedelta(hours=1),
    last_error_at=None,
    disabled_reason=None,
)


def test_next_poll_is_the_interval_and_a_server_hint_stretches_it_at_most_4x() -> None:
    five = timedelta(minutes=5)
    assert planning.next_poll(five, NOW) == NOW + five
    assert planning.next_poll(five, NOW, hint_seconds=600) == NOW + timedelta(minutes=10)
    assert planning.next_poll(five, NOW, hint_seconds=86_400) == NOW + 4 * five
    assert planning.next_poll(five, NOW, hint_seconds=60) == NOW + five  # never shorter


def test_backoff_doubles_from_the_interval_up_to_six_hours() -> None:
    five = timedelta(minutes=5)
    waits = [planning.backoff(five, errors, None) for errors in range(8)]
    assert waits[:4] == [five, 2 * five, 4 * five, 8 * five]
    assert waits[-1] == planning.MAX_BACKOFF
    assert planning.backoff(five, 0, 3600) == timedelta(hours=1)  # Retry-After wins when longer


def test_a_failing_feed_crosses_its_threshold_once_per_episode() -> None:
    threshold = timedelta(minutes=30)
    failing = replace(FEED, last_success_at=NOW - timedelta(minutes=20), error_count=2)
    assert not planning.crosses_failing_threshold(failing, threshold, NOW)
    at_31 = NOW + timedelta(minutes=11)
    failing = replace(failing, last_error_at=NOW)
    assert planning.crosses_failing_threshold(failing, threshold, at_31)
    told = replace(failing, last_error_at=at_31)
    assert not planning.crosses_failing_threshold(told, threshold, at_31 + timedelta(minutes=10))


def test_a_feed_that_never_succeeded_counts_from_its_creation() -> None:
    new = replace(FEED, last_success_at=None, created_at=NOW - timedelta(hours=7))
    assert planning.failing_since(new) == new.created_at
    assert planning.crosses_failing_threshold(new, timedelta(hours=6), NOW)


def test_on_a_first_poll_only_recent_items_alert() -> None:
    window = timedelta(hours=24)
    recent, old = NOW - timedelta(hours=2), NOW - timedelta(days=3)
    assert planning.alertable(recent, True, window, NOW)
    assert not planning.alertable(old, True, window, NOW)
    assert not planning.alertable(None, True, window, NOW)  # undated: cannot tell, so no
    assert planning.alertable(old, False, window, NOW)  # later polls: every new item


def test_a_successful_poll_keeps_validators_and_a_permanent_move() -> None:
    result = FetchResult(
        url="http://127.0.0.1/new.xml",
        status=200,
        body=b"<rss/>",
        etag='"v2"',
        last_modified="Tue, 01 Dec 2026 11:00:00 GMT",
        permanent_url="http://127.0.0.1/new.xml",
        max_age=600,
    )
    record = planning.poll_succeeded(SOURCE, result, NOW, body_hash="h", ttl_seconds=1200)
    assert (record.etag, record.url, record.body_hash, record.error) == (
        '"v2"',
        "http://127.0.0.1/new.xml",
        "h",
        None,
    )
    assert record.next_poll_at == NOW + timedelta(minutes=20)  # the longer hint, within 4x


def test_a_failed_poll_backs_off_and_a_permanent_error_disables() -> None:
    flaky = planning.poll_failed(SOURCE, replace(FEED, error_count=2), FetchError("HTTP 503"), NOW)
    assert (flaky.error, flaky.disable) == ("FetchError: HTTP 503", False)
    assert flaky.next_poll_at == NOW + timedelta(minutes=20)
    gone = planning.poll_failed(SOURCE, FEED, FetchError("HTTP 410", permanent=True), NOW)
    assert gone.disable


def test_a_failing_channel_is_told_at_the_fifth_error_then_every_tenth() -> None:
    told = [errors for errors in range(1, 40) if planning.channel_failing(errors)]
    assert told == [5, 15, 25, 35]


# --- adaptive polling and window overflow ---------------------------------------------------

MIN, HOUR = timedelta(minutes=1), timedelta(hours=1)
CADENCE = planning.Cadence(timedelta(minutes=5), MIN, HOUR)


def every(gap: timedelta, count: int) -> list[datetime]:
    """``count`` items, the newest just now, one per ``gap``."""
    return [NOW - gap * n for n in range(count)]


def test_a_steady_feed_is_polled_eight_times_per_gap_between_its_items() -> None:
    forty = planning.learned_interval(every(timedelta(minutes=40), 40), NOW, CADENCE)
    assert abs(forty - timedelta(minutes=5)) < timedelta(seconds=10)
    twenty = planning.learned_interval(every(timedelta(minutes=20), 50), NOW, CADENCE)
    assert abs(twenty - timedelta(minutes=2.5)) < timedelta(seconds=5)


def test_busy_feeds_are_polled_more_often_and_quiet_ones_more_rarely_within_bounds() -> None:
    busy = planning.learned_interval(every(timedelta(minutes=8), 200), NOW, CADENCE)
    assert abs(busy - MIN) < timedelta(seconds=2)
    assert planning.learned_interval(every(timedelta(hours=9), 20), NOW, CADENCE) == HOUR
    assert planning.learned_interval(every(timedelta(days=2), 7), NOW, CADENCE) == HOUR
    wire = every(timedelta(seconds=1), 200)
    assert planning.learned_interval(wire, NOW, CADENCE) == MIN  # never below the bound


def test_too_few_recent_items_keep_the_configured_interval_until_watched_two_weeks() -> None:
    four = every(timedelta(seconds=10), 4)
    assert planning.learned_interval(four, NOW, CADENCE) == CADENCE.interval
    stale = every(timedelta(seconds=10), 50)
    old = [t - planning.RHYTHM_SPAN - timedelta(days=1) for t in stale]
    assert planning.learned_interval(old, NOW, CADENCE) == CADENCE.interval
    future = [NOW + timedelta(days=1)] * 10  # a lying <pubDate> teaches nothing
    assert planning.learned_interval(future, NOW, CADENCE) == CADENCE.interval
    new = NOW - timedelta(days=3)  # too new to tell a quiet feed from an unknown one
    assert planning.learned_interval(four, NOW, CADENCE, new) == CADENCE.interval
    watched = NOW - planning.RHYTHM_SPAN  # watched two weeks: four items is a quiet feed
    assert planning.learned_interval(four, NOW, CADENCE, watched) == HOUR
    assert planning.learned_interval(old, NOW, CADENCE, watched - timedelta(days=30)) == HOUR
    assert planning.learned_interval([], NOW, CADENCE, watched) == HOUR


def test_a_feed_that_stops_publishing_drifts_to_its_maximum() -> None:
    burst = every(timedelta(seconds=30), 20)
    soon = planning.learned_interval(burst, NOW, CADENCE)
    later = planning.learned_interval(burst, NOW + timedelta(hours=6), CADENCE)
    much_later = planning.learned_interval(burst, NOW + timedelta(days=10), CADENCE)
    assert soon < later < much_later == HOUR
    gone = NOW + planning.RHYTHM_SPAN + timedelta(days=1)  # and stays there once watched
    assert planning.learned_interval(burst, gone, CADENCE, NOW - timedelta(days=30)) == HOUR


def flurries(count: int, size: int, within: timedelta, lull: timedelta) -> list[datetime]:
    """``count`` flurries of ``size`` items ``within`` apart, ``lull`` between flurries,
    the newest item just now."""
    times, t = [], NOW
    for _ in range(count):
        for _ in range(size):
            times.append(t)
            t -= within
        t += within
        t -= lull
    return times


def test_a_bursty_feed_backs_off_once_its_flurry_is_over() -> None:
    # flurries of 5 items a minute apart, 2 hours between flurries: mean gap 23.6 minutes
    feed = flurries(20, 5, MIN, timedelta(hours=2))
    mean_gap = (NOW - min(feed)) / len(feed)
    assert mean_gap == timedelta(minutes=(20 * 4 + 19 * 120) / 100)
    just_after = planning.learned_interval(feed, NOW + timedelta(seconds=10), CADENCE)
    in_the_lull = planning.learned_interval(feed, NOW + timedelta(minutes=20), CADENCE)
    # 10 s after an item, the flurry may go on or be over: its mean gap, as a steady feed
    expected = (80 * timedelta(seconds=50) + 19 * timedelta(seconds=7190)) / 99
    assert abs(just_after - expected / planning.POLLS_PER_GAP) < timedelta(seconds=1)
    assert abs(just_after - mean_gap / planning.POLLS_PER_GAP) < timedelta(seconds=10)
    # 20 minutes on, the flurry is over and the next is 100 minutes away
    assert abs(in_the_lull - timedelta(minutes=100) / 8) < timedelta(seconds=1)


def test_a_regular_feed_is_polled_faster_as_its_next_item_comes_due() -> None:
    # an item every 50 then 30 minutes, in turn (30 gaps of each): mean gap 40 minutes
    feed, t = [], NOW
    for n in range(61):
        feed.append(t)
        t -= timedelta(minutes=30 if n % 2 else 50)
    after = planning.learned_interval(feed, NOW + timedelta(minutes=1), CADENCE)
    due = planning.learned_interval(feed, NOW + timedelta(minutes=28), CADENCE)
    past_30 = planning.learned_interval(feed, NOW + timedelta(minutes=35), CADENCE)
    # 1 minute in, the next is expected in 39 (29 or 49); 28 in, in 12 (2 or 22);
    # 35 in, only the 50-minute gaps are left: in 15
    assert abs(after - timedelta(minutes=39) / 8) < timedelta(seconds=1)
    assert abs(due - timedelta(minutes=12) / 8) < timedelta(seconds=1)
    assert abs(past_30 - timedelta(minutes=15) / 8) < timedelta(seconds=1)


def test_a_quiet_spell_longer_than_five_of_its_gaps_falls_back_to_the_mean_gap() -> None:
    feed = flurries(3, 5, MIN, timedelta(hours=2))  # 14 gaps, 2 of them over an hour
    later = NOW + timedelta(hours=1)
    mean_gap = (later - min(feed)) / len(feed)
    learned = planning.learned_interval(feed, later, CADENCE)
    assert abs(learned - mean_gap / planning.POLLS_PER_GAP) < timedelta(seconds=1)


def test_bounds_come_from_the_feed_then_the_service_and_never_cross_its_interval() -> None:
    fast = FeedSource(id="t", url="http://127.0.0.1/f", interval="1s")
    assert planning.Cadence.of(fast, MIN, HOUR) == planning.Cadence(
        timedelta(seconds=1), timedelta(seconds=1), HOUR
    )
    slow = FeedSource(id="t", url="http://127.0.0.1/f", interval="2h")
    assert planning.Cadence.of(slow, MIN, HOUR).max_interval == timedelta(hours=2)
    own = FeedSource(
        id="t", url="http://127.0.0.1/f", interval="10m", min_interval="2m", max_interval="1d"
    )
    assert planning.Cadence.of(own, MIN, HOUR) == planning.Cadence(
        timedelta(minutes=10), timedelta(minutes=2), timedelta(days=1)
    )


def test_window_overflow_is_every_item_new_and_newer_than_the_last_poll() -> None:
    last = NOW - timedelta(minutes=10)
    fresh = [NOW - timedelta(minutes=m) for m in range(1, 10)]
    assert planning.window_overflowed(fresh, len(fresh), last)
    assert not planning.window_overflowed(fresh[:-1], len(fresh), last)  # one item was known
    straddling = [*fresh, last - timedelta(minutes=1)]
    assert not planning.window_overflowed(straddling, len(straddling), last)  # reached back
    assert not planning.window_overflowed(fresh, len(fresh), None)  # a first poll
    undated = [*fresh, None]
    assert not planning.window_overflowed(undated, len(undated), last)  # cannot tell
    assert not planning.window_overflowed([], 0, last)


def test_after_an_overflow_the_next_poll_comes_sooner_and_ignores_a_server_hint() -> None:
    assert planning.after_overflow(timedelta(minutes=5), CADENCE) == timedelta(seconds=150)
    assert planning.after_overflow(timedelta(seconds=90), CADENCE) == MIN
    result = FetchResult(url=SOURCE.url, status=200, body=b"<rss/>", max_age=3600)
    hinted = planning.poll_succeeded(SOURCE, result, NOW, interval=timedelta(minutes=2))
    assert hinted.next_poll_at == NOW + timedelta(minutes=8)  # 4x the interval at most
    caught_up = planning.poll_succeeded(
        SOURCE, result, NOW, interval=timedelta(minutes=2), overflowed=True
    )
    assert caught_up.next_poll_at == NOW + timedelta(minutes=2) and caught_up.overflowed


def test_doorbell_rings_once_per_batch_of_due_feeds_up_to_its_cap() -> None:
    from worker.planning import doorbell_rings

    assert [doorbell_rings(due, 200, 8) for due in (0, 1, 200, 201, 5_000)] == [0, 1, 1, 2, 8]
    assert doorbell_rings(10, 200, 0) == 1  # a cap below one still rings


def test_items_the_cap_left_unread_are_seen_after_a_first_poll_only() -> None:
    from feeds.types import ParsedFeed

    parsed = ParsedFeed("Wire", (), digests=("a", "b", "c", "d"), capped=("b", "d"))
    assert planning.digests_seen(parsed, first_poll=True) == ("a", "b", "c", "d")  # backlog
    assert planning.digests_seen(parsed, first_poll=False) == ("a", "c")  # read next poll
    whole = replace(parsed, capped=())
    assert planning.digests_seen(whole, first_poll=False) == ("a", "b", "c", "d")
