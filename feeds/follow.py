"""Follow a page source's new items: fetch each article and extract its main text.

Fetches go one at a time, with ``delay`` between two fetches of one host, at most
``limit`` per poll, and only where the host's robots.txt allows (unless the source says
``robots: ignore``). Every fetch goes through ``feeds.fetch`` (SSRF guard on every hop,
size and time caps). A server that asks us to wait (429/503, ``Retry-After``) ends the
round for that host. The article's text comes from trafilatura.
"""

from __future__ import annotations

import time
import urllib.robotparser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from urllib.parse import urlsplit

from common.errors import FetchError, IngestError
from feeds.fetch import FetchLimits, fetch
from feeds.normalize import SUMMARY_LIMIT, fingerprint
from feeds.text import clean_text, decode_body
from feeds.types import FeedItem, FetchResult

MAX_TEXT_CHARS = 100_000  # of an article's main text kept for matching


@dataclass(frozen=True, slots=True)
class Followed:
    """One article: its main text, or why there is none. ``retry``: try again next poll
    (the server asked us to wait, or failed for now); otherwise keep the item without it."""

    url: str
    text: str = ""
    error: str | None = None
    retry: bool = False


@dataclass
class Follower:
    limits: FetchLimits
    allow_private: bool = False
    delay: timedelta = timedelta(seconds=1)
    obey_robots: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    _last: dict[str, float] = field(default_factory=dict)  # host -> monotonic time of a fetch
    _robots: dict[str, urllib.robotparser.RobotFileParser | None] = field(default_factory=dict)
    _waiting: set[str] = field(default_factory=set)  # hosts that asked us to wait

    def follow(self, urls: Sequence[str]) -> list[Followed]:
        return [self._one(url) for url in urls]

    def _one(self, url: str) -> Followed:
        host = urlsplit(url).netloc.lower()
        if host in self._waiting:
            return Followed(url, error="the host asked us to wait", retry=True)
        if self.obey_robots and not self._allowed(url, host):
            return Followed(url, error="robots.txt disallows it")
        try:
            result = self._get(url, host)
        except FetchError as exc:
            if exc.retry_after is not None:
                self._waiting.add(host)
            # a refusal (4xx, a blocked address) stays; a wait, a 5xx or a timeout passes
            passing = exc.retry_after is not None or not exc.message.startswith("HTTP 4")
            return Followed(
                url, error=f"{exc.kind}: {exc.message}", retry=passing and not exc.permanent
            )
        except IngestError as exc:
            return Followed(url, error=f"{exc.kind}: {exc.message}")
        text, _ = decode_body(result.body or b"", result.content_type)
        return Followed(url, text=extract_text(text, result.url))

    def _get(self, url: str, host: str) -> FetchResult:
        last = self._last.get(host)
        if last is not None:
            wait = self.delay.total_seconds() - (time.monotonic() - last)
            if wait > 0:
                self.sleep(wait)
        try:
            return fetch(
                url, limits=self.limits, allow_private=self.allow_private, headers=self.headers
            )
        finally:
            self._last[host] = time.monotonic()

    def _allowed(self, url: str, host: str) -> bool:
        if host not in self._robots:
            self._robots[host] = self._read_robots(url, host)
        rules = self._robots[host]
        agent = self.headers.get("User-Agent", self.limits.user_agent)
        return rules is None or rules.can_fetch(agent, url)

    def _read_robots(self, url: str, host: str) -> urllib.robotparser.RobotFileParser | None:
        """The host's rules; None (everything allowed) when it has no robots.txt."""
        parts = urlsplit(url)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        try:
            result = self._get(robots_url, host)
        except FetchError as exc:
            if "HTTP 4" in exc.message:  # no robots.txt: nothing is disallowed
                return None
            rules = urllib.robotparser.RobotFileParser()
            rules.parse(["User-agent: *", "Disallow: /"])  # unreadable now: fetch nothing
            return rules
        text, _ = decode_body(result.body or b"", result.content_type)
        rules = urllib.robotparser.RobotFileParser()
        rules.parse(text.splitlines()[:2000])
        return rules


def extract_text(html: str, url: str = "") -> str:
    """An article page's main text (trafilatura), without menus, footers and scripts."""
    import trafilatura

    text = trafilatura.extract(
        html, url=url or None, include_comments=False, include_tables=True, favor_recall=True
    )
    return (text or "")[:MAX_TEXT_CHARS]


def with_article(item: FeedItem, text: str) -> FeedItem:
    """The item with its article's text after the list's summary: what matching reads."""
    joined = f"{item.summary}\n\n{text}" if item.summary else text
    summary = clean_text(joined, html=False, limit=SUMMARY_LIMIT)
    return replace(item, summary=summary, fingerprint=fingerprint(item.title, summary))
