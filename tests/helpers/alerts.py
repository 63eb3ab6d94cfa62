"""Build ``Alert`` values for channel and render tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from alerts.types import Alert, AlertItem, AlertWatchlist, Hit

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
