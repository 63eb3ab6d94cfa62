"""CPU per new item of the story core (feeds/story.py), without the database.

    python bench/story_cost.py [--quick] [--feeds 100]

Items: the polling bench's (``bench/_loopback.render_item`` through ``feeds.parse``: an
8-14 word title, ~800 characters of summary), a first poll of ``--feeds`` feeds of 20 items
each; then the labelled sets of tests/data (wire copy and its reprints in English, Korean
and Russian, ~250 characters). Microseconds per item, the best of a few rounds of CPU time
(a shared machine's other load is not counted):

- ``story_signature`` and ``band_keys`` first with empty memos (every shingle hash's SHAKE
  output new, as at a worker's start), then warm; the MinHash step of ``band_keys`` (numpy
  column minima) against a pure-Python reference (64 strided ``min`` over an array, as before);
- ``to_json``, ``from_json``, and a comparison (``same_story`` of each item with the next);
- filing: the worker's whole loop for the first poll (signature, band keys,
  ``StoryFiler.file``, ``to_json``), memos and caches empty at the start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as ``python bench/story_cost.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._loopback import render_item
from feeds import story
from feeds.memo import Memo
from feeds.parse import parse_feed

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
LABELLED = ("stories.jsonl", "xling/dev.jsonl", "xling/holdout.jsonl")
AT = datetime(2026, 3, 3, 12, tzinfo=UTC)
ITEMS_PER_FEED = 20
T = TypeVar("T")


def bench_items(feeds: int) -> list[tuple[str, str]]:
    out = []
    for feed in range(feeds):
        items = "".join(render_item(feed, index, AT) for index in range(ITEMS_PER_FEED))
        rss = f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
        parsed = parse_feed(rss.encode(), url=f"https://example.org/{feed}").items
        out += [(item.title, item.summary) for item in parsed]
    return out


def labelled_items() -> list[tuple[str, str]]:
    rows = [json.loads(line) for name in LABELLED for line in (DATA / name).open(encoding="utf-8")]
    return [(row["title"], row["summary"]) for row in rows]


def per_item(
    run: Callable[[T], object], inputs: Sequence[T], rounds: int, fresh: bool = False
) -> float:
    """Microseconds of CPU per input, the best of ``rounds``; ``fresh`` empties the story
    core's memos and caches before each round."""
    best = float("inf")
    for _ in range(rounds):
        if fresh:
            forget()
        start = time.process_time()
        for value in inputs:
            run(value)
        best = min(best, time.process_time() - start)
    return best / len(inputs) * 1e6


def forget() -> None:
    """Empty the story core's memos (of words, shingles, SHAKE outputs) and caches."""
    for value in vars(story).values():
        if isinstance(value, Memo):
            value.clear()


def reference_minhash(hashes: tuple[int, ...], count: int) -> list[int]:
    """The MinHash step before numpy: one array of every hash's values, 64 strided ``min``."""
    rows = b"".join(row[: 4 * count] for row in story._HASH_VALUES.values(hashes))
    values = array("I", rows)  # the machines we run on are little-endian
    return [min(values[column::count]) for column in range(count)]


def filing(items: Sequence[tuple[str, str]]) -> float:
    """Microseconds per item for the worker's loop over one poll, from empty caches."""
    forget()
    filer = story.StoryFiler()
    start = time.process_time()
    for title, summary in items:
        sig = story.story_signature(title, summary)
        keys = story.band_keys(sig)
        filer.file(sig, AT, keys)
        story.to_json(sig)
    return (time.process_time() - start) / len(items) * 1e6


def report(name: str, items: list[tuple[str, str]], rounds: int) -> None:
    chars = sum(len(summary) for _, summary in items) / len(items)
    print(f"{name}: {len(items)} items, {chars:.0f} characters of summary")
    cold = per_item(lambda item: story.story_signature(*item), items, rounds, fresh=True)
    warm = per_item(lambda item: story.story_signature(*item), items, rounds)
    print(f"  story_signature  {cold:7.1f} us first pass, {warm:7.1f} us warm")
    sigs = [story.story_signature(*item) for item in items]
    cold = per_item(story.band_keys, sigs, rounds, fresh=True)
    warm = per_item(story.band_keys, sigs, rounds)
    print(f"  band_keys        {cold:7.1f} us first pass, {warm:7.1f} us warm")
    body = [s.hashes for s in sigs if s.hashes]
    count = story.BODY_BANDS * story.BODY_ROWS
    numpy = per_item(lambda h: story._minhash(h, count), body, rounds)
    python = per_item(lambda h: reference_minhash(h, count), body, rounds)
    ratio = python / numpy
    print(f"  minhash step     {numpy:7.1f} us (numpy), {python:.1f} us pure Python: {ratio:.1f}x")
    texts = [story.to_json(sig) for sig in sigs]
    print(f"  to_json          {per_item(story.to_json, sigs, rounds):7.1f} us")
    print(f"  from_json        {per_item(story.from_json, texts, rounds):7.1f} us")
    pairs = list(pairwise(sigs))
    compare = per_item(lambda pair: story.same_story(*pair), pairs, rounds)
    print(f"  same_story       {compare:7.1f} us per comparison")
    print(f"  filing           {filing(items):7.1f} us per new item (first poll, no database)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=100, help="feeds of 20 items (default 100)")
    parser.add_argument("--quick", action="store_true", help="5 feeds, 1 round: a smoke run")
    args = parser.parse_args(argv)
    feeds, rounds = (5, 1) if args.quick else (args.feeds, 3)
    report("bench items", bench_items(feeds), rounds)
    report("labelled items", labelled_items(), rounds)


if __name__ == "__main__":
    main()
