"""``render: browser``: a list page that builds itself with JavaScript, read after it ran.

Headless Chromium (Debian's package) loads the page and prints its DOM (``--dump-dom``);
``feeds.page`` then reads it with the source's selectors like any fetched page.

A browser makes its own connections, so the SSRF guard is applied from outside it. The page's
host is resolved and checked here and pinned to that address (``--host-resolver-rules``,
every other name resolves to nothing); every other request (another host, an address
written as a literal, a redirect away) goes to a proxy that does not exist, loopback included
(``<-loopback>``). Only the page's own scheme, host and port reach the network. Time (a
wall-clock cap on the whole process group) and output (the DOM is read up to the fetch
limit) are bounded; the profile is a throwaway directory.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from common.errors import FetchError
from common.guard import check_addresses, check_url, resolve
from feeds.fetch import DEFAULT_LIMITS, FetchLimits, too_large
from feeds.types import FetchResult

CHROMIUM = "/usr/bin/chromium"
SCRIPT_TIME_MS = 5000  # virtual time the page's scripts and timers get before the dump
_DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, every request fails
_FLAGS = (
    "--headless",
    "--no-sandbox",  # the service runs in a container, often as root
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-quic",
    "--mute-audio",
    "--deny-permission-prompts",
)


def render_page(
    url: str,
    *,
    limits: FetchLimits = DEFAULT_LIMITS,
    allow_private: bool = False,
    headers: Mapping[str, str] | None = None,
    chromium: str = CHROMIUM,
) -> FetchResult:
    """The page's DOM after its scripts ran, as a 200 ``FetchResult`` (text/html)."""
    check_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    addresses = resolve(host, port)
    if not allow_private:
        check_addresses(host, addresses)
    if not Path(chromium).is_file():
        raise FetchError(f"render: browser needs Chromium, not found at {chromium}")
    pinned = f"[{addresses[0]}]" if addresses[0].version == 6 else str(addresses[0])
    agent = dict(headers or {}).get("User-Agent") or limits.user_agent
    with tempfile.TemporaryDirectory(prefix="watchfloor-render-") as profile:
        args = [
            chromium,
            *_FLAGS,
            f"--user-data-dir={profile}",
            f"--user-agent={agent}",
            f"--host-resolver-rules=MAP {host} {pinned}, MAP * ~NOTFOUND",
            f"--proxy-server={_DEAD_PROXY}",
            f"--proxy-bypass-list=<-loopback>;{parts.scheme.lower()}://{host}:{port}",
            f"--virtual-time-budget={SCRIPT_TIME_MS}",
            "--dump-dom",
            url,
        ]
        body = _run(args, limits)
    if not body.strip():
        raise FetchError(f"render: the browser returned no page for {url}")
    return FetchResult(url=url, status=200, body=body, content_type="text/html; charset=utf-8")


def _run(args: list[str], limits: FetchLimits) -> bytes:
    """Chromium's stdout, at most ``limits.max_bytes``, within the time cap; its whole
    process group is killed at the end whatever happened."""
    cap = max(limits.timeout, 10.0) + SCRIPT_TIME_MS / 1000
    proc = subprocess.Popen(  # a fixed binary, our own arguments
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return _read(proc, limits, time.monotonic() + cap)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _read(proc: subprocess.Popen[bytes], limits: FetchLimits, deadline: float) -> bytes:
    if proc.stdout is None:  # Popen(stdout=PIPE) always has one
        raise FetchError("render: the browser has no output")
    out = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FetchError("render: the browser took too long")
            if not selector.select(timeout=left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if len(out) > limits.max_bytes:
                raise too_large(limits)
    return bytes(out)
