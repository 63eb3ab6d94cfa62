"""The decisions of a delivery batch, as pure functions: which rows to claim now, which a
rate limit holds, and how a batch's outcomes move each channel's consecutive-error count.

A deliver worker takes many deliveries at once (``worker/outbox/batch.py``) and sends each
channel's in creation order, ``concurrency`` at a time. These functions decide; that module
claims, sends and records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

BATCH_MAX = 100  # deliveries per batch message, as the poller and the sweep enqueue them


def channel_cap(concurrency: int, send_seconds: float, lease: timedelta) -> int:
    """How many of one channel's rows a batch claims: enough that its lanes finish within
    half the lease even when every send runs to its timeout, so no claimed row is taken
    over (and sent twice) while it waits its turn."""
    per_lane = int(lease.total_seconds() / 2 // max(send_seconds, 0.001))
    return max(1, concurrency * max(1, per_lane))


def pick(
    candidates: Sequence[tuple[str, str]],
    caps: Mapping[str, int],
    widths: Mapping[str, int] | None = None,
    lanes: int | None = None,
) -> tuple[list[str], list[str]]:
    """Split claimable (id, channel) pairs, oldest first, into the ids to claim now and the
    ids left for the next batch: once each channel's cap is reached, and for the channels
    past ``lanes`` sending lanes (a channel takes ``widths[channel]``, the first always
    goes): a cap holds only while each lane has a thread of its own."""
    taken: dict[str, int] = {}
    used = 0
    now, later = [], []
    for row_id, channel_id in candidates:
        if channel_id not in taken:
            width = (widths or {}).get(channel_id, 1)
            if lanes is not None and taken and used + width > lanes:
                later.append(row_id)
                continue
            taken[channel_id], used = 0, used + width
        if taken[channel_id] < caps.get(channel_id, 1):
            taken[channel_id] += 1
            now.append(row_id)
        else:
            later.append(row_id)
    return now, later


def may_start(elapsed: float, send_seconds: float, lease: timedelta) -> bool:
    """Whether a claimed row's send may still start ``elapsed`` seconds after the claim: it
    must end within half the lease even if it runs to its timeout, or the lease could run
    out under it and another worker send the row again. (A channel whose timeout is over
    half the lease still starts sends in the lease's first tenth.)"""
    half = lease.total_seconds() / 2
    return elapsed <= max(half - send_seconds, half / 5)


def allowed_now(limit_count: int, recent: int, waiting: int) -> int:
    """Of ``waiting`` rows, how many a rate limit of ``limit_count`` lets go out when
    ``recent`` were sent (or are being sent) in its window; the rest are held."""
    return max(0, min(waiting, limit_count - recent))


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The channel answered: its consecutive-error count goes back to 0."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class FailedAt:
    """The send at ``index`` (of the batch's results) failed: one more consecutive error."""

    channel_id: str
    index: int


ChannelStep = Succeeded | FailedAt


def channel_steps(results: Sequence[tuple[str, bool]]) -> list[ChannelStep]:
    """The channel-state writes for a batch's (channel id, sent?) results in the order they
    finished: a run of successes is one write, made before the channel's next failure so
    the count reads as it would have one send at a time."""
    pending: dict[str, bool] = {}
    steps: list[ChannelStep] = []
    for index, (channel_id, sent) in enumerate(results):
        if sent:
            pending[channel_id] = True
            continue
        if pending.pop(channel_id, False):
            steps.append(Succeeded(channel_id))
        steps.append(FailedAt(channel_id, index))
    steps += [Succeeded(channel_id) for channel_id in pending]
    return steps
