"""Alerts as the console and the API show them: the webhook's ``data`` plus triage."""

from __future__ import annotations

from typing import Any

from alerts.render import highlight, webhook_payload
from alerts.types import Alert
from worker.archive import AlertRow
from worker.config import Config
from worker.outbox.messages import alert_of
from worker.outbox.store import AlertFacts


def to_alert(row: AlertRow, config: Config) -> Alert:
    facts = AlertFacts(
        match_id=row.match_id,
        watchlist_id=row.watchlist_id,
        severity=row.severity,
        update_kind=row.update_kind,
        hits=row.hits,
        snippet=row.snippet,
        created_at=row.created_at,
        item_title=row.title,
        item_url=row.url,
        feed_id=row.feed_id,
        published_at=row.published_at,
        fetched_at=row.fetched_at,
        summary=row.summary,
        story_id=row.story_id,
        story_first_seen=row.story_first_seen,
        sources=row.sources,
    )
    return alert_of(config, facts, f"alr_{row.match_id}")


def triage_json(row: AlertRow) -> dict[str, Any]:
    state = row.triage
    return {
        "acknowledged": state.acknowledged_at is not None,
        "acknowledged_at": state.acknowledged_at.isoformat() if state.acknowledged_at else None,
        "acknowledged_by": state.acknowledged_by,
        "assignee": state.assignee,
        "false_positive": state.false_positive,
        "false_positive_reason": state.false_positive_reason,
    }


def api_alert(row: AlertRow, config: Config) -> dict[str, Any]:
    """The webhook payload's ``data``, its language, and the alert's triage state."""
    data = webhook_payload(to_alert(row, config))["data"]
    data["item"]["language"] = row.language
    return {"data": data, "triage": triage_json(row)}


def view(row: AlertRow, config: Config) -> dict[str, Any]:
    """What a page needs of an alert: its fields, its watch-list's title, highlighted text."""
    alert = to_alert(row, config)
    return {
        "row": row,
        "watchlist_title": alert.watchlist.title,
        "snippet": highlight(alert),
        "update": alert.update,
        "also": alert.also_reported_by,
    }


def stream_event(row: AlertRow, config: Config) -> dict[str, Any]:
    """A live alert as the alerts page's script renders it (text only: it sets textContent)."""
    alert = to_alert(row, config)
    return {
        "id": row.match_id,
        "story_id": row.story_id,
        "watchlist": alert.watchlist.title,
        "severity": row.severity,
        "title": row.title,
        "feed": row.feed_id,
        "at": row.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        "snippet": row.snippet,
    }
