"""WebSub (W3C Recommendation, 2018) in plain functions: where a feed's hub is, and whether
a pushed body carries its subscription's signature. No I/O: the shell (worker/websub/)
talks to hubs and answers them.

Discovery (spec section 4): a ``Link`` header with ``rel="hub"`` and ``rel="self"`` wins over
the document's own ``<link rel="hub">`` (Atom, RSS with atom:link) or JSON Feed ``hubs``.
Signatures (section 8): ``X-Hub-Signature: method=hex`` is an HMAC of the raw body under the
secret we gave the hub. We accept sha256, sha384 and sha512; sha1, which the spec still
permits, is refused: a push is worth waiting an hour's poll for, not forging.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

SIGNATURE_METHODS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
# one link-value of RFC 8288: <uri> then ;-parameters, up to the next comma outside quotes
_LINK_VALUE = re.compile(r'<([^<>]*)>((?:\s*;\s*[^;,"=]+(?:=\s*(?:"[^"]*"|[^;,]*))?)*)')
_PARAM = re.compile(r';\s*([^=;,\s]+)\s*(?:=\s*(?:"([^"]*)"|([^;,]*)))?')


@dataclass(frozen=True, slots=True)
class HubLink:
    """Where to subscribe (``hub``) and to what (``topic``, the feed's self URL)."""

    hub: str
    topic: str


def parse_link_header(value: str) -> list[tuple[str, frozenset[str]]]:
    """Each link of a ``Link`` header as (target, its rel values, lower-cased)."""
    links = []
    for match in _LINK_VALUE.finditer(value[:8192]):
        rels: set[str] = set()
        for param in _PARAM.finditer(match.group(2)):
            if param.group(1).lower() == "rel":
                rels.update((param.group(2) or param.group(3) or "").lower().split())
        links.append((match.group(1).strip(), frozenset(rels)))
    return links


def discover(
    link_header: str | None, hubs: tuple[str, ...], self_url: str | None, fetched_url: str
) -> HubLink | None:
    """The hub and topic a fetched feed names, or None when it names no hub. The topic is
    the feed's self link (the hub knows the feed by it), else the URL we fetched."""
    header_hubs, header_self = [], None
    for target, rels in parse_link_header(link_header or ""):
        if "hub" in rels:
            header_hubs.append(target)
        if "self" in rels and header_self is None:
            header_self = target
    hub = next((h for h in (*header_hubs, *hubs) if _http(h)), None)
    if hub is None:
        return None
    topic = next((t for t in (header_self, self_url) if t and _http(t)), fetched_url)
    return HubLink(hub=hub, topic=topic)


def sign(secret: str, body: bytes, method: str = "sha256") -> str:
    """The ``X-Hub-Signature`` a hub sends for ``body`` (what tests and benches send)."""
    digest = hmac.new(secret.encode(), body, SIGNATURE_METHODS[method]).hexdigest()
    return f"{method}={digest}"


def signature_problem(header: str | None, secret: str, body: bytes) -> str | None:
    """None when ``header`` signs ``body`` under ``secret``; else why the push is refused."""
    if not header:
        return "no X-Hub-Signature"
    method, _, given = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.lower())
    if digest is None:
        return f"signature method {method[:16]!r} is not accepted (sha256, sha384, sha512)"
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    if not hmac.compare_digest(expected, given.strip().lower()):
        return "bad signature"
    return None


def _http(url: str) -> bool:
    return url.startswith(("http://", "https://")) and len(url) <= 2048
