"""Typed data of the alerting stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Hit:
    """One term occurrence that made a watch-list fire."""

    term: str  # the matched text as it appears in the item (e.g. "missiles" for missile*)
    field: str  # "title" or "summary"
    start: int  # character span in the item's field text
    end: int
    snippet: str  # plain-text context around the hit


@dataclass(frozen=True, slots=True)
class Match:
    """A watch-list that fired on one item, with why."""

    watchlist_id: str
    hits: tuple[Hit, ...]
    snippet: str  # best snippet, plain text

    @property
    def terms(self) -> list[str]:
        seen: dict[str, None] = {}
        for hit in self.hits:
            seen.setdefault(hit.term, None)
        return list(seen)


@dataclass(frozen=True, slots=True)
class AlertWatchlist:
    id: str
    title: str
    severity: str


@dataclass(frozen=True, slots=True)
class AlertItem:
    title: str
    url: str
    feed_id: str
    published_at: datetime | None
    summary: str
    language: str | None = None  # ISO 639-1 (feeds/language.py); None when it was unsure


@dataclass(frozen=True, slots=True)
class AlertStory:
    """The story an alert's item belongs to: the same news from several sources."""

    id: int
    first_seen: datetime
    sources: tuple[str, ...]  # feed ids, first reporter first
    languages: tuple[str, ...] = ()  # detected languages of its items, first reported first


@dataclass(frozen=True, slots=True)
class Alert:
    """Everything a channel needs to tell a person about one match.

    ``delivery_id`` is the idempotency key: the webhook-id and the email Message-ID,
    the same on every retry of one delivery.
    """

    alert_id: str
    delivery_id: str
    created_at: datetime
    watchlist: AlertWatchlist
    item: AlertItem
    hits: tuple[Hit, ...]
    snippet: str
    also_reported_by: tuple[str, ...] = field(default_factory=tuple)
    story: AlertStory | None = None
    update: str | None = None  # why a story already alerted on is sent again; None: first alert


@dataclass(frozen=True, slots=True)
class Digest:
    """Several alerts for one channel sent as one message: a digest window, or the overflow
    of a rate limit. ``digest_id`` is the idempotency key (Message-ID, webhook-id)."""

    digest_id: str
    channel_id: str
    window_start: datetime
    window_end: datetime
    alerts: tuple[Alert, ...]
    reason: str = "digest"  # "digest" (scheduled) or "rate-limit" (burst overflow)
