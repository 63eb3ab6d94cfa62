"""What a feed fetch decides without touching the network, in one place for both fetchers.

``feeds.fetch`` (httpx, one feed per call) and ``feeds.fetch_async`` (aiohttp, many at once)
differ only in how bytes move. The limits, request headers, redirect bookkeeping, what a status
means, the bounded inflater and every message a fetch records are here, so a feed fails with
the same error whichever path polled it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from common.errors import FetchError
from common.http import parse_retry_after
from feeds.types import FetchResult

REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
_REASONS = {
    401: "authentication required",
    403: "forbidden",
    404: "not found",
    410: "feed gone",
    429: "too many requests",
    503: "service unavailable",
}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 20.0  # total deadline per request, whole body included
    connect_timeout: float = 10.0
    max_bytes: int = 10 * 1024 * 1024  # after decompression
    max_redirects: int = 5
    user_agent: str = "Watchfloor/0.1 (+https://github.com/watchfloor/watchfloor)"
    per_host_concurrency: int = 4


DEFAULT_LIMITS = FetchLimits()


def request_headers(
    etag: str | None,
    last_modified: str | None,
    limits: FetchLimits,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The defaults, the validators, then a source's own headers over them."""
    headers = {
        "User-Agent": limits.user_agent,
        "Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
        "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5",
        "Accept-Encoding": "gzip, deflate",  # only what Inflater bounds
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return {**headers, **(extra or {})}


class RedirectChain:
    """The hops of one fetch: where it is now, whether every hop so far was permanent, and
    the loop and length checks that end it."""

    def __init__(self, url: str, max_redirects: int) -> None:
        self.url = url
        self._start, self._seen, self._permanent = url, {url}, True
        self._hops, self._max = 0, max_redirects

    @property
    def moved(self) -> str | None:
        """The feed's new address when only 301/308 led here, else None."""
        return self.url if self._permanent and self.url != self._start else None

    def follow(self, status: int, location: str | None) -> None:
        """Move to the target of a ``status`` redirect, or raise why the fetch ends here."""
        target = _join(self.url, status, (location or "").strip())
        self._permanent = self._permanent and status in PERMANENT_REDIRECTS
        if target in self._seen:
            raise FetchError(f"redirect loop at {short(target)}")
        self._seen.add(target)
        self.url = target
        self._hops += 1
        if self._hops > self._max:
            raise FetchError(f"too many redirects (more than {self._max})")


def _join(url: str, status: int, location: str) -> str:
    if not location:
        raise FetchError(f"HTTP {status} redirect without a Location")
    try:
        return str(httpx.URL(url).join(location))
    except (httpx.InvalidURL, ValueError):
        raise FetchError(f"invalid redirect Location {short(location)}") from None


def check_status(status: int, headers: Mapping[str, str]) -> None:
    """Raise the status's FetchError unless it is 2xx or 304 (a body, or none to read)."""
    if status != 304 and not 200 <= status < 300:
        raise status_error(status, headers)


def status_error(status: int, headers: Mapping[str, str]) -> FetchError:
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after", ""))
    reason = _REASONS.get(status) or (
        "server error" if status >= 500 else "client error" if status >= 400 else "unexpected"
    )
    message = f"HTTP {status}: {reason}"
    if retry_after is not None:
        message += f" (retry after {retry_after:.0f}s)"
    return FetchError(message, permanent=status == 410, retry_after=retry_after)


def fetch_result(
    url: str,
    status: int,
    headers: Mapping[str, str],
    links: Sequence[str],
    permanent_url: str | None,
    body: bytes | None,
) -> FetchResult:
    """The result of a final answer; ``links`` are all its Link headers, in order."""
    return FetchResult(
        url=url,
        status=status,
        body=body,
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        content_type=headers.get("content-type"),
        permanent_url=permanent_url,
        max_age=max_age(headers.get("cache-control", "")),
        link=", ".join(links) or None,
    )


def max_age(cache_control: str) -> int | None:
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


class Inflater:
    """Undoes gzip/deflate a chunk at a time, never producing more than the room left."""

    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(f"unsupported Content-Encoding {short(encoding)!r}")
        self._raw_deflate_fallback = encoding == "deflate"
        self._zlib = zlib.decompressobj(32 + 15) if encoding not in ("", "identity") else None

    @property
    def identity(self) -> bool:
        return self._zlib is None

    def __call__(self, chunk: bytes, room: int) -> bytes:
        if self._zlib is None:
            return chunk
        try:
            return self._zlib.decompress(chunk, room)
        except zlib.error:
            if not self._raw_deflate_fallback:
                raise FetchError("corrupt compressed body") from None
        # Some servers send raw deflate without the zlib header.
        self._raw_deflate_fallback = False
        self._zlib = zlib.decompressobj(-15)
        return self(chunk, room)


class BodyReader:
    """Collects a raw body chunk by chunk under the cap: a declared length over it is refused
    before reading, and inflation never gets more room than is left."""

    def __init__(self, encoding: str, content_length: str, limits: FetchLimits) -> None:
        self._inflate, self._limits = Inflater(encoding), limits
        declared = content_length.strip()
        if self._inflate.identity and declared.isdigit() and int(declared) > limits.max_bytes:
            raise too_large(limits)
        self._body = bytearray()

    def feed(self, chunk: bytes) -> None:
        room = self._limits.max_bytes + 1 - len(self._body)
        self._body += self._inflate(chunk, room)
        if len(self._body) > self._limits.max_bytes:
            raise too_large(self._limits)

    @property
    def body(self) -> bytes:
        return bytes(self._body)


def read_pushed(body: bytes, encoding: str, limits: FetchLimits = DEFAULT_LIMITS) -> bytes:
    """A body pushed to us (WebSub) under the fetch path's cap and decompression guard. A
    hub that forwards the topic's Content-Encoding over a body it already decoded (as
    flask-websub does) is read as it came."""
    if encoding.strip().lower() in ("gzip", "x-gzip") and not body.startswith(b"\x1f\x8b"):
        encoding = ""
    inflate = Inflater(encoding)
    out = inflate(body, limits.max_bytes + 1)
    if len(out) > limits.max_bytes:
        raise too_large(limits)
    return out


def too_large(limits: FetchLimits) -> FetchError:
    """The one error for a body over the cap, fetched or read from a file (``parse FILE``)."""
    return FetchError(f"body larger than the {limits.max_bytes:,}-byte cap")


def deadline_error(limits: FetchLimits) -> FetchError:
    return FetchError(f"timed out after {limits.timeout:g}s (total deadline)")


def connect_timeout_error(limits: FetchLimits) -> FetchError:
    return FetchError(f"connect timed out after {limits.connect_timeout:g}s")


def busy_host_error(host: str) -> FetchError:
    return FetchError(f"too many concurrent requests to {host}")


def cannot_connect(detail: str) -> FetchError:
    return FetchError(f"cannot connect: {short(detail)}")


def invalid_url(detail: str) -> FetchError:
    return FetchError(f"invalid URL: {short(detail)}", permanent=True)


def other_error(exc: BaseException) -> FetchError:
    """Any other transport failure, named by its class: one line, bounded."""
    return FetchError(f"{type(exc).__name__}: {short(str(exc))}")


def short(text: str, limit: int = 160) -> str:
    """One line, bounded: these messages are stored as ``last_error`` and shown to admins."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
