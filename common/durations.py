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


def parse_duration(value: object) -> timedelta:
    """Read ``2s``, ``30s``, ``5m``, ``1h``, ``7d`` (or a number of seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h, 7d)")


def parse_durations(spec: str) -> tuple[timedelta, ...]:
    """Read a comma list such as ``5s,5m,1h`` (an environment variable); empty parts skipped."""
    return tuple(parse_duration(part) for part in spec.split(",") if part.strip())


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]  # a pydantic field: "5m", "2h"
