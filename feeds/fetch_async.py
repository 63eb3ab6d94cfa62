"""Many conditional GETs at once from one process: ``feeds.fetch`` on one aiohttp session.

A poll worker fetches hundreds of feeds per pass; one event loop does that for a third of the
CPU httpx needs. Every guard of ``feeds.fetch`` holds: the address check at connect time
(``common.guard_aiohttp``), redirects followed here hop by hop, the raw body inflated by the
bounded ``Inflater``, one total deadline per feed (slot waits and the whole body included),
at most ``per_host_concurrency`` requests to a host and ``max_in_flight`` in all. What a
status, a redirect or a body means is ``feeds.fetch_rules``, the same as ``feeds.fetch``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from yarl import URL

from common.errors import FetchError, IngestError
from common.guard import check_url_offline, unwrap_blocked
from common.guard_aiohttp import guarded_connector
from feeds import fetch_rules as rules
from feeds.fetch_rules import DEFAULT_LIMITS, FetchLimits
from feeds.types import FetchResult

_CHUNK = 64 * 1024  # raw bytes per read: the inflater's input, never its output


@dataclass(frozen=True)
class FetchRequest:
    """One feed to fetch, with its validators and its source's own headers."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    headers: Mapping[str, str] | None = None


class AsyncFetcher:
    """One aiohttp session for many concurrent fetches, with every guard of feeds.fetch.

    The per-host cap holds among this fetcher's requests (one fetcher per worker process and
    pass); ``feeds.fetch`` keeps its own, shared by the threads of a process.
    """

    def __init__(
        self,
        limits: FetchLimits = DEFAULT_LIMITS,
        *,
        allow_private: bool = False,
        max_in_flight: int = 256,
    ) -> None:
        if max_in_flight < 1 or limits.per_host_concurrency < 1:
            raise ValueError("max_in_flight and per_host_concurrency must be at least 1")
        self._limits, self._allow_private = limits, allow_private
        self._max_in_flight = max_in_flight
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._hosts: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncFetcher:
        # limit=0: the one cap on requests is max_in_flight, which waits within the deadline
        connector = guarded_connector(allow_private=self._allow_private, limit=0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._limits.connect_timeout),
            auto_decompress=False,  # the raw body goes through the bounded Inflater
            trust_env=False,  # no proxies (they would resolve for us), no .netrc
            cookie_jar=aiohttp.DummyCookieJar(),  # cookies live for one fetch, see fetch()
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """GET ``url``; raise FetchError (BlockedURLError when refused) on anything but 2xx/304,
        exactly as ``feeds.fetch.fetch`` does."""
        if self._session is None:
            raise RuntimeError("AsyncFetcher is used as `async with AsyncFetcher() as f:`")
        deadline = asyncio.get_running_loop().time() + self._limits.timeout
        chain = rules.RedirectChain(url, self._limits.max_redirects)
        hop = _Hop(
            self._session,
            rules.request_headers(etag, last_modified, self._limits, headers),
            aiohttp.CookieJar(unsafe=True),  # as a fresh httpx.Client: kept across hops only
            self._limits,
            deadline,
        )
        while True:  # rules.RedirectChain.follow ends it: loop, too many hops, bad Location
            check_url_offline(chain.url, allow_private=self._allow_private)
            target = _parse(chain.url)
            async with self._slot(target.raw_host or "", deadline):
                result = await hop.send(target, chain)
            if result is not None:
                return result

    @asynccontextmanager
    async def _slot(self, host: str, deadline: float) -> AsyncIterator[None]:
        """A place among a host's ``per_host_concurrency`` and then among ``max_in_flight``:
        a request waiting for its host holds no global place. Both waits end at the deadline."""
        semaphore = self._hosts.get(host)
        if semaphore is None:
            semaphore = self._hosts[host] = asyncio.Semaphore(self._limits.per_host_concurrency)
        await _acquire(semaphore, deadline, rules.busy_host_error(host).message)
        try:
            message = f"too many requests in flight (at most {self._max_in_flight})"
            await _acquire(self._in_flight, deadline, message)
            try:
                yield
            finally:
                self._in_flight.release()
        finally:
            semaphore.release()


async def _acquire(semaphore: asyncio.Semaphore, deadline: float, message: str) -> None:
    try:
        async with asyncio.timeout_at(deadline):
            await semaphore.acquire()
    except TimeoutError:
        raise FetchError(message) from None


def _parse(url: str) -> URL:
    try:
        return URL(url)
    except (ValueError, TypeError) as exc:
        raise rules.invalid_url(str(exc)) from None


@dataclass(frozen=True)
class _Hop:
    """What every hop of one fetch shares: the session, headers, cookies and the deadline."""

    session: aiohttp.ClientSession
    headers: dict[str, str]
    cookies: aiohttp.CookieJar
    limits: FetchLimits
    deadline: float

    async def send(self, url: URL, chain: rules.RedirectChain) -> FetchResult | None:
        """The final result, or None when ``chain`` moved on to a redirect's target."""
        scope = asyncio.timeout_at(self.deadline)
        try:
            async with scope:
                return await self._exchange(url, chain)
        except TimeoutError as exc:
            if scope.expired() or not isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise rules.deadline_error(self.limits) from exc
            raise rules.connect_timeout_error(self.limits) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise _transport_error(exc) from exc

    async def _exchange(self, url: URL, chain: rules.RedirectChain) -> FetchResult | None:
        async with self.session.get(
            url,
            headers=self.headers,
            cookies=self.cookies.filter_cookies(url),
            allow_redirects=False,
        ) as response:
            self.cookies.update_cookies(response.cookies, url)
            status = response.status
            if status in rules.REDIRECTS:
                chain.follow(status, response.headers.get("location"))
                return None
            rules.check_status(status, response.headers)
            body = None if status == 304 else await _read_body(response, self.limits)
            links = response.headers.getall("link", [])
            return rules.fetch_result(chain.url, status, response.headers, links, chain.moved, body)


async def _read_body(response: aiohttp.ClientResponse, limits: FetchLimits) -> bytes:
    try:
        reader = rules.BodyReader(
            response.headers.get("content-encoding", ""),
            response.headers.get("content-length", ""),
            limits,
        )
        async for chunk in response.content.iter_chunked(_CHUNK):
            reader.feed(chunk)
        return reader.body
    except BaseException:
        response.close()  # drop the connection: never hand a half-read one back to the pool
        raise


def _transport_error(exc: aiohttp.ClientError | OSError | ValueError) -> FetchError:
    if (blocked := unwrap_blocked(exc)) is not None:
        return blocked
    if isinstance(exc, aiohttp.InvalidURL):
        return rules.invalid_url(str(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return rules.cannot_connect(str(exc))
    return rules.other_error(exc)


def fetch_many(
    requests: Sequence[FetchRequest],
    limits: FetchLimits = DEFAULT_LIMITS,
    *,
    allow_private: bool = False,
    max_in_flight: int = 256,
) -> list[FetchResult | IngestError]:
    """Sync entry point for worker code: runs an event loop, returns one result or error per
    request, in order. Call it from a thread without a running loop."""
    return asyncio.run(_fetch_all(requests, limits, allow_private, max_in_flight))


async def _fetch_all(
    requests: Sequence[FetchRequest],
    limits: FetchLimits,
    allow_private: bool,
    max_in_flight: int,
) -> list[FetchResult | IngestError]:
    async with AsyncFetcher(
        limits, allow_private=allow_private, max_in_flight=max_in_flight
    ) as fetcher:
        return list(await asyncio.gather(*(_fetch_one(fetcher, r) for r in requests)))


async def _fetch_one(fetcher: AsyncFetcher, request: FetchRequest) -> FetchResult | IngestError:
    """Errors are data here: one request's failure, expected or not, is its answer alone."""
    try:
        return await fetcher.fetch(
            request.url,
            etag=request.etag,
            last_modified=request.last_modified,
            headers=request.headers,
        )
    except IngestError as exc:
        return exc
    except Exception as exc:
        return FetchError(f"unexpected {type(exc).__name__}: {rules.short(str(exc))}")
