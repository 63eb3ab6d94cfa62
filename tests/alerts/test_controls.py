from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.controls import (
    DEFAULT_RETRY_SCHEDULE,
    ChannelControls,
    DigestSchedule,
    QuietHours,
    RateLimit,
    RetryPolicy,
    hold_until,
)

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def berlin(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=BERLIN, fold=fold)


def error_of(model: Any, data: object) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return str(info.value)


NIGHT = QuietHours(start="22:00", end="07:00", timezone="Europe/Berlin")  # type: ignore[arg-type]


# --- parsing ------------------------------------------------------------------------------


def test_yaml_channel_entry_with_every_control() -> None:
    entry = yaml.safe_load(
        """
        mode: digest
        digest: daily at 07:30 Europe/Berlin
        rate_limit: 20/1m
        quiet_hours: {start: 22:00, end: 07:00, timezone: Europe/Berlin}
        retry: [5s, 5m, 30m, 2h, 1d]
        """
    )
    assert entry["quiet_hours"]["start"] == 1320  # what YAML 1.1 makes of an unquoted 22:00
    controls = ChannelControls.model_validate(entry)
    assert controls.digest == DigestSchedule.parse("daily at 07:30 Europe/Berlin")
    assert controls.rate_limit == RateLimit(count=20, per=timedelta(minutes=1))
    assert controls.quiet_hours == NIGHT
    assert controls.quiet_hours.start == time(22, 0)
    assert controls.retry.schedule[-1] == timedelta(days=1)
    assert controls.retry.max_attempts == 6


def test_defaults_and_round_trip() -> None:
    controls = ChannelControls()
    assert (controls.mode, controls.digest, controls.rate_limit, controls.quiet_hours) == (
        "immediate",
        None,
        None,
        None,
    )
    assert controls.retry == RetryPolicy()
    digest = ChannelControls.model_validate({"mode": "digest", "digest": "every  15m"})
    dumped = digest.model_dump()
    assert dumped["digest"] == "every 15m"
    assert ChannelControls.model_validate(dumped) == digest


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"start": "22:00", "end": "7:00"}, (time(22), time(7), "UTC")),
        (
            {"start": "00:00", "end": "23:59", "timezone": "Asia/Tokyo"},
            (time(0), time(23, 59), "Asia/Tokyo"),
        ),
        ({"start": 615, "end": "12:00"}, (time(10, 15), time(12), "UTC")),
    ],
)
def test_quiet_hours_forms(value: dict[str, Any], expected: tuple[time, time, str]) -> None:
    quiet = QuietHours.model_validate(value)
    assert (quiet.start, quiet.end, quiet.timezone) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"start": "22:00", "end": "22:00"}, "start and end are equal"),
        ({"start": "24:00", "end": "07:00"}, "not a time of day: '24:00' (use HH:MM"),
        ({"start": "22:60", "end": "07:00"}, "not a time of day: '22:60'"),
        ({"start": "noon", "end": "07:00"}, "not a time of day: 'noon'"),
        ({"start": "22:00", "end": 79200}, "not a time of day: 79200"),  # unquoted 22:00:00
        ({"start": "22:00", "end": True}, "not a time of day: True"),
        (
            {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"},
            "unknown timezone 'Mars/Base'",
        ),
        ({"start": "22:00", "end": "07:00", "timezone": "../etc"}, "unknown timezone '../etc'"),
        ({"start": "22:00", "end": "07:00", "tz": "UTC"}, "Extra inputs are not permitted"),
        ({"start": "22:00"}, "end\n  Field required"),
    ],
)
def test_quiet_hours_errors(value: dict[str, Any], message: str) -> None:
    assert message in error_of(QuietHours, value)


@pytest.mark.parametrize(
    ("value", "count", "per"),
    [
        ("20/1m", 20, timedelta(minutes=1)),
        (" 5 / 30s ", 5, timedelta(seconds=30)),
        ("100/1h", 100, timedelta(hours=1)),
        ({"count": 3, "per": "1m"}, 3, timedelta(minutes=1)),
        ({"count": 3, "per": 90}, 3, timedelta(seconds=90)),
    ],
)
def test_rate_limit_forms(value: object, count: int, per: timedelta) -> None:
    limit = RateLimit.model_validate(value)
    assert (limit.count, limit.per) == (count, per)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20 per minute", "rate_limit '20 per minute': write COUNT/PERIOD, e.g. 20/1m"),
        ("/1m", "write COUNT/PERIOD"),
        ("0/1m", "count\n  Input should be greater than or equal to 1"),
        ("20/500ms", "rate_limit period must be at least 1s"),
        ("20/soon", "not a duration: 'soon'"),
        ({"count": 20, "per": "1m", "burst": 5}, "Extra inputs are not permitted"),
    ],
)
def test_rate_limit_errors(value: object, message: str) -> None:
    assert message in error_of(RateLimit, value)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("hourly", (timedelta(hours=1), None, None, "UTC")),
        ("HOURLY", (timedelta(hours=1), None, None, "UTC")),
        ("every 15m", (timedelta(minutes=15), None, None, "UTC")),
        ("every 1d", (timedelta(days=1), None, None, "UTC")),
        ("daily at 07:30", (None, time(7, 30), None, "UTC")),
        ("daily at 7:30 Europe/Berlin", (None, time(7, 30), None, "Europe/Berlin")),
        ("weekly on monday at 08:00 UTC", (None, time(8), 0, "UTC")),
        ("  Weekly  on Sunday at 23:05 ", (None, time(23, 5), 6, "UTC")),
    ],
)
def test_digest_forms(text: str, fields: tuple[Any, ...]) -> None:
    schedule = DigestSchedule.parse(text)
    assert (schedule.every, schedule.at, schedule.weekday, schedule.timezone) == fields
    assert str(schedule) == " ".join(text.split())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fortnightly", "digest schedule 'fortnightly' not understood; use hourly, every 15m"),
        ("daily", "digest schedule 'daily' not understood"),
        ("every 30s", "digest 'every 30s': the period must be at least 1m"),
        ("every soon", "not a duration: 'soon'"),
        ("daily at 25:00", "not a time of day: '25:00'"),
        ("weekly on funday at 08:00", "unknown weekday 'funday' (monday..sunday)"),
        ("daily at 07:30 Mars/Base", "unknown timezone 'Mars/Base'"),
    ],
)
def test_digest_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        DigestSchedule.parse(text)
    assert message in str(info.value)
    wrapped = {"mode": "digest", "digest": text}
    assert message in error_of(ChannelControls, wrapped)


def test_digest_must_be_a_string() -> None:
    assert "digest must be a schedule string (hourly, every 15m" in error_of(
        ChannelControls, {"mode": "digest", "digest": 15}
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"mode": "digest"}, "mode digest needs a schedule, e.g. digest: daily at 07:30 UTC"),
        ({"digest": "hourly"}, "digest is set but mode is immediate: add mode: digest"),
        ({"mode": "batch"}, "Input should be 'immediate' or 'digest'"),
        ({"retry": "5s"}, "retry must be a list of delays, e.g. [5s, 5m, 1h], or a mapping"),
        ({"retry": ["5s", "0s"]}, "retry delay #2 is under 1s"),
        ({"retry": ["5s", "soon"]}, "retry.schedule.1\n  Value error, not a duration: 'soon'"),
        ({"retry": {"jitter": 0.9}}, "less than or equal to 0.5"),
        ({"retry": {"jitter": -0.1}}, "greater than or equal to 0"),
        ({"retry": {"max_retry_after": "a while"}}, "not a duration: 'a while'"),
        ({"retry": {"attempts": 3}}, "Extra inputs are not permitted"),
        ({"silence": True}, "Extra inputs are not permitted"),
    ],
)
def test_channel_controls_errors(value: dict[str, Any], message: str) -> None:
    assert message in error_of(ChannelControls, value)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2024, 1, 1, 12)
    for call in (
        NIGHT.release_at,
        RateLimit(count=1, per=timedelta(minutes=1)).since,
        DigestSchedule.parse("hourly").window_end,
        DigestSchedule.parse("daily at 07:30").window_end,
    ):
        with pytest.raises(ValueError, match="naive datetime 2024-01-01T12:00:00"):
            call(naive)


# --- quiet hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "release"),
    [
        (berlin(2024, 1, 10, 21, 59), None),
        (berlin(2024, 1, 10, 22, 0), berlin(2024, 1, 11, 7, 0)),
        (berlin(2024, 1, 10, 23, 30), berlin(2024, 1, 11, 7, 0)),
        (berlin(2024, 1, 11, 3, 0), berlin(2024, 1, 11, 7, 0)),
        (berlin(2024, 1, 11, 6, 59, 59), berlin(2024, 1, 11, 7, 0)),
        (berlin(2024, 1, 11, 7, 0), None),
        (berlin(2024, 1, 11, 12, 0), None),
    ],
)
def test_quiet_hours_across_midnight(now: datetime, release: datetime | None) -> None:
    assert NIGHT.release_at(now) == release
    assert NIGHT.release_at(now.astimezone(TOKYO)) == release  # any zone for `now`
    if release is not None:
        assert NIGHT.release_at(now).tzinfo is UTC  # type: ignore[union-attr]


def test_quiet_hours_within_a_day() -> None:
    lunch = QuietHours.model_validate({"start": "12:00", "end": "14:00"})
    assert lunch.release_at(utc(2024, 5, 1, 11, 59)) is None
    assert lunch.release_at(utc(2024, 5, 1, 12, 0)) == utc(2024, 5, 1, 14, 0)
    assert lunch.release_at(utc(2024, 5, 1, 14, 0)) is None
    assert lunch.release_at(utc(2024, 5, 1, 23, 0)) is None


def test_quiet_hours_on_dst_nights() -> None:
    # spring forward (2024-03-31 02:00 CET -> 03:00 CEST): the night is 8 hours long
    start = berlin(2024, 3, 30, 22, 0)
    assert NIGHT.release_at(start) == utc(2024, 3, 31, 5, 0) == berlin(2024, 3, 31, 7, 0)
    assert NIGHT.release_at(start) - start == timedelta(hours=8)  # type: ignore[operator]
    # fall back (2024-10-27 03:00 CEST -> 02:00 CET): 10 hours, also in the repeated hour
    start = berlin(2024, 10, 26, 22, 0)
    assert NIGHT.release_at(start) == utc(2024, 10, 27, 6, 0) == berlin(2024, 10, 27, 7, 0)
    assert NIGHT.release_at(start) - start == timedelta(hours=10)  # type: ignore[operator]
    assert NIGHT.release_at(berlin(2024, 10, 27, 2, 30, fold=1)) == utc(2024, 10, 27, 6, 0)


def test_quiet_hours_ending_in_the_dst_gap_end_once_and_consistently() -> None:
    quiet = QuietHours.model_validate(
        {"start": "22:00", "end": "02:30", "timezone": "Europe/Berlin"}
    )
    release = quiet.release_at(berlin(2024, 3, 30, 23, 0))
    assert release == utc(2024, 3, 31, 1, 30)  # 02:30 does not exist: 03:30 CEST
    assert quiet.release_at(utc(2024, 3, 31, 1, 10)) == release  # 03:10 CEST: still held
    assert quiet.release_at(release) is None  # type: ignore[arg-type]
    # a repeated end time ends at its first occurrence
    # (ambiguous local times never compare equal across zones, PEP 495: compare in UTC)
    assert quiet.release_at(berlin(2024, 10, 26, 23, 0)) == utc(2024, 10, 27, 0, 30)
    assert quiet.release_at(berlin(2024, 10, 27, 2, 10, fold=1)) is None


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.times(),
    st.times(),
)
def test_quiet_hours_release_is_the_first_unquiet_instant(now: datetime, a: time, b: time) -> None:
    start, end = a.replace(second=0, microsecond=0), b.replace(second=0, microsecond=0)
    if start == end:
        return
    quiet = QuietHours(start=start, end=end, timezone="Europe/Berlin")
    release = quiet.release_at(now)
    if release is None:
        return
    assert now < release <= now + timedelta(hours=25)
    assert quiet.release_at(release - timedelta(microseconds=1)) == release
    assert quiet.release_at(release) is None


def test_critical_breaks_through_quiet_hours() -> None:
    now = berlin(2024, 1, 10, 23, 0)
    assert hold_until(NIGHT, "critical", now) is None
    for severity in ("low", "medium", "high"):
        assert hold_until(NIGHT, severity, now) == berlin(2024, 1, 11, 7, 0)
    assert hold_until(NIGHT, "high", berlin(2024, 1, 10, 12, 0)) is None
    assert hold_until(None, "low", now) is None


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_counts_a_sliding_window_and_one_release_per_burst() -> None:
    limit = RateLimit.model_validate("20/1m")
    now = utc(2024, 5, 1, 12, 0, 37, 500000)
    assert limit.since(now) == utc(2024, 5, 1, 11, 59, 37, 500000)
    assert limit.since(now.astimezone(TOKYO)) == limit.since(now)
    assert limit.allows(19) and not limit.allows(20) and not limit.allows(21)
    assert limit.release_at(now, None) == utc(2024, 5, 1, 12, 1, 37, 500000)
    first_held = utc(2024, 5, 1, 12, 1, 2)
    assert limit.release_at(now, first_held) == first_held


# --- digests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "at", "end"),
    [
        ("hourly", utc(2024, 5, 1, 10, 15), utc(2024, 5, 1, 11)),
        ("hourly", utc(2024, 5, 1, 11), utc(2024, 5, 1, 12)),  # on a boundary: strictly after
        ("every 15m", utc(2024, 5, 1, 10, 44, 59), utc(2024, 5, 1, 10, 45)),
        ("every 15m", utc(2024, 5, 1, 10, 45), utc(2024, 5, 1, 11)),
        ("daily at 07:30", utc(2024, 5, 1, 7, 29), utc(2024, 5, 1, 7, 30)),
        ("daily at 07:30", utc(2024, 5, 1, 7, 30), utc(2024, 5, 2, 7, 30)),
        ("daily at 07:30 Europe/Berlin", utc(2024, 1, 10, 6, 30), utc(2024, 1, 11, 6, 30)),
        ("daily at 07:30 Europe/Berlin", utc(2024, 7, 10, 5, 0), utc(2024, 7, 10, 5, 30)),
        ("weekly on monday at 08:00 UTC", utc(2024, 5, 1, 9), utc(2024, 5, 6, 8)),  # Wed
        ("weekly on monday at 08:00 UTC", utc(2024, 5, 6, 7, 59), utc(2024, 5, 6, 8)),
        ("weekly on monday at 08:00 UTC", utc(2024, 5, 6, 8), utc(2024, 5, 13, 8)),
        (
            "weekly on sunday at 23:30 Europe/Berlin",
            utc(2024, 5, 5, 21, 31),
            utc(2024, 5, 12, 21, 30),
        ),
    ],
)
def test_digest_window_end(spec: str, at: datetime, end: datetime) -> None:
    schedule = DigestSchedule.parse(spec)
    assert schedule.window_end(at) == end
    assert schedule.window_end(at.astimezone(TOKYO)) == end
    assert schedule.window_end(at).tzinfo is UTC
    assert schedule.window_start(end) <= at < end


def test_digest_windows_on_dst_days() -> None:
    daily = DigestSchedule.parse("daily at 07:30 Europe/Berlin")
    spring = daily.window_end(berlin(2024, 3, 30, 8, 0))
    assert spring == berlin(2024, 3, 31, 7, 30) == utc(2024, 3, 31, 5, 30)
    assert spring - daily.window_start(spring) == timedelta(hours=23)
    autumn = daily.window_end(berlin(2024, 10, 26, 8, 0))
    assert autumn == berlin(2024, 10, 27, 7, 30) == utc(2024, 10, 27, 6, 30)
    assert autumn - daily.window_start(autumn) == timedelta(hours=25)
    weekly = DigestSchedule.parse("weekly on sunday at 07:30 Europe/Berlin")
    assert weekly.window_end(berlin(2024, 3, 24, 7, 30)) == utc(2024, 3, 31, 5, 30)


def test_digest_at_a_time_dst_skips_or_repeats_is_sent_once() -> None:
    night = DigestSchedule.parse("daily at 02:30 Europe/Berlin")
    skipped = night.window_end(berlin(2024, 3, 30, 12, 0))
    assert skipped == utc(2024, 3, 31, 1, 30)  # 03:30 CEST
    assert night.window_end(skipped) == berlin(2024, 4, 1, 2, 30)
    repeated = night.window_end(berlin(2024, 10, 26, 12, 0))
    assert repeated == utc(2024, 10, 27, 0, 30)  # 02:30 CEST, the first of two
    assert night.window_end(repeated) == berlin(2024, 10, 28, 2, 30)  # not again at 01:30 UTC


SCHEDULES = [
    "hourly",
    "every 7m",
    "daily at 07:30 Europe/Berlin",
    "daily at 02:30 Europe/Berlin",
    "weekly on sunday at 02:30 Europe/Berlin",
    "daily at 00:00 Australia/Lord_Howe",  # a 30-minute DST shift
]


@given(
    st.sampled_from(SCHEDULES),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_every_instant_belongs_to_exactly_one_digest(spec: str, at: datetime) -> None:
    schedule = DigestSchedule.parse(spec)
    end = schedule.window_end(at)
    start = schedule.window_start(end)
    assert start <= at < end
    assert schedule.window_end(start) == end
    assert schedule.window_end(end - timedelta(microseconds=1)) == end
    assert schedule.window_end(at.astimezone(TOKYO)) == end


# --- retries ---------------------------------------------------------------------------------


def test_default_schedule_follows_standard_webhooks_and_spans_about_three_days() -> None:
    policy = RetryPolicy()
    svix = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)]
    svix += [timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]
    assert list(policy.schedule[: len(svix)]) == svix
    assert policy.schedule == DEFAULT_RETRY_SCHEDULE
    total = sum(policy.schedule, timedelta())
    assert timedelta(days=2.5) <= total <= timedelta(days=3)
    assert policy.max_attempts == len(policy.schedule) + 1 == 12


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.75, 0.999999])
def test_retry_delays_stay_within_jitter_bounds(rand: float) -> None:
    policy = RetryPolicy()
    assert policy.delay(0, None, lambda: rand) == timedelta(0)  # the first attempt is immediate
    for attempts, base in enumerate(policy.schedule, start=1):
        delay = policy.delay(attempts, None, lambda: rand)
        assert delay is not None
        assert base * 0.9 <= delay <= base * 1.1
    assert policy.delay(1, None, lambda: 0.5) == timedelta(seconds=5)
    assert policy.delay(1, None, lambda: 0.0) == timedelta(seconds=4.5)


def test_retry_jitter_spreads_and_can_be_off() -> None:
    policy = RetryPolicy.model_validate({"schedule": ["1m"], "jitter": 0.5})
    assert policy.delay(1, rand=lambda: 0.0) == timedelta(seconds=30)
    assert policy.delay(1, rand=lambda: 0.999999) == timedelta(seconds=89.99994)
    exact = RetryPolicy.model_validate({"schedule": ["1m", "1h"], "jitter": 0})
    assert [exact.delay(n, rand=lambda: 0.9) for n in (1, 2, 3)] == [
        timedelta(minutes=1),
        timedelta(hours=1),
        None,
    ]


def test_retry_after_raises_the_delay_up_to_a_cap() -> None:
    policy = RetryPolicy()
    mid = lambda: 0.5  # noqa: E731 - a fixed "random" draw
    assert policy.delay(1, 120.0, mid) == timedelta(minutes=2)
    assert policy.delay(3, 120.0, mid) == timedelta(minutes=30)  # never lowers the delay
    assert policy.delay(1, 30 * 86400.0, mid) == timedelta(days=1)
    for ignored in (0.0, -5.0, float("nan"), float("inf")):
        assert policy.delay(1, ignored, mid) == timedelta(seconds=5)
    capped = RetryPolicy.model_validate({"max_retry_after": "1h"})
    assert capped.delay(1, 86400.0, mid) == timedelta(hours=1)


def test_out_of_attempts_is_dead_even_with_retry_after() -> None:
    policy = RetryPolicy.model_validate(["5s", "5m"])
    assert policy.max_attempts == 3
    assert policy.delay(2, rand=lambda: 0.5) == timedelta(minutes=5)
    assert policy.delay(3, rand=lambda: 0.5) is None
    assert policy.delay(3, 60.0, lambda: 0.5) is None
    assert policy.delay(99) is None
    assert RetryPolicy.model_validate([]).delay(1) is None
    with pytest.raises(ValueError, match="attempts must be >= 0, got -1"):
        policy.delay(-1)
