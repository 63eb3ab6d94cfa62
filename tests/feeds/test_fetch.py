"""fetch() against a real loopback server: limits, redirects, statuses, conditional GET."""

from __future__ import annotations

import threading
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from common.errors import BlockedURLError, FetchError
from common.http import MAX_RETRY_AFTER
from feeds.fetch import FetchLimits, fetch
from tests.feeds.loopback import RSS, LoopbackServer, Route, send

MB = 1024 * 1024


@pytest.fixture
def server() -> LoopbackServer:
    with LoopbackServer() as srv:
        yield srv


def get(server: LoopbackServer, path: str, **kwargs: object) -> object:
    return fetch(server.url(path), allow_private=True, **kwargs)  # type: ignore[arg-type]


def test_plain_200_returns_body_validators_and_max_age(server: LoopbackServer) -> None:
    headers = {
        "ETag": '"v1"',
        "Last-Modified": "Mon, 02 Jan 2006 15:04:05 GMT",
        "Content-Type": "application/rss+xml; charset=utf-8",
        "Cache-Control": "public, max-age=600",
    }
    server.routes["/feed.xml"] = lambda h: send(h, 200, RSS, headers)
    result = get(server, "/feed.xml")
    assert (result.status, result.body, result.etag) == (200, RSS, '"v1"')
    assert result.last_modified == "Mon, 02 Jan 2006 15:04:05 GMT"
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.max_age == 600
    assert result.permanent_url is None
    sent = server.requests[0][1]
    assert sent["User-Agent"].startswith("Watchfloor/")
    assert sent["Accept-Encoding"] == "gzip, deflate"


def test_conditional_get_gets_304_without_body(server: LoopbackServer) -> None:
    def route(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == '"v1"':
            send(h, 304, headers={"ETag": '"v1"'})
        else:
            send(h, 200, RSS, {"ETag": '"v1"'})

    server.routes["/feed.xml"] = route
    result = get(server, "/feed.xml", etag='"v1"', last_modified="Mon, 02 Jan 2006 15:04:05 GMT")
    assert result.not_modified and result.body is None and result.etag == '"v1"'
    assert server.requests[0][1]["If-Modified-Since"] == "Mon, 02 Jan 2006 15:04:05 GMT"


def test_drip_feed_is_cut_at_the_total_deadline(server: LoopbackServer) -> None:
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
        get(server, "/slow", limits=FetchLimits(timeout=0.5, connect_timeout=0.5))
    assert 0 < len(dripped) < 400


def test_headers_that_never_come_hit_the_deadline(server: LoopbackServer) -> None:
    gate = threading.Event()
    server.routes["/hang"] = lambda h: gate.wait(10)
    try:
        with pytest.raises(FetchError, match="timed out"):
            get(server, "/hang", limits=FetchLimits(timeout=0.3))
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


def test_50_mb_body_without_length_is_cut_at_the_cap(server: LoopbackServer) -> None:
    server.routes["/big"] = lambda h: _stream(h, 50 * MB, {"Connection": "close"})
    with pytest.raises(FetchError, match="larger than the 10,485,760-byte cap") as caught:
        get(server, "/big")
    assert not caught.value.permanent


def test_declared_oversize_body_is_refused_before_reading(server: LoopbackServer) -> None:
    server.routes["/big"] = lambda h: _stream(h, 50 * MB, {"Content-Length": str(50 * MB)})
    with pytest.raises(FetchError, match="larger than"):
        get(server, "/big")


def test_endless_chunked_stream_is_cut_at_the_cap(server: LoopbackServer) -> None:
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
        get(server, "/endless", limits=FetchLimits(max_bytes=MB))
    assert sum(sent) < 2000 * 65536


def _gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MB)
    return b"".join(compressor.compress(block) for _ in range(size // MB)) + compressor.flush()


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip"])
def test_gzip_bomb_stops_at_the_cap_without_inflating_it(
    server: LoopbackServer, encoding: str
) -> None:
    bomb = _gzip_of_zeros(100 * MB)
    headers = {"Content-Encoding": encoding, "Content-Type": "application/rss+xml"}
    server.routes["/bomb"] = lambda h: send(h, 200, bomb, headers)
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="larger than the 1,048,576-byte cap"):
            get(server, "/bomb", limits=FetchLimits(max_bytes=MB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(bomb) < MB  # it really is a bomb: ~100 kB that inflates to 100 MB
    assert peak < 8 * MB  # never inflated a whole network chunk (that would be ~64 MB)


def test_gzip_and_deflate_bodies_are_inflated(server: LoopbackServer) -> None:
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
    assert [get(server, p).body for p in ("/gz", "/raw", "/zlib")] == [RSS, RSS, RSS]


def test_unsupported_content_encoding_is_an_error(server: LoopbackServer) -> None:
    server.routes["/br"] = lambda h: send(h, 200, b"\x1b\x00", {"Content-Encoding": "br"})
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
        get(server, "/br")


def _redirect(status: int, target: str) -> Route:
    return lambda h: send(h, status, headers={"Location": target})


def test_redirect_loop_is_an_error(server: LoopbackServer) -> None:
    server.routes["/a"] = _redirect(302, "/b")
    server.routes["/b"] = _redirect(302, "/a")
    with pytest.raises(FetchError, match="redirect loop"):
        get(server, "/a")
    assert server.paths() == ["/a", "/b"]


def test_too_many_redirects_is_an_error(server: LoopbackServer) -> None:
    for i in range(10):
        server.routes[f"/r{i}"] = _redirect(307, f"/r{i + 1}")
    with pytest.raises(FetchError, match=r"too many redirects \(more than 3\)"):
        get(server, "/r0", limits=FetchLimits(max_redirects=3))
    assert len(server.paths()) == 4


@pytest.mark.parametrize("statuses", [(301,), (308,), (301, 308)])
def test_permanent_chain_sets_permanent_url(server: LoopbackServer, statuses: tuple) -> None:
    for i, status in enumerate(statuses):
        server.routes[f"/old{i}"] = _redirect(status, f"/old{i + 1}")
    server.routes[f"/old{len(statuses)}"] = lambda h: send(h, 200, RSS)
    result = get(server, "/old0")
    assert result.url == result.permanent_url == server.url(f"/old{len(statuses)}")
    assert result.body == RSS


@pytest.mark.parametrize("statuses", [(302,), (307,), (303,), (301, 302), (302, 301)])
def test_any_temporary_hop_means_no_permanent_url(server: LoopbackServer, statuses: tuple) -> None:
    for i, status in enumerate(statuses):
        server.routes[f"/t{i}"] = _redirect(status, server.url(f"/t{i + 1}"))
    server.routes[f"/t{len(statuses)}"] = lambda h: send(h, 200, RSS)
    result = get(server, "/t0")
    assert result.url == server.url(f"/t{len(statuses)}")
    assert result.permanent_url is None


def test_redirect_without_location_is_an_error(server: LoopbackServer) -> None:
    server.routes["/nowhere"] = lambda h: send(h, 302)
    with pytest.raises(FetchError, match="without a Location"):
        get(server, "/nowhere")


def test_410_is_permanent(server: LoopbackServer) -> None:
    server.routes["/gone"] = lambda h: send(h, 410)
    with pytest.raises(FetchError) as caught:
        get(server, "/gone")
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
    server: LoopbackServer, status: int, message: str
) -> None:
    server.routes["/x"] = lambda h: send(h, status, b"<html>oops</html>")
    with pytest.raises(FetchError) as caught:
        get(server, "/x")
    assert (caught.value.message, caught.value.permanent) == (message, False)
    assert caught.value.retry_after is None


def test_429_honours_retry_after_seconds(server: LoopbackServer) -> None:
    server.routes["/busy"] = lambda h: send(h, 429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as caught:
        get(server, "/busy")
    assert caught.value.retry_after == 120
    assert caught.value.message == "HTTP 429: too many requests (retry after 120s)"
    assert not caught.value.permanent


def test_503_honours_retry_after_http_date(server: LoopbackServer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    server.routes["/down"] = lambda h: send(h, 503, headers={"Retry-After": when})
    with pytest.raises(FetchError) as caught:
        get(server, "/down")
    assert 3000 < caught.value.retry_after <= 3600


def test_retry_after_is_capped_like_a_webhooks(server: LoopbackServer) -> None:
    server.routes["/busy"] = lambda h: send(h, 429, headers={"Retry-After": "99999999"})
    with pytest.raises(FetchError) as caught:
        get(server, "/busy")
    assert caught.value.retry_after == MAX_RETRY_AFTER


def test_connection_refused_is_transient_and_one_line() -> None:
    with LoopbackServer() as srv:
        url = srv.url("/feed.xml")
    with pytest.raises(FetchError) as caught:
        fetch(url, allow_private=True)
    assert caught.value.message.startswith("cannot connect")
    assert not caught.value.permanent and "\n" not in caught.value.message


def test_loopback_origin_is_refused_when_private_is_not_allowed(server: LoopbackServer) -> None:
    server.routes["/feed.xml"] = lambda h: send(h, 200, RSS)
    with pytest.raises(BlockedURLError):
        fetch(server.url("/feed.xml"))
    assert server.paths() == []


def test_per_host_concurrency_is_bounded(server: LoopbackServer) -> None:
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
        threading.Thread(target=lambda: results.append(get(server, "/feed.xml", limits=limits)))
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
