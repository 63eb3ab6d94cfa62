"""When and how a new delivery goes out: now, at the end of quiet hours, in a digest, or
not at all (silenced). Pure: config and a silence in, a plan out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from alerts.channels.base import ChannelConfig
from alerts.controls import hold_until
from alerts.watchlists import WatchList
from worker.models import Silence


@dataclass(frozen=True)
class Plan:
    status: str  # "pending" (send at next_attempt_at), "digest" (batch then), "silenced"
    next_attempt_at: datetime
    note: str | None = None  # shown as the delivery's last_error, so operators see why


def find_silence(
    silences: Sequence[Silence], watchlist_id: str, channel_id: str, now: datetime
) -> Silence | None:
    return next(
        (
            s
            for s in silences
            if s.watchlist_id == watchlist_id
            and s.channel_id in (None, channel_id)
            and s.starts_at <= now < s.ends_at
        ),
        None,
    )


def plan_delivery(
    watchlist: WatchList,
    channel: ChannelConfig | None,
    silence: Silence | None,
    now: datetime,
) -> Plan:
    if silence is not None:
        note = f"silenced until {silence.ends_at:%Y-%m-%d %H:%M} UTC: {silence.reason}".strip()
        return Plan("silenced", now, note.rstrip(": "))
    schedule = watchlist.digest if watchlist.mode == "digest" else None
    if schedule is None and channel is not None and channel.mode == "digest":
        schedule = channel.digest
    if schedule is not None:
        return Plan("digest", schedule.window_end(now), f"in the digest of {schedule}")
    quiet = channel.quiet_hours if channel is not None else None
    release = hold_until(quiet, watchlist.severity, now)
    if release is not None:
        return Plan("pending", release, f"held for quiet hours until {release:%H:%M} UTC")
    return Plan("pending", now)
