"""HTTP helpers shared by the feed fetcher and the webhook channel.

``Retry-After`` is read once, here, with one cap: a feed server (429/503) and a webhook
receiver (408/429/5xx) both ask us to wait with it, and neither may park our work for longer
than ``MAX_RETRY_AFTER``. What each caller does with the answer stays with the caller.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# One day: long enough to honour a planned maintenance window, short enough that a hostile or
# broken server cannot stop a feed or a channel for weeks. Channels may lower it per entry
# (``retry.max_retry_after``), never raise it.
MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped at
    ``MAX_RETRY_AFTER``; a date in the past is 0; None when absent or unreadable.

    delta-seconds is ASCII digits only (RFC 9110): ``-3``, ``1e12`` or ``١٢٠`` are unreadable.
    """
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
