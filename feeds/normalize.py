"""Turn one raw entry (as a feed format gives it) into a clean, typed FeedItem.

Choices worth knowing:
- Dates are UTC. A date more than a day in the future is dropped (``None``), not clamped to
  the fetch time: a feed that writes the wrong year or zone would otherwise look brand new
  and alert on a first poll, which only alerts on recent dated items.
- The GUID is the entry's id, else its canonical link, else a hash of title and summary.
  Overlong ids and URLs are replaced by a hash / dropped so they fit a database index.
- The canonical URL keeps only http(s), lower-cases scheme and host, drops the default port,
  credentials, fragment and tracking parameters, and keeps the other parameters in order.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit, urlunsplit

from feeds.text import clean_text, collapse
from feeds.types import FeedItem

TITLE_LIMIT = 1_000
SUMMARY_LIMIT = 20_000
AUTHOR_LIMIT = 200
TAG_LIMIT, MAX_TAGS = 100, 50
GUID_LIMIT = 500  # longer ids are hashed: a btree index entry must stay small
URL_LIMIT = 2_000
FUTURE_TOLERANCE = timedelta(days=1)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING = re.compile(
    r"^(?:utm_\w*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|ocid|cmpid"
    r"|igshid|mkt_tok|_hsenc|_hsmi|__twitter_impression|ref_src|at_medium|at_campaign"
    r"|spm|soc_src|soc_trk|wt\.mc_id|icid|ncid|sr_share|smid|smtyp)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class RawEntry:
    """An entry before cleaning; parse builds these from feedparser or JSON Feed data."""

    id: str = ""
    title: str = ""
    title_html: bool = False
    link: str = ""
    summary: str = ""
    summary_html: bool = True
    published: datetime | None = None  # naive means UTC
    author: str = ""
    tags: tuple[str, ...] = ()


def normalize_entry(raw: RawEntry, *, base_url: str = "", now: datetime | None = None) -> FeedItem:
    title = clean_text(raw.title, html=raw.title_html, limit=TITLE_LIMIT)
    summary = clean_text(raw.summary, html=raw.summary_html, limit=SUMMARY_LIMIT)
    url = canonical_url(raw.link, base_url)
    return FeedItem(
        guid=make_guid(raw.id, url, title, summary),
        title=title,
        url=url,
        summary=summary,
        published_at=utc_datetime(raw.published, now),
        fingerprint=fingerprint(title, summary),
        author=clean_text(raw.author, html=False, limit=AUTHOR_LIMIT),
        tags=clean_tags(raw.tags),
    )


def canonical_url(url: str, base: str = "") -> str:
    """A stable form of an item link, or "" when it is not a usable http(s) URL."""
    url = collapse(url or "").replace(" ", "%20")
    if not url:
        return ""
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
        port, host = parts.port, (parts.hostname or "").rstrip(".")
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and not _TRACKING.match(pair.split("=")[0])
    )
    result = urlunsplit((scheme, netloc, parts.path or "/", query, ""))
    return result if len(result) <= URL_LIMIT else ""


def utc_datetime(value: datetime | None, now: datetime | None = None) -> datetime | None:
    """Aware UTC, or None when missing or more than a day in the future."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value > (now or datetime.now(UTC)) + FUTURE_TOLERANCE:
        return None
    return value


def make_guid(entry_id: str, url: str, title: str, summary: str) -> str:
    guid = collapse(entry_id or "")
    if len(guid) > GUID_LIMIT:
        return "sha256:" + _sha256(guid)
    return guid or url or "sha256:" + _sha256(title + "\n" + summary)


def fingerprint(title: str, summary: str) -> str:
    """Same text, same fingerprint: case and whitespace do not count."""
    return _sha256(_fold(title) + "\n" + _fold(summary))


def content_hash(body: bytes) -> str:
    """Hash of a fetched body, to skip parsing when it has not changed."""
    return hashlib.sha256(body).hexdigest()


def clean_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = (clean_text(t, html=False, limit=TAG_LIMIT) for t in tags[: MAX_TAGS * 2])
    return tuple(dict.fromkeys(t for t in cleaned if t))[:MAX_TAGS]


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
