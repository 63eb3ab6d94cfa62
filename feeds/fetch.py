"""Conditional GET of one feed document, with hard limits and the SSRF guard on every hop.

Redirects are followed here, hop by hop, so each target is checked before it is contacted.
The body is read raw and inflated by us in bounded steps (zlib ``max_length``): a gzip bomb
never produces more than ``max_bytes`` + 1 bytes, even within one network chunk, which
httpx's own decoders do not promise. What a status, a redirect or a body means is decided in
``feeds.fetch_rules``, shared with the concurrent fetcher ``feeds.fetch_async``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from common.errors import BlockedURLError, FetchError
from common.guard import check_url, deadline_scope, guarded_transport, unwrap_blocked
from feeds.fetch_rules import (
    DEFAULT_LIMITS,
    REDIRECTS,
    BodyReader,
    FetchLimits,
    RedirectChain,
    busy_host_error,
    cannot_connect,
    check_status,
    connect_timeout_error,
    deadline_error,
    fetch_result,
    invalid_url,
    other_error,
    read_pushed,
    request_headers,
    too_large,
)
from feeds.types import FetchResult

__all__ = ["DEFAULT_LIMITS", "FetchLimits", "fetch", "read_pushed", "too_large"]


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
    sent = request_headers(etag, last_modified, limits, headers)
    try:
        with deadline_scope(limits.timeout):
            return _follow(client, url, sent, limits, allow_private)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _transport_error(exc, limits) from exc
    finally:
        if owned:
            client.close()


def _follow(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    limits: FetchLimits,
    allow_private: bool,
) -> FetchResult:
    deadline = time.monotonic() + limits.timeout
    timeout = httpx.Timeout(limits.timeout, connect=limits.connect_timeout)
    chain = RedirectChain(url, limits.max_redirects)
    while True:  # RedirectChain.follow ends it: loop, too many hops, bad Location
        check_url(chain.url, allow_private=allow_private)
        with (
            _host_slot(httpx.URL(chain.url).host, limits.per_host_concurrency, deadline),
            client.stream(
                "GET", chain.url, headers=headers, follow_redirects=False, timeout=timeout
            ) as response,
        ):
            if response.status_code not in REDIRECTS:
                return _result(response, chain, limits, deadline)
            chain.follow(response.status_code, response.headers.get("location"))


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
        raise busy_host_error(host)
    try:
        yield
    finally:
        semaphore.release()


def _result(
    response: httpx.Response, chain: RedirectChain, limits: FetchLimits, deadline: float
) -> FetchResult:
    status = response.status_code
    check_status(status, response.headers)
    body = None if status == 304 else _read_body(response, limits, deadline)
    links = response.headers.get_list("link")
    return fetch_result(chain.url, status, response.headers, links, chain.moved, body)


def _read_body(response: httpx.Response, limits: FetchLimits, deadline: float) -> bytes:
    encoding, chunks = response.headers.get("content-encoding", ""), None
    if response.is_stream_consumed:  # a client that pre-read it (e.g. a MockTransport)
        encoding, chunks = "", iter([response.content])
    reader = BodyReader(encoding, response.headers.get("content-length", ""), limits)
    for chunk in chunks or response.iter_raw():
        reader.feed(chunk)
        if time.monotonic() > deadline:
            raise deadline_error(limits)
    return reader.body


def _transport_error(exc: httpx.HTTPError | httpx.InvalidURL, limits: FetchLimits) -> FetchError:
    blocked = unwrap_blocked(exc)
    if isinstance(blocked, BlockedURLError):
        return blocked
    if isinstance(exc, httpx.ConnectTimeout) and "total deadline" not in str(exc):
        return connect_timeout_error(limits)
    if isinstance(exc, httpx.TimeoutException):
        return deadline_error(limits)
    if isinstance(exc, httpx.ConnectError):
        return cannot_connect(str(exc))
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return invalid_url(str(exc))
    return other_error(exc)
