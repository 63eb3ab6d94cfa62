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
    candidates: Sequence[tuple[str, str]], caps: Mapping[str, int]
) -> tuple[list[str], list[str]]:
    """Split claimable (id, channel) pairs, oldest first, into the ids to claim now and the
    ids left for the next batch once each channel's cap is reached."""
    taken: dict[str, int] = {}
    now, later = [], []
    for row_id, channel_id in candidates:
        if taken.get(channel_id, 0) < caps.get(channel_id, 1):
            taken[channel_id] = taken.get(channel_id, 0) + 1
            now.append(row_id)
        else:
            later.append(row_id)
    return now, later


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
