"""One poll worker process for bench/polling.py: the real poll path, timed from inside.

    python bench/_poll_worker.py --mode batched|sequential [--filing batched|one-at-a-time]
                                 [--feeds-file IDS]

Settings come from the environment as for ``celery worker`` (``WATCHFLOOR_DATABASE_URL``,
``WATCHFLOOR_CONFIG_DIR``, ...). The process prints ``ready``, waits for a line on stdin
(so that several start together), polls, and prints one JSON line: the feeds it polled,
their statuses, this process's CPU and wall seconds, and the filing of new items into
stories (``worker.poll_write.file_items``: calls, items, wall and CPU seconds, SQL
statements). ``batched`` is what a ``poll_due`` task does (``pipeline.poll_due``: claim a
batch of due feeds, fetch them at once, write them in one transaction) until no feed is
due; ``sequential`` polls ``--feeds-file``'s ids one after another (``pipeline.poll_feed``,
a batch of one). ``--filing one-at-a-time`` files each new item as before batching (commit
3453814): the first-poll baseline. With ``WATCHFLOOR_BENCH_PROFILE=PREFIX`` set, each process
also writes a cProfile of its polling to ``PREFIX.MODE.FILING.PID.pstats``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

if __package__ in (None, ""):  # run as ``python bench/_poll_worker.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feeds import story as story_core
from feeds.types import FeedItem
from worker import pipeline, poll_write
from worker.logs import configure_logging
from worker.models import Item, Story, StoryBand
from worker.pipeline import PollOutcome
from worker.runtime import build_runtime, tune_gc

LEASE = timedelta(minutes=10)


class Filing:
    """Stands in for ``worker.poll_write.file_items`` and times each call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = self.items = self.statements = 0
        self.seconds = self.cpu = 0.0
        self.active = False

    def __call__(
        self, session: Session, items: Sequence[tuple[int, FeedItem]], now: datetime
    ) -> dict[int, int]:
        self.active, wall, cpu = True, time.perf_counter(), time.process_time()
        try:
            result: dict[int, int] = self.inner(session, items, now)
            return result
        finally:
            self.active = False
            self.seconds += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
            self.calls, self.items = self.calls + 1, self.items + len(items)

    def count(self, *_: Any) -> None:
        self.statements += self.active


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.new_items = self.matches = 0
        self.errors: list[str] = []

    def __call__(self, outcome: PollOutcome) -> None:
        self.statuses[outcome.status] += 1
        self.new_items += len(outcome.new_items)
        self.matches += len(outcome.matches)
        if outcome.error:
            self.errors.append(f"{outcome.feed_id}: {outcome.error}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=("batched", "sequential"), default="batched")
    p.add_argument("--filing", choices=("batched", "one-at-a-time"), default="batched")
    p.add_argument("--feeds-file", type=Path)
    args = p.parse_args(argv)
    configure_logging("WARNING")
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115
    rt = build_runtime()
    rt.config.current()
    inner = file_one_at_a_time if args.filing == "one-at-a-time" else poll_write.file_items
    filing = poll_write.file_items = Filing(inner)  # type: ignore[assignment]
    event.listen(rt.engine, "before_cursor_execute", filing.count)
    ids = args.feeds_file.read_text().split() if args.feeds_file else []
    tune_gc()
    print("ready", flush=True)
    sys.stdin.readline()
    profile = os.environ.get("WATCHFLOOR_BENCH_PROFILE")  # a path prefix: one pstats file each
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    tally, wall, cpu = Tally(), time.perf_counter(), time.process_time()
    if args.mode == "batched":
        feeds = pipeline.poll_due(rt, LEASE, float("inf"), tally)
    else:
        for feed_id in ids:
            tally(pipeline.poll_feed(rt, feed_id))
        feeds = len(ids)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler:
        profiler.disable()
        profiler.dump_stats(f"{profile}.{args.mode}.{args.filing}.{os.getpid()}.pstats")
    out = {
        "feeds": feeds,
        "wall": wall,
        "cpu": cpu,
        "statuses": tally.statuses,
        "new_items": tally.new_items,
        "matches": tally.matches,
        "errors": len(tally.errors),
        "first_errors": tally.errors[:3],
        "filing": vars(filing) | {"inner": None, "active": None},
    }
    print(json.dumps(out), flush=True)
    rt.close()
    return 0


def file_one_at_a_time(
    session: Session, items: Sequence[tuple[int, FeedItem]], now: datetime
) -> dict[int, int]:
    """The baseline: filing as before batching (commit 3453814), item by item: ``assign_story``,
    then the pipeline's UPDATE of the item, which now writes its signature too (the batched
    path writes it, so both pay for it)."""
    story_of: dict[int, int] = {}
    for item_id, item in items:
        story_id, signature = _assign_story(session, item, now)
        values = {"story_id": story_id, "signature": signature}
        session.execute(update(Item).where(Item.id == item_id).values(**values))
        story_of[item_id] = story_id
    return story_of


def _assign_story(
    session: Session, item: FeedItem, now: datetime, window: timedelta = story_core.STORY_WINDOW
) -> tuple[int, str]:
    """3453814's ``assign_story``: one SELECT of the recent stories sharing a band key, each
    compared with its own signature; a new story is flushed for its id. Also returns the
    item's signature as JSON, for the UPDATE."""
    sig = story_core.story_signature(item.title, item.summary)
    keys = set(story_core.band_keys(sig))
    seen = item.published_at or now
    candidates = session.scalars(
        select(Story)
        .join(StoryBand, StoryBand.story_id == Story.id)
        .where(StoryBand.key.in_(keys), Story.last_seen >= seen - window)
        .distinct()
    ).all()
    scored = [
        (story_core.similarity(sig, other), story)
        for story in candidates
        if abs(story.first_seen - seen) <= window
        and (other := _old_signature(story)) is not None
        and story_core.same_story(sig, other)
    ]
    signature = story_core.to_json(sig)
    if scored:
        story = max(scored, key=lambda pair: pair[0])[1]
        story.last_seen = max(story.last_seen, seen)
    else:
        story = Story(first_seen=seen, last_seen=seen, title=item.title, signature=signature)
        session.add(story)
        session.flush()
    _add_bands(session, story.id, keys, seen)
    return story.id, signature


def _old_signature(story: Story) -> story_core.StorySignature | None:
    try:
        return story_core.from_json(story.signature)
    except ValueError:  # written by another signature version: it cannot be compared
        return None


def _add_bands(session: Session, story_id: int, keys: set[int], seen: datetime) -> None:
    """3453814's: a joining item's keys are added too, those the story lacks."""
    known = set(
        session.scalars(
            select(StoryBand.key).where(StoryBand.story_id == story_id, StoryBand.key.in_(keys))
        )
    )
    session.add_all(StoryBand(key=k, story_id=story_id, seen_at=seen) for k in keys - known)


if __name__ == "__main__":
    sys.exit(main())
