"""Durations as admins write them in YAML and environment variables: ``30s``, ``5m``, ``7d``.

One reader for every file and setting, so ``5m`` means the same in feeds.yaml, channels.yaml
and ``WATCHFLOOR_*``, and a typo gets the same message everywhere.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Longer than any interval, retry or silence means anything for; far below what date
# arithmetic overflows on (``now + 99999999d`` raises OverflowError).
MAX_DURATION = timedelta(days=3660)


def parse_duration(value: object) -> timedelta:
    """Read ``2s``, ``30s``, ``5m``, ``1h``, ``7d`` (or a number of seconds), at most ten
    years; anything else is a ValueError that says what to write."""
    if isinstance(value, timedelta):
        return _bounded(value, value)
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = int(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds is None or seconds != seconds:  # NaN is not a duration either
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h, 7d)")
    if abs(seconds) > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {value!r} is longer than ten years")
    return _bounded(timedelta(seconds=seconds), value)


def _bounded(duration: timedelta, value: object) -> timedelta:
    if abs(duration) > MAX_DURATION:
        raise ValueError(f"duration {value!r} is longer than ten years")
    return duration


def parse_durations(spec: str) -> tuple[timedelta, ...]:
    """Read a comma list such as ``5s,5m,1h`` (an environment variable); empty parts skipped."""
    return tuple(parse_duration(part) for part in spec.split(",") if part.strip())


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]  # a pydantic field: "5m", "2h"


def format_duration(seconds: float) -> str:
    """The short form ``parse_duration`` reads, to the largest whole unit: 90 -> ``90s``,
    300 -> ``5m``, 7200 -> ``2h``; a part of a unit rounds down to the next smaller one."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    if whole >= 3600:
        return f"{whole // 60}m"
    return f"{whole}s"
