"""File a poll's new items into stories, all at once.

The band keys find candidate stories in SQL (one read for all the items); the choice is
``feeds.story.choose_story``, the same function the tests and ``bench/stories.py`` score;
items of the same batch can join a story made by an earlier one. The choices are written in
a few statements (``store.items.write_stories``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy.orm import Session

from feeds import story as story_core
from feeds.types import FeedItem
from worker.store import items as items_store
from worker.store.items import Filed, NewStory, StoryRecord


def file_items(
    session: Session,
    items: Sequence[tuple[int, FeedItem]],
    now: datetime,
    window: timedelta = story_core.STORY_WINDOW,
) -> dict[int, int]:
    """item id -> story id for each new item, new stories made where none is close enough."""
    if not items:
        return {}
    sigs = {item_id: story_core.story_signature(i.title, i.summary) for item_id, i in items}
    seen = {item_id: item.published_at or now for item_id, item in items}
    keys = {item_id: frozenset(story_core.band_keys(sig)) for item_id, sig in sigs.items()}
    since = min(seen.values()) - window
    index = items_store.band_index(session, set().union(*keys.values()), since)
    wanted = {sid for k in keys.values() for sid in story_core.nearest_candidates(k, index)}
    known = items_store.stories_with_members(session, wanted)
    filer = story_core.StoryFiler({sid: _parsed(s) for sid, s in known.items()}, index, window)
    new_stories: list[NewStory] = []
    filed: list[Filed] = []
    touched: dict[int, datetime] = {}
    for item_id, item in items:
        sig, at = sigs[item_id], seen[item_id]
        chosen, signature = filer.file(sig, at, keys[item_id]), story_core.to_json(sig)
        if chosen < 0 and -chosen > len(new_stories):  # the filer made a story for it
            new_stories.append(NewStory(item.title, signature, at, at))
        elif chosen > 0:
            touched[chosen] = max(touched.get(chosen, at), at)
        new = -chosen - 1 if chosen < 0 else None
        story_id = chosen if chosen > 0 else None
        filed.append(Filed(item_id, signature, keys[item_id], at, story_id, new))
    return items_store.write_stories(session, filed, new_stories, touched)


def _parsed(story: StoryRecord) -> list[tuple[story_core.StorySignature, datetime]]:
    """Members whose signature this release can read (another version cannot be compared)."""
    out = []
    for member in story.members:
        try:
            out.append((_signature(member.signature), member.seen))
        except ValueError:
            continue
    return out


# A story's members come back as candidates poll after poll: parse each stored signature
# once per process (a signature is immutable; 4,096 of them hold about 35 MB).
_signature = lru_cache(maxsize=4096)(story_core.from_json)
