"""Conditional GET of one feed document, with hard limits and the SSRF guard on every hop.

Redirects are followed here, hop by hop, so each target is checked before it is contacted.
The body is read raw and inflated by us in bounded steps (zlib ``max_length``): a gzip bomb
never produces more than ``max_bytes`` + 1 bytes, even within one network chunk, which
httpx's own decoders do not promise.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from common.errors import BlockedURLError, FetchError
from common.guard import check_url, deadline_scope, guarded_transport, unwrap_blocked
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


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: FetchLimits = DEFAULT_LIMITS,
    allow_private: bool = False,
    client: httpx.Client | None = None,
    headers: Mapping[str, str] | None = None,
) -> FetchResult:
    """GET ``url``; raise FetchError (BlockedURLError when refused) on anything but 2xx/304.
    ``headers`` (a source's own, e.g. its User-Agent) go over the defaults.

    A caller-supplied ``client`` should use ``guarded_transport``: otherwise only the
    pre-flight ``check_url`` protects it and a DNS rebind could get through.
    """
    owned = client is None
    if client is None:
        transport = guarded_transport(allow_private=allow_private)
        client = httpx.Client(transport=transport, trust_env=False)  # no proxies, no .netrc
    request_headers = {**_request_headers(etag, last_modified, limits), **(headers or {})}
    try:
        with deadline_scope(limits.timeout):
            return _follow(client, url, request_headers, limits, allow_private)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _transport_error(exc, limits) from exc
    finally:
        if owned:
            client.close()


def _request_headers(
    etag: str | None, last_modified: str | None, limits: FetchLimits
) -> dict[str, str]:
    headers = {
        "User-Agent": limits.user_agent,
        "Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
        "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5",
        "Accept-Encoding": "gzip, deflate",  # only what _Inflater bounds
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _follow(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    limits: FetchLimits,
    allow_private: bool,
) -> FetchResult:
    deadline = time.monotonic() + limits.timeout
    timeout = httpx.Timeout(limits.timeout, connect=limits.connect_timeout)
    seen, permanent, start = {url}, True, url
    for _ in range(limits.max_redirects + 1):
        check_url(url, allow_private=allow_private)
        with (
            _host_slot(httpx.URL(url).host, limits.per_host_concurrency, deadline),
            client.stream(
                "GET", url, headers=headers, follow_redirects=False, timeout=timeout
            ) as response,
        ):
            if response.status_code not in REDIRECTS:
                moved = url if permanent and url != start else None
                return _result(response, url, moved, limits, deadline)
            target = _location(response)
        permanent = permanent and response.status_code in PERMANENT_REDIRECTS
        if target in seen:
            raise FetchError(f"redirect loop at {_short(target)}")
        seen.add(target)
        url = target
    raise FetchError(f"too many redirects (more than {limits.max_redirects})")


def _location(response: httpx.Response) -> str:
    location = response.headers.get("location", "").strip()
    if not location:
        raise FetchError(f"HTTP {response.status_code} redirect without a Location")
    try:
        return str(response.url.join(location))
    except (httpx.InvalidURL, ValueError):
        raise FetchError(f"invalid redirect Location {_short(location)}") from None


_semaphores: weakref.WeakValueDictionary[tuple[str, int], threading.BoundedSemaphore] = (
    weakref.WeakValueDictionary()
)
_semaphores_lock = threading.Lock()


@contextmanager
def _host_slot(host: str, size: int, deadline: float) -> Iterator[None]:
    """At most ``size`` requests to one host at once from this process; wait until the deadline."""
    with _semaphores_lock:
        semaphore = _semaphores.get((host, size))
        if semaphore is None:
            semaphore = _semaphores[(host, size)] = threading.BoundedSemaphore(size)
    if not semaphore.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise FetchError(f"too many concurrent requests to {host}")
    try:
        yield
    finally:
        semaphore.release()


def _result(
    response: httpx.Response,
    url: str,
    permanent_url: str | None,
    limits: FetchLimits,
    deadline: float,
) -> FetchResult:
    status = response.status_code
    if status != 304 and not 200 <= status < 300:
        raise _status_error(response)
    return FetchResult(
        url=url,
        status=status,
        body=None if status == 304 else _read_body(response, limits, deadline),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        content_type=response.headers.get("content-type"),
        permanent_url=permanent_url,
        max_age=_max_age(response.headers.get("cache-control", "")),
        link=", ".join(response.headers.get_list("link")) or None,
    )


def _status_error(response: httpx.Response) -> FetchError:
    status = response.status_code
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after", ""))
    reason = _REASONS.get(status) or (
        "server error" if status >= 500 else "client error" if status >= 400 else "unexpected"
    )
    message = f"HTTP {status}: {reason}"
    if retry_after is not None:
        message += f" (retry after {retry_after:.0f}s)"
    return FetchError(message, permanent=status == 410, retry_after=retry_after)


def _max_age(cache_control: str) -> int | None:
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


class _Inflater:
    """Undoes gzip/deflate a chunk at a time, never producing more than the room left."""

    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(f"unsupported Content-Encoding {_short(encoding)!r}")
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


def _read_body(response: httpx.Response, limits: FetchLimits, deadline: float) -> bytes:
    inflate, chunks = _Inflater(response.headers.get("content-encoding", "")), None
    if response.is_stream_consumed:  # a client that pre-read it (e.g. a MockTransport)
        inflate, chunks = _Inflater(""), iter([response.content])
    declared = response.headers.get("content-length", "")
    if inflate.identity and declared.isdigit() and int(declared) > limits.max_bytes:
        raise too_large(limits)
    body = bytearray()
    for chunk in chunks or response.iter_raw():
        body += inflate(chunk, limits.max_bytes + 1 - len(body))
        if len(body) > limits.max_bytes:
            raise too_large(limits)
        if time.monotonic() > deadline:
            raise FetchError(f"timed out after {limits.timeout:g}s (total deadline)")
    return bytes(body)


def read_pushed(body: bytes, encoding: str, limits: FetchLimits = DEFAULT_LIMITS) -> bytes:
    """A body pushed to us (WebSub) under the fetch path's cap and decompression guard. A
    hub that forwards the topic's Content-Encoding over a body it already decoded (as
    flask-websub does) is read as it came."""
    if encoding.strip().lower() in ("gzip", "x-gzip") and not body.startswith(b"\x1f\x8b"):
        encoding = ""
    inflate = _Inflater(encoding)
    out = inflate(body, limits.max_bytes + 1)
    if len(out) > limits.max_bytes:
        raise too_large(limits)
    return out


def too_large(limits: FetchLimits) -> FetchError:
    """The one error for a body over the cap, fetched or read from a file (``parse FILE``)."""
    return FetchError(f"body larger than the {limits.max_bytes:,}-byte cap")


def _transport_error(exc: httpx.HTTPError | httpx.InvalidURL, limits: FetchLimits) -> FetchError:
    blocked = unwrap_blocked(exc)
    if isinstance(blocked, BlockedURLError):
        return blocked
    if isinstance(exc, httpx.ConnectTimeout) and "total deadline" not in str(exc):
        return FetchError(f"connect timed out after {limits.connect_timeout:g}s")
    if isinstance(exc, httpx.TimeoutException):
        return FetchError(f"timed out after {limits.timeout:g}s (total deadline)")
    if isinstance(exc, httpx.ConnectError):
        return FetchError(f"cannot connect: {_short(str(exc))}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return FetchError(f"invalid URL: {_short(str(exc))}", permanent=True)
    return FetchError(f"{type(exc).__name__}: {_short(str(exc))}")


def _short(text: str, limit: int = 160) -> str:
    """One line, bounded: these messages are stored as ``last_error`` and shown to admins."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
