"""Durations as admins write them, one reader for YAML files and environment variables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.durations import parse_duration, parse_durations


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("250ms", timedelta(milliseconds=250)),
        ("30s", timedelta(seconds=30)),
        (" 5 m ", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(hours=1), timedelta(hours=1)),
    ],
)
def test_parse_duration(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["", "5", "5 minutes", "-5s", "1.5h", True, None, [1]])
def test_parse_duration_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


def test_parse_durations_reads_a_comma_list() -> None:
    assert parse_durations("5s, 5m,,1h,") == (
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(hours=1),
    )
    assert parse_durations("") == ()
    with pytest.raises(ValueError, match="not a duration: 'soon'"):
        parse_durations("5s,soon")


def test_format_duration_gives_the_short_form_parse_duration_reads() -> None:
    from common.durations import format_duration

    for seconds, text in [(90, "90s"), (300, "5m"), (7200, "2h"), (86400, "1d"), (3725, "62m")]:
        assert format_duration(seconds) == text
    for seconds in (1, 59, 60, 150, 3600, 5400, 172800):
        assert parse_duration(format_duration(seconds)).total_seconds() == seconds
