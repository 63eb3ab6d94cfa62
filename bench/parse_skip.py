"""CPU per changed feed: ``parse_feed`` skipping the items of the last poll, against a full parse.

    python bench/parse_skip.py [--feeds 200] [--items 20] [--new 2] [--repeat 3]

A poll that finds a feed changed used to parse every item only for the database to drop the
ones it had. Feeds come from bench/_loopback.py's ``Catalogue`` (news-like items with
escaped HTML, newest first, as the polling bench serves them). Each feed is parsed at
version 0 to learn its digests; version 1 (``--new`` items on top, as many old ones gone)
is then parsed in full and with ``skip``, in this process, on CPU time (best of
``--repeat`` passes), and the two compared as a ratio. "all seen" is the floor: the same
document with every item skipped (decoding, the scan, digests and the feed's head).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/parse_skip.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._loopback import Catalogue
from feeds.parse import parse_feed
from feeds.types import ParsedFeed

URL = "https://news.example.org/feed"


def changed_feeds(feeds: int, items: int, new: int) -> list[tuple[bytes, bytes]]:
    """(version 0, version 1) of each feed; the catalogue changes its even-numbered ones."""
    catalogue = Catalogue(feeds * 2, items, new)
    before = [catalogue.body(feed)[0] for feed in range(0, feeds * 2, 2)]
    catalogue.advance()
    return list(zip(before, [catalogue.body(f)[0] for f in range(0, feeds * 2, 2)], strict=True))


def cpu_ms_per_feed(parse: Callable[[int], ParsedFeed], feeds: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for i in range(feeds):
            parse(i)
        best = min(best, time.process_time() - start)
    return best * 1000 / feeds


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    pairs = changed_feeds(args.feeds, args.items, args.new)
    seen = [frozenset(parse_feed(old, url=URL).digests) for old, _ in pairs]
    full = [parse_feed(new, url=URL) for _, new in pairs]
    skipped = [parse_feed(new, url=URL, skip=s) for (_, new), s in zip(pairs, seen, strict=True)]
    for whole, part, old in zip(full, skipped, seen, strict=True):  # exactly the new items
        expected = [i for i, d in zip(whole.items, whole.digests, strict=True) if d not in old]
        if len(expected) != args.new or list(part.items) != expected:
            print("FAIL: skipping read other items than the new ones")
            return 1
    count = len(pairs)
    full_ms = cpu_ms_per_feed(lambda i: parse_feed(pairs[i][1], url=URL), count, args.repeat)
    skip_ms = cpu_ms_per_feed(
        lambda i: parse_feed(pairs[i][1], url=URL, skip=seen[i]), count, args.repeat
    )
    every = [frozenset(f.digests) for f in full]
    floor_ms = cpu_ms_per_feed(
        lambda i: parse_feed(pairs[i][1], url=URL, skip=every[i]), count, args.repeat
    )
    size = sum(len(new) for _, new in pairs) / count / 1024
    print(f"feeds {count:,}, {args.items} items each ({size:.0f} KB), {args.new} new per change")
    print(f"full parse: {full_ms:.2f} ms cpu per feed ({full_ms / args.items:.3f} ms per item)")
    print(f"with skip: {skip_ms:.2f} ms cpu per feed ({args.new} new items read)")
    print(f"all seen: {floor_ms:.2f} ms cpu per feed (no item read)")
    print(f"ratio full / skip: {full_ms / skip_ms:.1f}x")
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--new", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
