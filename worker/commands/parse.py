"""``watchfloor parse PATH|URL`` or ``--feed ID``: fetch one source, print its items.

``--feed ID`` reads a configured source as the poller does, whatever its type: a page
source's selectors, and with ``follow`` the first ``follow_max`` articles (politely, robots.txt
obeyed), each line adding ``text``, the first 200 characters of what the article gave, and
``error`` when it gave nothing. An admin tunes a selector with it before relying on it.

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
from feeds.follow import Followed, Follower
from feeds.parse import parse_feed
from feeds.render import render_page
from feeds.types import FeedItem, ParsedFeed
from worker.config import ConfigError, load_config
from worker.pages import parse_listing
from worker.settings import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser("parse", help="fetch or read one feed and print its items as JSON lines")
    p.add_argument("source", metavar="PATH|URL", nargs="?", help="a local file, or an http(s) URL")
    p.add_argument("--feed", metavar="ID", help="a source configured in feeds.yaml (feed or page)")
    p.add_argument(
        "--allow-private",
        action="store_true",
        help="allow loopback/private addresses (also WATCHFLOOR_ALLOW_PRIVATE_URLS=1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    allow_private = args.allow_private or settings.allow_private_urls
    if (args.source is None) == (args.feed is None):
        return _fail("give PATH|URL or --feed ID (one of them)")
    texts: dict[str, Followed] = {}
    try:
        if args.feed is not None:
            parsed, texts = _configured(
                args.feed, settings.config_dir, allow_private, settings.chromium
            )
        else:
            body, url, content_type = _load(args.source, allow_private)
            parsed = parse_feed(body, url=url, content_type=content_type)
    except IngestError as exc:
        return _fail(f"{exc.kind}: {exc.message}" if args.feed else exc.message)
    except ConfigError as exc:
        return _fail(f"{exc.issues[0]} (`watchfloor check` lists every problem)")
    except LookupError as exc:
        return _fail(str(exc.args[0]))
    except OSError as exc:
        return _fail(f"cannot read {args.source}: {exc.strerror or exc}")
    ascii_only = (sys.stdout.encoding or "").lower().replace("-", "") != "utf8"
    try:
        for item in parsed.items:
            row: dict[str, str | None] = _row(item)
            if (article := texts.get(item.url)) is not None:
                row |= {"text": article.text[:200], "error": article.error}
            print(json.dumps(row, ensure_ascii=ascii_only), flush=True)
    except BrokenPipeError:  # `watchfloor parse URL | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if parsed.warning:
        print(f"warning: {parsed.warning}", file=sys.stderr)
    return 0


def _configured(
    feed_id: str, config_dir: Path, allow_private: bool, chromium: str
) -> tuple[ParsedFeed, dict[str, Followed]]:
    """What the poller reads from a configured source, and its articles when it follows."""
    source = load_config(config_dir).feed(feed_id)
    if source is None:
        places = f"{config_dir / 'feeds.yaml'} or {config_dir / 'feeds.d'}/"
        raise LookupError(f"no feed {feed_id!r} in {places}")
    headers = dict(source.headers)
    if source.render == "browser":
        result = render_page(
            source.url, allow_private=allow_private, headers=headers, chromium=chromium
        )
    else:
        result = fetch(source.url, allow_private=allow_private, headers=headers)
    if source.type == "rss":
        return parse_feed(result.body or b"", url=result.url, content_type=result.content_type), {}
    parsed = parse_listing(source, result)
    if not source.follow:
        return parsed, {}
    follower = Follower(
        limits=DEFAULT_LIMITS,
        allow_private=allow_private,
        delay=source.follow_delay,
        obey_robots=source.robots == "obey",
        headers=dict(source.headers),
    )
    urls = [item.url for item in parsed.items[: source.follow_max]]
    return parsed, {f.url: f for f in follower.follow(urls)}


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
