"""Both fetchers against a real loopback server: limits, redirects, statuses, conditional GET.

Every test that takes ``get`` or ``fetcher`` runs twice, against feeds.fetch.fetch (httpx) and
feeds.fetch_async.AsyncFetcher (aiohttp), so both keep one set of semantics.
"""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from common import guard
from common.errors import BlockedURLError, FetchError
from common.http import MAX_RETRY_AFTER
from feeds.fetch import DEFAULT_LIMITS, FetchLimits, fetch
from feeds.fetch_async import AsyncFetcher
from feeds.types import FetchResult
from tests.feeds.loopback import RSS, LoopbackServer, Route, send

MB = 1024 * 1024
Fetch = Callable[..., FetchResult]  # fetch(url, **kwargs), as feeds.fetch.fetch
Get = Callable[..., FetchResult]  # get(path, **kwargs) on the test's server, private allowed


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


def fetch_async_once(
    url: str, *, limits: FetchLimits = DEFAULT_LIMITS, allow_private: bool = False, **kw: Any
) -> FetchResult:
    """One fetch through a fresh AsyncFetcher, raising as feeds.fetch.fetch does."""

    async def run() -> FetchResult:
        async with AsyncFetcher(limits, allow_private=allow_private) as fetcher:
            return await fetcher.fetch(url, **kw)

    return asyncio.run(run())


@pytest.fixture(params=[fetch, fetch_async_once], ids=["httpx", "aiohttp"])
def fetcher(request: pytest.FixtureRequest) -> Fetch:
    """Both fetchers, held to the same checks."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def get(server: LoopbackServer, fetcher: Fetch) -> Get:
    def go(path: str, **kwargs: Any) -> FetchResult:
        return fetcher(server.url(path), allow_private=True, **kwargs)

    return go


def test_plain_200_returns_body_validators_and_max_age(server: LoopbackServer, get: Get) -> None:
    headers = {
        "ETag": '"v1"',
        "Last-Modified": "Mon, 02 Jan 2006 15:04:05 GMT",
        "Content-Type": "application/rss+xml; charset=utf-8",
        "Cache-Control": "public, max-age=600",
    }
    server.routes["/feed.xml"] = lambda h: send(h, 200, RSS, headers)
    result = get("/feed.xml")
    assert (result.status, result.body, result.etag) == (200, RSS, '"v1"')
    assert result.last_modified == "Mon, 02 Jan 2006 15:04:05 GMT"
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.max_age == 600
    assert result.permanent_url is None
    sent = server.requests[0][1]
    assert sent["User-Agent"].startswith("Watchfloor/")
    assert sent["Accept-Encoding"] == "gzip, deflate"


def test_conditional_get_gets_304_without_body(server: LoopbackServer, get: Get) -> None:
    def route(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == '"v1"':
            send(h, 304, headers={"ETag": '"v1"'})
        else:
            send(h, 200, RSS, {"ETag": '"v1"'})

    server.routes["/feed.xml"] = route
    result = get("/feed.xml", etag='"v1"', last_modified="Mon, 02 Jan 2006 15:04:05 GMT")
    assert result.not_modified and result.body is None and result.etag == '"v1"'
    assert server.requests[0][1]["If-Modified-Since"] == "Mon, 02 Jan 2006 15:04:05 GMT"


def test_drip_feed_is_cut_at_the_total_deadline(server: LoopbackServer, get: Get) -> None:
    """One byte every 50 ms never trips a per-read timeout; the total deadline must."""
    dripped = []

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(400):  # at most 20 s, and the client leaves long before
            h.wfile.write(b"x")
            h.wfile.flush()
            dripped.append(1)
            time.sleep(0.05)

    server.routes["/slow"] = route
    with pytest.raises(FetchError, match=r"timed out after 0\.5s"):
        get("/slow", limits=FetchLimits(timeout=0.5, connect_timeout=0.5))
    assert 0 < len(dripped) < 400


def test_headers_that_never_come_hit_the_deadline(server: LoopbackServer, get: Get) -> None:
    gate = threading.Event()
    server.routes["/hang"] = lambda h: gate.wait(10)
    try:
        with pytest.raises(FetchError, match="timed out"):
            get("/hang", limits=FetchLimits(timeout=0.3))
    finally:
        gate.set()


def _stream(h: BaseHTTPRequestHandler, total: int, headers: dict[str, str]) -> None:
    h.send_response(200)
    for name, value in headers.items():
        h.send_header(name, value)
    h.end_headers()
    chunk = b"<!-- padding -->" * 4096
    for _ in range(total // len(chunk)):
        h.wfile.write(chunk)


def test_50_mb_body_without_length_is_cut_at_the_cap(server: LoopbackServer, get: Get) -> None:
    server.routes["/big"] = lambda h: _stream(h, 50 * MB, {"Connection": "close"})
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="larger than the 10,485,760-byte cap") as caught:
            get("/big")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not caught.value.permanent
    assert peak < 16 * MB  # the 10 MB cap and a little: never the 50 MB sent


def test_declared_oversize_body_is_refused_before_reading(server: LoopbackServer, get: Get) -> None:
    server.routes["/big"] = lambda h: _stream(h, 50 * MB, {"Content-Length": str(50 * MB)})
    with pytest.raises(FetchError, match="larger than"):
        get("/big")


def test_endless_chunked_stream_is_cut_at_the_cap(server: LoopbackServer, get: Get) -> None:
    sent = []

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"A" * 65536
        for _ in range(2000):  # 128 MB at most; the client hangs up at 1 MB
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent.append(len(chunk))

    server.routes["/endless"] = route
    with pytest.raises(FetchError, match="larger than the 1,048,576-byte cap"):
        get("/endless", limits=FetchLimits(max_bytes=MB))
    assert sum(sent) < 2000 * 65536


def _gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MB)
    return b"".join(compressor.compress(block) for _ in range(size // MB)) + compressor.flush()


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip"])
def test_gzip_bomb_stops_at_the_cap_without_inflating_it(
    server: LoopbackServer, encoding: str, get: Get
) -> None:
    bomb = _gzip_of_zeros(100 * MB)
    headers = {"Content-Encoding": encoding, "Content-Type": "application/rss+xml"}
    server.routes["/bomb"] = lambda h: send(h, 200, bomb, headers)
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="larger than the 1,048,576-byte cap"):
            get("/bomb", limits=FetchLimits(max_bytes=MB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(bomb) < MB  # it really is a bomb: ~100 kB that inflates to 100 MB
    assert peak < 8 * MB  # never inflated a whole network chunk (that would be ~64 MB)


def test_gzip_and_deflate_bodies_are_inflated(server: LoopbackServer, get: Get) -> None:
    gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    server.routes["/gz"] = lambda h: send(
        h, 200, gz.compress(RSS) + gz.flush(), {"Content-Encoding": "gzip"}
    )
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    server.routes["/raw"] = lambda h: send(
        h, 200, raw.compress(RSS) + raw.flush(), {"Content-Encoding": "deflate"}
    )
    server.routes["/zlib"] = lambda h: send(
        h, 200, zlib.compress(RSS), {"Content-Encoding": "deflate"}
    )
    assert [get(p).body for p in ("/gz", "/raw", "/zlib")] == [RSS, RSS, RSS]


def test_unsupported_content_encoding_is_an_error(server: LoopbackServer, get: Get) -> None:
    server.routes["/br"] = lambda h: send(h, 200, b"\x1b\x00", {"Content-Encoding": "br"})
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
        get("/br")


def _redirect(status: int, target: str) -> Route:
    return lambda h: send(h, status, headers={"Location": target})


def test_redirect_loop_is_an_error(server: LoopbackServer, get: Get) -> None:
    server.routes["/a"] = _redirect(302, "/b")
    server.routes["/b"] = _redirect(302, "/a")
    with pytest.raises(FetchError, match="redirect loop"):
        get("/a")
    assert server.paths() == ["/a", "/b"]


def test_too_many_redirects_is_an_error(server: LoopbackServer, get: Get) -> None:
    for i in range(10):
        server.routes[f"/r{i}"] = _redirect(307, f"/r{i + 1}")
    with pytest.raises(FetchError, match=r"too many redirects \(more than 3\)"):
        get("/r0", limits=FetchLimits(max_redirects=3))
    assert len(server.paths()) == 4


@pytest.mark.parametrize("statuses", [(301,), (308,), (301, 308)])
def test_permanent_chain_sets_permanent_url(
    server: LoopbackServer, statuses: tuple, get: Get
) -> None:
    for i, status in enumerate(statuses):
        server.routes[f"/old{i}"] = _redirect(status, f"/old{i + 1}")
    server.routes[f"/old{len(statuses)}"] = lambda h: send(h, 200, RSS)
    result = get("/old0")
    assert result.url == result.permanent_url == server.url(f"/old{len(statuses)}")
    assert result.body == RSS


@pytest.mark.parametrize("statuses", [(302,), (307,), (303,), (301, 302), (302, 301)])
def test_any_temporary_hop_means_no_permanent_url(
    server: LoopbackServer, statuses: tuple, get: Get
) -> None:
    for i, status in enumerate(statuses):
        server.routes[f"/t{i}"] = _redirect(status, server.url(f"/t{i + 1}"))
    server.routes[f"/t{len(statuses)}"] = lambda h: send(h, 200, RSS)
    result = get("/t0")
    assert result.url == server.url(f"/t{len(statuses)}")
    assert result.permanent_url is None


def test_redirect_without_location_is_an_error(server: LoopbackServer, get: Get) -> None:
    server.routes["/nowhere"] = lambda h: send(h, 302)
    with pytest.raises(FetchError, match="without a Location"):
        get("/nowhere")


def test_410_is_permanent(server: LoopbackServer, get: Get) -> None:
    server.routes["/gone"] = lambda h: send(h, 410)
    with pytest.raises(FetchError) as caught:
        get("/gone")
    assert caught.value.permanent
    assert caught.value.message == "HTTP 410: feed gone"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "HTTP 404: not found"),
        (401, "HTTP 401: authentication required"),
        (403, "HTTP 403: forbidden"),
        (500, "HTTP 500: server error"),
        (502, "HTTP 502: server error"),
        (418, "HTTP 418: client error"),
    ],
)
def test_other_errors_are_transient_with_a_clear_message(
    server: LoopbackServer, status: int, message: str, get: Get
) -> None:
    server.routes["/x"] = lambda h: send(h, status, b"<html>oops</html>")
    with pytest.raises(FetchError) as caught:
        get("/x")
    assert (caught.value.message, caught.value.permanent) == (message, False)
    assert caught.value.retry_after is None


def test_429_honours_retry_after_seconds(server: LoopbackServer, get: Get) -> None:
    server.routes["/busy"] = lambda h: send(h, 429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as caught:
        get("/busy")
    assert caught.value.retry_after == 120
    assert caught.value.message == "HTTP 429: too many requests (retry after 120s)"
    assert not caught.value.permanent


def test_503_honours_retry_after_http_date(server: LoopbackServer, get: Get) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    server.routes["/down"] = lambda h: send(h, 503, headers={"Retry-After": when})
    with pytest.raises(FetchError) as caught:
        get("/down")
    assert 3000 < caught.value.retry_after <= 3600


def test_retry_after_is_capped_like_a_webhooks(server: LoopbackServer, get: Get) -> None:
    server.routes["/busy"] = lambda h: send(h, 429, headers={"Retry-After": "99999999"})
    with pytest.raises(FetchError) as caught:
        get("/busy")
    assert caught.value.retry_after == MAX_RETRY_AFTER


def test_connection_refused_is_transient_and_one_line(fetcher: Fetch) -> None:
    with LoopbackServer() as srv:
        url = srv.url("/feed.xml")
    with pytest.raises(FetchError) as caught:
        fetcher(url, allow_private=True)
    assert caught.value.message.startswith("cannot connect")
    assert not caught.value.permanent and "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
        ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("0x7f.1", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
        ("127.1", "127.1 resolves to 127.0.0.1, a loopback address"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 resolves to ::ffff:7f00:1, a loopback address"),
    ],
)
def test_loopback_origin_is_refused_when_private_is_not_allowed(
    server: LoopbackServer, fetcher: Fetch, host: str, message: str
) -> None:
    """A name (localhost) is refused by the resolver, a numeric spelling before any DNS."""
    server.routes["/feed.xml"] = lambda h: send(h, 200, RSS)
    with pytest.raises(BlockedURLError) as caught:
        fetcher(f"http://{host}:{server.port}/feed.xml")
    assert caught.value.message == message and caught.value.permanent
    assert server.paths() == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml", "gopher://127.0.0.1:70/_GET"]
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_other_schemes_are_refused(fetcher: Fetch, url: str, allow_private: bool) -> None:
    with pytest.raises(BlockedURLError, match=r"scheme '[a-z]+' is not allowed, only http/https"):
        fetcher(url, allow_private=allow_private)


@pytest.fixture
def public_127_0_0_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only for this test, 127.0.0.2 counts as public: an allowed origin on loopback."""
    real = guard.blocked_reason
    monkeypatch.setattr(
        guard, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.2" else real(ip)
    )


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"]
)
@pytest.mark.usefixtures("public_127_0_0_2")
def test_redirect_to_a_private_address_is_refused_while_the_origin_is_allowed(
    fetcher: Fetch, host: str
) -> None:
    with LoopbackServer("127.0.0.2") as origin, LoopbackServer() as private:
        private.routes["/admin"] = lambda h: send(h, 200, b"secret")
        origin.routes["/feed.xml"] = _redirect(302, f"http://{host}:{private.port}/admin")
        origin.routes["/ok.xml"] = lambda h: send(h, 200, RSS)
        assert fetcher(origin.url("/ok.xml")).body == RSS  # the origin itself is allowed
        with pytest.raises(BlockedURLError, match="a loopback address"):
            fetcher(origin.url("/feed.xml"))
        assert origin.paths() == ["/ok.xml", "/feed.xml"]
        assert private.paths() == []


def test_per_host_concurrency_is_bounded_across_threads(server: LoopbackServer) -> None:
    """feeds.fetch's cap is per process, shared by threads (AsyncFetcher's: test_fetch_async)."""
    gate, lock = threading.Event(), threading.Lock()
    in_flight, peak = [0], [0]

    def route(h: BaseHTTPRequestHandler) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        gate.wait(10)
        with lock:
            in_flight[0] -= 1
        send(h, 200, RSS)

    server.routes["/feed.xml"] = route
    limits = FetchLimits(per_host_concurrency=2, timeout=15)
    results: list[object] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                fetch(server.url("/feed.xml"), allow_private=True, limits=limits)
            )
        )
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for _ in range(200):  # wait (bounded) until two requests are in the handler
        if in_flight[0] == 2:
            break
        time.sleep(0.01)
    time.sleep(0.3)  # give a third request every chance to get in if the bound were broken
    gate.set()
    for t in threads:
        t.join(15)
    assert peak[0] == 2
    assert len(results) == 5


# --- pure unit tests with httpx.MockTransport: a public-looking origin ----------------------

PUBLIC = "http://93.184.215.14"  # a literal public address: no DNS, and MockTransport sends nothing


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1/admin",
        "http://localhost:6379/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
    ],
)
def test_redirect_to_a_private_or_non_http_target_is_blocked(target: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": target})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with client, pytest.raises(BlockedURLError):
        fetch(f"{PUBLIC}/feed.xml", client=client)
    assert seen == [f"{PUBLIC}/feed.xml"]


def test_mock_transport_public_origin_fetches_normally() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=RSS)))
    with client:
        assert fetch(f"{PUBLIC}/feed.xml", client=client).body == RSS


def test_link_headers_are_joined_and_source_headers_go_over_defaults(
    server: LoopbackServer, get: Get
) -> None:
    links = ["<https://hub.example.org/>; rel=hub", "<https://feeds.example.org/x>; rel=self"]

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        for link in links:
            h.send_header("Link", link)
        h.send_header("Content-Length", str(len(RSS)))
        h.end_headers()
        h.wfile.write(RSS)

    server.routes["/feed.xml"] = route
    result = get("/feed.xml", headers={"User-Agent": "SourceBot/2", "X-Token": "t"})
    assert result.link == ", ".join(links)
    sent = server.requests[0][1]
    assert (sent["User-Agent"], sent["X-Token"]) == ("SourceBot/2", "t")
    assert sent["Accept-Encoding"] == "gzip, deflate"


def test_a_cookie_set_on_one_hop_is_sent_on_the_next_and_not_kept(
    server: LoopbackServer, fetcher: Fetch
) -> None:
    """As a fresh httpx.Client per fetch: cookies live for one fetch's redirects, no longer."""
    server.routes["/consent"] = lambda h: send(
        h, 302, headers={"Location": "/feed.xml", "Set-Cookie": "ok=1; Path=/"}
    )
    server.routes["/feed.xml"] = lambda h: send(
        h, 200, RSS if h.headers.get("Cookie") == "ok=1" else b"no cookie"
    )
    assert fetcher(server.url("/consent"), allow_private=True).body == RSS
    assert fetcher(server.url("/feed.xml"), allow_private=True).body == b"no cookie"


def _raw(response: bytes) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(response)
        h.close_connection = True

    return route


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 abc\r\n\r\n",
        b"NONSENSE\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 200_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n",
    ],
    ids=["status", "garbage", "two-lengths", "huge-header", "truncated", "bad-chunk"],
)
def test_a_malformed_response_is_a_fetch_error(
    server: LoopbackServer, get: Get, response: bytes
) -> None:
    server.routes["/feed.xml"] = _raw(response)
    with pytest.raises(FetchError) as caught:
        get("/feed.xml")
    assert "\n" not in caught.value.message and len(caught.value.message) <= 200
