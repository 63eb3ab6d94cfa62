"""The aiohttp guard on its own, without feeds.fetch_async's pre-flight check: what stops a
DNS rebind, and a numeric host that aiohttp connects to without asking the resolver."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from common.errors import BlockedURLError, FetchError
from common.guard import check_url_offline, numeric_address
from common.guard_aiohttp import GuardedResolver, guarded_connector, guarded_socket
from tests.common.test_guard import BLOCKED_HOSTS
from tests.feeds.loopback import RSS, LoopbackServer, send


async def _get(url: str, *, allow_private: bool) -> int:
    connector = guarded_connector(allow_private=allow_private, limit=4)
    async with (
        aiohttp.ClientSession(connector=connector, trust_env=False) as session,
        session.get(url) as response,
    ):
        await response.read()
        return response.status


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "0x7f.1"])
def test_connector_refuses_loopback_at_connect_time_and_sends_nothing(host: str) -> None:
    """127.0.0.1 and the IPv6 form skip aiohttp's resolver: the socket factory stops them.
    localhost and 0x7f.1 are names to aiohttp: the resolver stops them."""
    with LoopbackServer() as server:
        server.routes["/feed.xml"] = lambda h: send(h, 200, RSS)
        with pytest.raises(BlockedURLError, match="loopback address"):
            asyncio.run(_get(f"http://{host}:{server.port}/feed.xml", allow_private=False))
        assert server.paths() == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f.1"])
def test_the_same_hosts_really_reach_loopback_when_allowed(host: str) -> None:
    with LoopbackServer() as server:
        server.routes["/feed.xml"] = lambda h: send(h, 200, RSS)
        url = f"http://{host}:{server.port}/feed.xml"
        assert asyncio.run(_get(url, allow_private=True)) == 200
        assert server.paths() == ["/feed.xml"]


@pytest.mark.parametrize(
    ("family", "sockaddr"),
    [
        (socket.AF_INET, ("127.0.0.1", 80)),
        (socket.AF_INET, ("169.254.169.254", 80)),
        (socket.AF_INET, ("2130706433", 80)),
        (socket.AF_INET6, ("::ffff:10.0.0.1", 80, 0, 0)),
        (socket.AF_INET6, ("fe80::1%eth0", 80, 0, 2)),
        (socket.AF_INET, ("not-an-address", 80)),
    ],
)
def test_socket_factory_refuses_any_address_but_a_public_one(
    family: socket.AddressFamily, sockaddr: tuple[object, ...]
) -> None:
    with pytest.raises(BlockedURLError):
        guarded_socket((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))


def test_socket_factory_gives_a_socket_for_a_public_address() -> None:
    addr_info = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("8.8.8.8", 53))
    with guarded_socket(addr_info) as sock:
        assert sock.family == socket.AF_INET


def test_resolver_refuses_a_name_with_a_loopback_address() -> None:
    async def resolve() -> object:
        return await GuardedResolver(allow_private=False).resolve("localhost", 80)

    with pytest.raises(BlockedURLError, match=r"localhost resolves to 127\.0\.0\.1"):
        asyncio.run(resolve())


def test_resolver_calls_an_unresolvable_name_transient() -> None:
    async def resolve() -> object:
        return await GuardedResolver(allow_private=True).resolve("no-such-host.invalid", 80)

    with pytest.raises(FetchError, match="cannot resolve host") as caught:
        asyncio.run(resolve())
    assert not isinstance(caught.value, BlockedURLError) and not caught.value.permanent


@pytest.mark.parametrize("host", [h for h in BLOCKED_HOSTS if h != "localhost"])
def test_offline_check_refuses_every_numeric_spelling_without_dns(host: str) -> None:
    with pytest.raises(BlockedURLError):
        check_url_offline(f"http://{host}/feed.xml", allow_private=False)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("[::1]", "::1"),
        ("feeds.example.org", None),
        ("1.2.3.4.example.org", None),
    ],
)
def test_numeric_address_reads_hosts_as_the_c_library_does(host: str, address: str | None) -> None:
    ip = numeric_address(host)
    assert (None if ip is None else str(ip)) == address


def test_offline_check_leaves_names_to_the_resolver() -> None:
    check_url_offline("http://localhost/feed.xml", allow_private=False)  # no DNS here
    with pytest.raises(BlockedURLError, match="scheme 'ftp'"):
        check_url_offline("ftp://feeds.example.org/", allow_private=True)
