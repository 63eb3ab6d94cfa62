"""SSRF guard: refuse URLs and connections that would reach a non-public address.

Both doors out of the service use it: the feed fetcher and the webhook channel (any URL an
admin or a feed's redirect names). The errors it raises, FetchError and BlockedURLError, are
in ``common.errors``.

Two layers. ``check_url`` is a cheap pre-flight (scheme, then DNS) that gives a clear message.
``guarded_transport`` is the real fence: it resolves the host itself at connect time, checks
every address and connects to the checked IP, so a DNS rebind between the two cannot slip
through. Numeric host spellings (``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``) are
resolved by the C library like any name, so they are caught by the address check.
``common.guard_aiohttp`` is the same fence for aiohttp; its pre-flight is ``check_url_offline``
(no DNS in an event loop), which reads a numeric host with ``numeric_address``.

The transport also enforces an optional total deadline (``deadline_scope``) on every socket
operation, which httpx's per-operation timeouts cannot do.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from common.errors import BlockedURLError, FetchError

ALLOWED_SCHEMES = frozenset({"http", "https"})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges some Python versions do not flag on their own; checked explicitly to be sure.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches loopback on Linux
        "100.64.0.0/10",  # CGNAT, also cloud metadata (Alibaba 100.100.100.200)
        "169.254.0.0/16",  # link-local, cloud metadata 169.254.169.254
        "192.0.0.0/24",  # IETF protocol assignments (Oracle metadata 192.0.0.192)
        "fc00::/7",  # unique local (AWS metadata fd00:ec2::254)
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPAT = ipaddress.ip_network("::/96")

_deadline: ContextVar[float | None] = ContextVar("watchfloor_fetch_deadline", default=None)


def blocked_reason(ip: IPAddress) -> str | None:
    """Why connecting to ``ip`` is refused, or None when it is a public address."""
    v4 = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if v4 is not None and (reason := blocked_reason(v4)):
        return reason
    for flag in ("loopback", "unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{flag}"):
            return flag.replace("_", "-")
    if any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version):
        return "non-public"
    return None if ip.is_global else "non-public"


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _V4_COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses ``host`` resolves to, in the resolver's order, without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise unresolvable(host) from exc
    return addresses_of(infos)


def unresolvable(host: str) -> FetchError:
    """Transient, not a block: a name that does not resolve now may resolve later."""
    return FetchError(f"cannot resolve host {host!r}")


def addresses_of(infos: Iterable[tuple[Any, ...]]) -> list[IPAddress]:
    """The addresses of getaddrinfo's answer, in its order, without duplicates."""
    seen: dict[IPAddress, None] = {}
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 scope id
        seen.setdefault(ipaddress.ip_address(address), None)
    return list(seen)


def numeric_address(host: str) -> IPAddress | None:
    """The address a numeric host stands for, read as the C library reads it (``[::1]``,
    ``127.1``, ``0x7f.1``, ``2130706433``), or None for a name: no DNS, so an event loop may
    call it."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except (OSError, ValueError):
        return None


def check_addresses(host: str, addresses: Iterable[IPAddress]) -> None:
    for ip in addresses:
        if reason := blocked_reason(ip):
            where = "is" if host.strip("[]") == str(ip) else f"resolves to {ip},"
            raise BlockedURLError(f"{host} {where} a {reason} address")


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise BlockedURLError unless scheme is http/https and (unless allow_private) every
    address the host resolves to is public. A host that does not resolve raises a
    transient FetchError (not BlockedURLError): it may resolve later.
    """
    host, port = _host_and_port(url)
    if not allow_private:
        check_addresses(host, resolve(host, port))


def check_url_offline(url: str, *, allow_private: bool) -> None:
    """``check_url`` without DNS, for an event loop: the scheme, the host, and the address of a
    numeric host. A name is left to the connection's own guarded resolver."""
    host, _ = _host_and_port(url)
    if not allow_private and (ip := numeric_address(host)) is not None:
        check_addresses(host, [ip])


def _host_and_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise BlockedURLError(f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise BlockedURLError(f"scheme {scheme or '(none)'!r} is not allowed, only http/https")
    if not host:
        raise BlockedURLError("URL has no host")
    return host, port or (443 if scheme == "https" else 80)


@contextmanager
def deadline_scope(seconds: float) -> Iterator[None]:
    """Bound every socket operation of guarded transports in this context to one total deadline."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _remaining(timeout: float | None, timeout_exc: type[Exception]) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise timeout_exc("total deadline exceeded")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read/write stops at the deadline of ``deadline_scope``."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks every address, then connects to a checked IP (never re-resolves)."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        try:
            addresses = resolve(host, port)
        except FetchError as exc:
            raise httpcore.ConnectError(exc.message) from None
        if not self._allow_private:
            check_addresses(host, addresses)
        error: Exception = httpcore.ConnectError(f"no address for {host}")
        for ip in addresses:
            try:
                stream = self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        if not self._allow_private:
            raise BlockedURLError("unix sockets are not allowed")
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def guarded_transport(*, allow_private: bool, **kwargs: Any) -> httpx.HTTPTransport:
    """An httpx transport that checks the IP address it actually connects to (after DNS),
    raising BlockedURLError for loopback, private, link-local, metadata, unspecified,
    multicast, reserved, CGNAT, fc00::/7 and IPv4-mapped/compatible IPv6 forms of those.
    kwargs go to httpx.HTTPTransport; a proxy is refused because it would resolve for us.
    """
    if kwargs.get("proxy") is not None:
        raise ValueError("a proxy would bypass the address guard")
    kwargs.setdefault("trust_env", False)
    kwargs.setdefault("verify", verified_tls())
    transport = httpx.HTTPTransport(**kwargs)
    pool = transport._pool  # httpx builds the httpcore pool; we swap its network backend
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx/httpcore internals changed: cannot install the address guard")
    pool._network_backend = _GuardedBackend(allow_private)
    return transport


@functools.cache
def verified_tls() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~20 ms per client."""
    return httpx.create_ssl_context()


def unwrap_blocked(exc: BaseException) -> BlockedURLError | None:
    """The BlockedURLError behind an exception httpx may have wrapped, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BlockedURLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
