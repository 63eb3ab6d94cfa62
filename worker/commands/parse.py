"""``watchfloor parse PATH|URL``: fetch (or read) one feed and print its items as JSON lines.

A quick way for an admin to see what Watchfloor makes of a feed before adding it: the same
fetch limits, SSRF guard, parser and normalization as the poller, and no database. A local
file gets the fetch size cap too, and is refused with the same one-line error when larger.

Each line is ``{"id", "guid", "title", "url", "summary", "published_at"}``. ``id`` is the
item's GUID, the key ``watchfloor match`` reads, so ``watchfloor parse URL | watchfloor
match -`` works; ``guid`` repeats it for scripts written before ``id`` was printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from common.errors import IngestError
from feeds.fetch import DEFAULT_LIMITS, FetchLimits, fetch, too_large
from feeds.parse import parse_feed
from feeds.types import FeedItem
from worker.settings import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser("parse", help="fetch or read one feed and print its items as JSON lines")
    p.add_argument("source", metavar="PATH|URL", help="a local file, or an http(s) URL")
    p.add_argument(
        "--allow-private",
        action="store_true",
        help="allow loopback/private addresses (also WATCHFLOOR_ALLOW_PRIVATE_URLS=1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    allow_private = args.allow_private or load_settings().allow_private_urls
    try:
        body, url, content_type = _load(args.source, allow_private)
        parsed = parse_feed(body, url=url, content_type=content_type)
    except IngestError as exc:
        return _fail(exc.message)
    except OSError as exc:
        return _fail(f"cannot read {args.source}: {exc.strerror or exc}")
    ascii_only = (sys.stdout.encoding or "").lower().replace("-", "") != "utf8"
    try:
        for item in parsed.items:
            print(json.dumps(_row(item), ensure_ascii=ascii_only), flush=True)
    except BrokenPipeError:  # `watchfloor parse URL | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if parsed.warning:
        print(f"warning: {parsed.warning}", file=sys.stderr)
    return 0


def _load(source: str, allow_private: bool) -> tuple[bytes, str, str | None]:
    """(body, URL for relative links, content type); anything with a scheme is fetched."""
    if "://" not in source:
        return _read_capped(Path(source), DEFAULT_LIMITS), "", None
    result = fetch(source, allow_private=allow_private)
    return result.body or b"", result.url, result.content_type


def _read_capped(path: Path, limits: FetchLimits) -> bytes:
    """The file, read up to one byte past the fetch cap: a 200 MB file costs 10 MB, not 2 GB."""
    if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
        raise OSError(f"{path}: not a regular file")
    with path.open("rb") as stream:
        body = stream.read(limits.max_bytes + 1)
    if len(body) > limits.max_bytes:
        raise too_large(limits)  # the fetch's own error: one cap, one message
    return body


def _row(item: FeedItem) -> dict[str, str | None]:
    published = item.published_at.isoformat() if item.published_at else None
    return {
        "id": item.guid,
        "guid": item.guid,
        "title": item.title,
        "url": item.url,
        "summary": item.summary,
        "published_at": published,
    }


def _fail(reason: str) -> int:
    print(f"error: {' '.join(reason.split())}", file=sys.stderr)
    return 1
