"""Typed data that leaves the ingestion stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One normalized entry of a feed.

    Every text field is a plain ``str`` with HTML stripped and control characters
    removed; ``published_at`` is timezone-aware UTC or ``None`` when the feed gave none.
    """

    guid: str
    title: str
    url: str
    summary: str
    published_at: datetime | None
    fingerprint: str
    author: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def language(self) -> str | None:
        """ISO 639-1 code of its title and summary (feeds/language.py), None when unsure."""
        from feeds.language import detect_language

        return detect_language(self.title, self.summary)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What a feed document yields: its items plus hints for the poller."""

    title: str
    items: tuple[FeedItem, ...]
    ttl_seconds: int | None = None
    warning: str | None = None  # a recoverable parse problem (feedparser's "bozo")
    hubs: tuple[str, ...] = ()  # WebSub hubs the document names (feeds/websub.py)
    self_url: str | None = None  # the feed's own URL as it names it (the WebSub topic)
    # One digest per item in the document, in document order (feeds/parse.py item_digest):
    # pass them back as ``skip`` next poll. Empty when the items could not be delimited.
    digests: tuple[str, ...] = ()
    total_items: int = 0  # items in the document, the skipped and capped ones included
    # The digests of unseen items the cap left unread (a subset of ``digests``): after a
    # first poll they are the backlog, seen; after a later one, a burst still to read.
    capped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Outcome of one conditional GET that did not fail."""

    url: str  # the URL finally answered, after redirects
    status: int
    body: bytes | None  # None on 304
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    permanent_url: str | None = None  # set when a 301/308 chain says the feed moved
    max_age: int | None = None  # Cache-Control max-age, seconds
    link: str | None = None  # the Link header (RFC 8288): where a WebSub hub is named

    @property
    def not_modified(self) -> bool:
        return self.status == 304
