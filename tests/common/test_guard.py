"""The SSRF guard: pre-flight URL check and the transport that checks what it connects to."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from common.errors import BlockedURLError, FetchError
from common.guard import blocked_reason, check_url, guarded_transport, unwrap_blocked
from tests.feeds.loopback import RSS, LoopbackServer, send

BLOCKED_HOSTS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "017700000001",
    "localhost",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",
    "0.0.0.0",
    "100.64.0.1",
    "100.100.100.200",
    "224.0.0.1",
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[fc00::1]",
    "[fd00::1]",
    "[fd00:ec2::254]",
    "[fe80::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[::127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "[ff02::1]",
]


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
def test_check_url_refuses_every_spelling_of_a_non_public_address(host: str) -> None:
    with pytest.raises(BlockedURLError) as caught:
        check_url(f"http://{host}/feed.xml", allow_private=False)
    assert caught.value.permanent
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "[::1]"])
def test_check_url_allows_private_when_the_setting_says_so(host: str) -> None:
    check_url(f"http://{host}:8080/feed.xml", allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ftp.example.org/feed.xml",
        "gopher://127.0.0.1:70/_GET",
        "javascript:alert(1)",
        "dict://127.0.0.1:11211/",
        "feed.xml",
        "http:///no-host",
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_check_url_refuses_non_http_schemes_even_when_private_is_allowed(
    url: str, allow_private: bool
) -> None:
    with pytest.raises(BlockedURLError):
        check_url(url, allow_private=allow_private)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111"])
def test_public_addresses_are_not_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None
    check_url(f"https://{address if '.' in address else f'[{address}]'}/feed", allow_private=False)


def test_an_unresolvable_host_is_a_transient_fetch_error_not_a_block() -> None:
    with pytest.raises(FetchError) as caught:
        check_url("http://no-such-host.invalid/feed", allow_private=False)
    assert not isinstance(caught.value, BlockedURLError)
    assert not caught.value.permanent


def _feed_route(server: LoopbackServer) -> None:
    server.routes["/feed.xml"] = lambda h: send(h, 200, RSS)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "127.1"])
def test_transport_refuses_loopback_at_connect_time_and_sends_nothing(host: str) -> None:
    """The transport's own check, independent of check_url (what stops a DNS rebind)."""
    with LoopbackServer() as server:
        _feed_route(server)
        client = httpx.Client(transport=guarded_transport(allow_private=False))
        with client, pytest.raises(BlockedURLError):
            client.get(f"http://{host}:{server.port}/feed.xml")
        assert server.paths() == []


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f.1", "017700000001"])
def test_numeric_spellings_really_reach_loopback_when_allowed(host: str) -> None:
    """Proves the blocked spellings above are loopback, not merely unparseable."""
    with LoopbackServer() as server:
        _feed_route(server)
        with httpx.Client(transport=guarded_transport(allow_private=True)) as client:
            response = client.get(f"http://{host}:{server.port}/feed.xml")
        assert response.status_code == 200
        assert server.paths() == ["/feed.xml"]


def test_transport_refuses_unix_sockets_unless_private_is_allowed(tmp_path: Path) -> None:
    transport = guarded_transport(allow_private=False, uds=str(tmp_path / "sock"))
    with httpx.Client(transport=transport) as client, pytest.raises(BlockedURLError):
        client.get("http://feeds.example.org/feed.xml")


def test_transport_refuses_a_proxy_that_would_resolve_for_it() -> None:
    with pytest.raises(ValueError, match="proxy"):
        guarded_transport(allow_private=False, proxy="http://127.0.0.1:3128")


def test_unwrap_finds_a_blocked_error_behind_a_wrapper() -> None:
    blocked = BlockedURLError("10.0.0.1 is a private address")
    try:
        try:
            raise blocked
        except BlockedURLError as exc:
            raise httpx.ConnectError("wrapped") from exc
    except httpx.ConnectError as wrapped:
        assert unwrap_blocked(wrapped) is blocked
    assert unwrap_blocked(httpx.ConnectError("plain")) is None
