"""One Retry-After reader with one cap, for feed servers and webhook receivers alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.http import MAX_RETRY_AFTER, parse_retry_after

NOW = datetime(2024, 5, 7, 10, 0, tzinfo=UTC)


def test_the_cap_is_one_day() -> None:
    assert MAX_RETRY_AFTER == 24 * 3600


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("Tue, 07 May 2024 10:10:00 GMT", 600.0),
        ("Tue, 07 May 2024 12:10:00 +0200", 600.0),  # any zone, read as an instant
        ("Tue, 07 May 2024 10:10:00", 600.0),  # no zone: HTTP dates are GMT
        ("Tue, 07 May 2024 09:59:00 GMT", 0.0),  # in the past: go now
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", None),
        ("1e12", None),
        ("12.5", None),
        ("١٢٠", None),  # Arabic-Indic digits: str.isdigit() says yes, RFC 9110 says no
        ("²", None),  # a digit to str.isdigit(), not to float()
    ],
)
def test_parsing(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize("value", ["86401", "99999999", "9" * 400, "Fri, 07 May 2100 10:00:00 GMT"])
def test_both_forms_are_capped(value: str) -> None:
    assert parse_retry_after(value, NOW) == MAX_RETRY_AFTER


def test_now_defaults_to_the_clock() -> None:
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
