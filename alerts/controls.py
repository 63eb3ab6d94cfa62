"""Per-channel delivery controls: digests, rate limits, quiet hours and retry backoff.

Pure answers to "when may this go out?" over aware datetimes. The worker reads the clock and
the database; these functions only compute instants, so every worker (and a restarted one)
reaches the same answer and no timer state has to survive a crash.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    field_validator,
    model_validator,
)

from common.durations import Duration, parse_duration
from common.http import MAX_RETRY_AFTER

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Standard Webhooks / Svix: immediately, 5s, 5m, 30m, 2h, 5h, 10h, 10h; stretched with more
# 10h steps so a receiver that is down over a long weekend still gets its alerts (~2.8 days).
DEFAULT_RETRY_SCHEDULE: tuple[timedelta, ...] = tuple(
    parse_duration(d) for d in ("5s", "5m", "30m", "2h", "5h", *("10h",) * 6)
)
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*(\S+)\s*")
_EVERY = re.compile(r"every (\S+)", re.IGNORECASE)
_AT = re.compile(r"(?:(daily)|weekly on (\S+)) at (\S+)(?: (\S+))?", re.IGNORECASE)
_DIGEST_FORMS = "hourly, every 15m, daily at 07:30 [Europe/Berlin], weekly on monday at 08:00 [UTC]"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass an aware one (e.g. UTC)")
    return moment


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from None


def _clock(value: object) -> time:
    """Read "07:30". An int is what YAML 1.1 makes of an unquoted 22:00 (base-60 minutes)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str) and (m := _CLOCK.fullmatch(value.strip())):
        return time(int(m[1]), int(m[2]))
    raise ValueError(f'not a time of day: {value!r} (use HH:MM, e.g. "07:30")')


def _wall(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A local wall time as UTC: a time skipped by DST moves on by the gap, a repeated one
    takes its first occurrence, so each day yields exactly one instant."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


class QuietHours(BaseModel):
    """Hold alerts from ``start`` to ``end`` local time; wraps midnight when start > end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Annotated[time, BeforeValidator(_clock)]
    end: Annotated[time, BeforeValidator(_clock)]
    timezone: Annotated[str, AfterValidator(lambda name: _zone(name).key)] = "UTC"

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet_hours start and end are equal; remove quiet_hours instead")
        return self

    def release_at(self, now: datetime) -> datetime | None:
        """Quiet hours as UTC intervals (so DST nights are one hour shorter or longer)."""
        tz = _zone(self.timezone)
        today = _aware(now).astimezone(tz).date()
        for day in (today - timedelta(days=1), today):
            end_day = day if self.start < self.end else day + timedelta(days=1)
            start, end = _wall(day, self.start, tz), _wall(end_day, self.end, tz)
            if start <= now < end:
                return end
        return None


def hold_until(quiet: QuietHours | None, severity: str, now: datetime) -> datetime | None:
    """When a held alert may go out; None to send now. Critical alerts break through."""
    if quiet is None or severity == "critical":
        return None
    return quiet.release_at(now)


class RateLimit(BaseModel):
    """At most ``count`` alerts per ``per``; the rest of a burst goes out grouped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1)
    per: Duration

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not (m := _RATE.fullmatch(value)):
            raise ValueError(f"rate_limit {value!r}: write COUNT/PERIOD, e.g. 20/1m")
        return {"count": int(m[1]), "per": m[2]}

    @field_validator("per")
    @classmethod
    def _per(cls, per: timedelta) -> timedelta:
        if per < timedelta(seconds=1):
            raise ValueError("rate_limit period must be at least 1s")
        return per

    def allows(self, recent: int) -> bool:
        """``recent``: alerts sent or being sent on the channel in the last ``per``."""
        return recent < self.count

    def since(self, now: datetime) -> datetime:
        """A sliding window: a burst that straddles a clock boundary is still one burst."""
        return _aware(now) - self.per

    def release_at(self, now: datetime, burst_release: datetime | None) -> datetime:
        """Held alerts of one burst share one release time, so they go out as one message."""
        return burst_release if burst_release is not None else _aware(now) + self.per


@dataclass(frozen=True)
class DigestSchedule:
    """When digests go out: every N (epoch-aligned) or at a local time each day or week."""

    text: str
    every: timedelta | None = None
    at: time | None = None
    weekday: int | None = None  # 0 = Monday; None = daily
    timezone: str = "UTC"

    @classmethod
    def parse(cls, text: str) -> DigestSchedule:
        spec = " ".join(str(text).split())
        if spec.lower() == "hourly":
            return cls(spec, every=timedelta(hours=1))
        if m := _EVERY.fullmatch(spec):
            every = parse_duration(m[1])
            if every < timedelta(minutes=1):
                raise ValueError(f"digest {text!r}: the period must be at least 1m")
            return cls(spec, every=every)
        if m := _AT.fullmatch(spec):
            daily, day, at, tz = m.groups()
            if not daily and day.lower() not in WEEKDAYS:
                raise ValueError(f"digest {text!r}: unknown weekday {day!r} (monday..sunday)")
            weekday = None if daily else WEEKDAYS.index(day.lower())
            return cls(spec, at=_clock(at), weekday=weekday, timezone=_zone(tz or "UTC").key)
        raise ValueError(f"digest schedule {text!r} not understood; use {_DIGEST_FORMS}")

    def __str__(self) -> str:
        return self.text

    def _sends(self, around: datetime, step: int) -> list[datetime]:
        """Scheduled send times on the local days from ``around``, stepping forward or back."""
        assert self.at is not None
        tz = _zone(self.timezone)
        day0 = _aware(around).astimezone(tz).date()
        days = (day0 + timedelta(days=step * k) for k in range(9))
        return [_wall(day, self.at, tz) for day in days if self.weekday in (None, day.weekday())]

    def window_end(self, at: datetime) -> datetime:
        """First send strictly after ``at``: the digest a match recorded at ``at`` joins."""
        if self.every is not None:
            return EPOCH + ((_aware(at) - EPOCH) // self.every + 1) * self.every
        return next(send for send in self._sends(at, 1) if send > at)

    def window_start(self, end: datetime) -> datetime:
        """The send before ``end``: the digest sent at ``end`` holds matches recorded in
        [start, end)."""
        if self.every is not None:
            return EPOCH + ((_aware(end) - EPOCH - timedelta.resolution) // self.every) * self.every
        return next(send for send in self._sends(end, -1) if send < end)


def _digest(value: object) -> DigestSchedule:
    if isinstance(value, DigestSchedule):
        return value
    if not isinstance(value, str):
        raise ValueError(f"digest must be a schedule string ({_DIGEST_FORMS})")
    return DigestSchedule.parse(value)


DigestSpec = Annotated[DigestSchedule, PlainValidator(_digest), PlainSerializer(str)]


class RetryPolicy(BaseModel):
    """Delays between attempts; YAML may give the bare list, e.g. ``retry: [5s, 5m, 1h]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: tuple[Duration, ...] = DEFAULT_RETRY_SCHEDULE
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    # a receiver's Retry-After may slow us down, but not park alerts for weeks; a channel may
    # lower this, and raising it past the parser's cap (common.http) changes nothing
    max_retry_after: Duration = timedelta(seconds=MAX_RETRY_AFTER)

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return {"schedule": value}
        if not isinstance(value, dict | RetryPolicy):
            raise ValueError("retry must be a list of delays, e.g. [5s, 5m, 1h], or a mapping")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, delays: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if short := [i for i, d in enumerate(delays) if d < timedelta(seconds=1)]:
            raise ValueError(f"retry delay #{short[0] + 1} is under 1s")
        return delays

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    def delay(
        self,
        attempts: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> timedelta | None:
        """Wait before attempt ``attempts + 1``; None once all attempts are spent (dead)."""
        if attempts < 0:
            raise ValueError(f"attempts must be >= 0, got {attempts}")
        if attempts >= self.max_attempts:
            return None
        base = (timedelta(0), *self.schedule)[attempts]
        wait = base * (1 + self.jitter * (2 * rand() - 1))
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            wait = max(wait, min(timedelta(seconds=retry_after), self.max_retry_after))
        return wait


class ChannelControls(BaseModel):
    """The optional delivery keys of a channel entry (a base class for channel configs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["immediate", "digest"] = "immediate"
    digest: DigestSpec | None = None
    rate_limit: RateLimit | None = None
    quiet_hours: QuietHours | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    # sends in flight at once to this channel from one worker process, dispatched in the
    # order the alerts were made; 1 keeps the order strict at the receiver
    concurrency: int = Field(default=4, ge=1, le=32)

    @model_validator(mode="after")
    def _digest_matches_mode(self) -> ChannelControls:
        if self.mode == "digest" and self.digest is None:
            raise ValueError("mode digest needs a schedule, e.g. digest: daily at 07:30 UTC")
        if self.mode == "immediate" and self.digest is not None:
            raise ValueError("digest is set but mode is immediate: add mode: digest")
        return self
