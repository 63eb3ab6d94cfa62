"""What an outbox row says: an alert of a match, an ops alert, or a digest of several.

Built from plain facts the store reads (``outbox.store.alert_facts``, ``ops_facts``); the
delivery's id is the message's idempotency key (webhook-id, email Message-ID).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from alerts.types import Alert, AlertItem, AlertStory, AlertWatchlist, Digest
from alerts.updates import update_text
from worker.config import Config
from worker.outbox import store as outbox_store
from worker.outbox.store import AlertFacts, Kind, OpsFacts, OutboxRow

OPS_WATCHLIST = AlertWatchlist(id="watchfloor-ops", title="Watchfloor operations", severity="high")


def alert_of(config: Config, facts: AlertFacts, delivery_id: str) -> Alert:
    watchlist = config.watchlist(facts.watchlist_id)
    story = None
    if facts.story_id is not None and facts.story_first_seen is not None:
        story = AlertStory(
            facts.story_id, facts.story_first_seen, facts.sources, facts.story_languages
        )
    return Alert(
        alert_id=f"alr_{facts.match_id}",
        delivery_id=delivery_id,
        created_at=facts.created_at,
        watchlist=AlertWatchlist(
            id=facts.watchlist_id,
            title=watchlist.title if watchlist else facts.watchlist_id,
            severity=facts.severity,
        ),
        item=AlertItem(
            title=facts.item_title,
            url=facts.item_url,
            feed_id=facts.feed_id,
            published_at=facts.published_at,
            summary=facts.summary,
            language=facts.language,
        ),
        hits=facts.hits,
        snippet=facts.snippet,
        also_reported_by=tuple(s for s in facts.sources if s != facts.feed_id),
        story=story,
        update=update_text(facts.update_kind, facts.feed_id) if facts.update_kind else None,
    )


def ops_alert_of(facts: OpsFacts, delivery_id: str) -> Alert:
    return Alert(
        alert_id=f"ops_{facts.event_id}",
        delivery_id=delivery_id,
        created_at=facts.created_at,
        watchlist=OPS_WATCHLIST,
        item=AlertItem(
            title=facts.title,
            url="",
            feed_id="watchfloor",
            published_at=facts.created_at,
            summary=facts.message,
        ),
        hits=(),
        snippet=facts.message,
    )


@dataclass(frozen=True)
class Built:
    """A message, and when Watchfloor first saw each item in it (for the latency metric)."""

    message: Alert | Digest
    fetched: tuple[datetime, ...]


def build(config: Config, session: Session, row: OutboxRow) -> Built:
    if row.kind is Kind.DIGEST:
        members = [_alert(config, session, m) for m in outbox_store.digest_members(session, row.id)]
        facts = outbox_store.digest_facts(session, row.id)
        alerts = tuple(alert for alert, _ in members)
        digest = Digest(
            row.id, row.channel_id, facts.window_start, facts.window_end, alerts, facts.reason
        )
        return Built(digest, tuple(at for _, at in members if at is not None))
    alert, fetched = _alert(config, session, row)
    return Built(alert, (fetched,) if fetched else ())


def build_many(
    config: Config, session: Session, rows: Sequence[OutboxRow]
) -> dict[str, Built | LookupError]:
    """``build`` for many single deliveries, their alerts' facts read together; a row whose
    match or event is gone gets the LookupError instead."""
    facts = outbox_store.alert_facts_many(session, [r.match_id for r in rows if r.match_id])
    built: dict[str, Built | LookupError] = {}
    for row in rows:
        if row.kind is Kind.DIGEST or row.match_id is None:
            try:
                built[row.id] = build(config, session, row)
            except LookupError as exc:
                built[row.id] = exc
        elif (found := facts.get(row.match_id)) is None:
            built[row.id] = LookupError(f"match {row.match_id} or its item is gone")
        else:
            built[row.id] = Built(alert_of(config, found, row.id), (found.fetched_at,))
    return built


def _alert(config: Config, session: Session, row: OutboxRow) -> tuple[Alert, datetime | None]:
    if row.ops_event_id is not None:
        return ops_alert_of(outbox_store.ops_facts(session, row.ops_event_id), row.id), None
    if row.match_id is None:
        raise LookupError(f"delivery {row.id} names neither a match nor an ops event")
    facts = outbox_store.alert_facts(session, row.match_id)
    return alert_of(config, facts, row.id), facts.fetched_at
