"""Build ``Alert`` and ``Digest`` values for channel and render tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from alerts.types import Alert, AlertItem, AlertWatchlist, Digest, Hit

TITLE = "Pyongyang fires ballistic missile into the sea"
SUMMARY = "North Korea launched a ballistic missile on Tuesday, officials said."


def make_alert(*, title: str = TITLE, summary: str = SUMMARY, **overrides: Any) -> Alert:
    """An alert whose hits point at real spans of ``title``/``summary`` when those contain them."""
    hits = []
    for term, field, text in (
        ("ballistic missile", "title", title),
        ("North Korea", "summary", summary),
    ):
        start = text.lower().find(term.lower())
        if start >= 0:
            end = start + len(term)
            hits.append(Hit(term, field, start, end, text[max(0, start - 20) : end + 20]))
    alert = Alert(
        alert_id="alr_1",
        delivery_id="dlv_0f3c2a",
        created_at=datetime(2024, 5, 7, 9, 30, tzinfo=UTC),
        watchlist=AlertWatchlist("missile-tests", "Missile tests", "high"),
        item=AlertItem(
            title=title,
            url="https://news.example.org/2024/05/07/missile",
            feed_id="wire",
            published_at=datetime(2024, 5, 7, 9, 12, tzinfo=UTC),
            summary=summary,
        ),
        hits=tuple(hits),
        snippet=f"{title} — {summary}",
    )
    return replace(alert, **overrides)


CYBER = AlertWatchlist("cyber", "Cyber attacks", "critical")
SANCTIONS = AlertWatchlist("sanctions", "Sanctions", "low")


def digest_alerts() -> tuple[Alert, ...]:
    """Four alerts on three watch-lists, deliberately not in severity order."""
    return (
        make_alert(alert_id="alr_1", delivery_id="dlv_1"),
        make_alert(
            alert_id="alr_2",
            delivery_id="dlv_2",
            title="Sanctions widened over ballistic missile tests",
            watchlist=SANCTIONS,
        ),
        make_alert(
            alert_id="alr_3",
            delivery_id="dlv_3",
            title="Ballistic missile maker hit by ransomware",
            watchlist=CYBER,
            also_reported_by=("ap", "reuters"),
        ),
        make_alert(alert_id="alr_4", delivery_id="dlv_4", title="Second ballistic missile launch"),
    )


def make_digest(*alerts: Alert, **overrides: Any) -> Digest:
    """A digest of ``alerts`` (default: ``digest_alerts()``) for window 07:30-08:30 UTC."""
    digest = Digest(
        digest_id="dig_7b1e",
        channel_id="desk",
        window_start=datetime(2024, 5, 7, 7, 30, tzinfo=UTC),
        window_end=datetime(2024, 5, 7, 8, 30, tzinfo=UTC),
        alerts=alerts or digest_alerts(),
    )
    return replace(digest, **overrides)
