"""The SSRF guard of ``common.guard`` for aiohttp: the same fence around an asyncio connector.

Two parts, as with ``guarded_transport``. The resolver resolves with the loop's getaddrinfo
(in its executor: the loop never blocks on DNS) and refuses a name with any non-public address,
with the same message as ``check_url``. aiohttp skips the resolver for a numeric host, so the
socket factory checks the address of every socket aiohttp is about to connect, whatever path
led to it: the resolver gives the clear message, the factory is the fence.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import aiohttp
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult

from common.errors import BlockedURLError
from common.guard import (
    addresses_of,
    check_addresses,
    numeric_address,
    unresolvable,
    verified_tls,
)

_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class GuardedResolver(AbstractResolver):
    """Resolves on the loop's executor; refuses a name with any non-public address."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except (OSError, UnicodeError) as exc:
            raise unresolvable(host) from exc
        addresses = addresses_of(infos)
        if not self._allow_private:
            check_addresses(host, addresses)
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=socket.IPPROTO_TCP,
                flags=_NUMERIC,
            )
            for ip in addresses
        ]

    async def close(self) -> None:
        pass


def guarded_socket(addr_info: AddrInfoType) -> socket.socket:
    """A socket for ``addr_info`` only if its address is public (anything unreadable is not)."""
    family, type_, proto, _, sockaddr = addr_info
    host = str(sockaddr[0])
    ip = numeric_address(host)
    if ip is None:
        raise BlockedURLError(f"{host} is not a numeric address")
    check_addresses(host, [ip])
    return socket.socket(family=family, type=type_, proto=proto)


def guarded_connector(*, allow_private: bool, limit: int) -> aiohttp.TCPConnector:
    """A connector that reaches public addresses only (any address when ``allow_private``),
    verifies TLS as ``guarded_transport`` does and tries a host's addresses one after another.
    ``limit`` caps its connections in use (0: no cap). Call it inside a running loop."""
    factory: Callable[[AddrInfoType], socket.socket] | None = (
        None if allow_private else guarded_socket
    )
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private=allow_private),
        socket_factory=factory,
        ssl=verified_tls(),
        limit=limit,
        happy_eyeballs_delay=None,
    )
