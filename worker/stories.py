"""Assign each new item to a story: the LSH band lookup in SQL, the final say in feeds.story."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from feeds import story as story_core
from feeds.types import FeedItem
from worker.models import Story, StoryBand


def _signature(story: Story) -> story_core.StorySignature | None:
    try:
        return story_core.from_json(story.signature)
    except ValueError:  # written by another signature version: it cannot be compared
        return None


def assign_story(
    session: Session, item: FeedItem, now: datetime, window: timedelta = story_core.STORY_WINDOW
) -> int:
    """The id of the story ``item`` belongs to, made anew when no recent story is close enough."""
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
        and (other := _signature(story)) is not None
        and story_core.same_story(sig, other)
    ]
    if scored:
        story = max(scored, key=lambda pair: pair[0])[1]
        story.last_seen = max(story.last_seen, seen)
    else:
        story = Story(
            first_seen=seen, last_seen=seen, title=item.title, signature=story_core.to_json(sig)
        )
        session.add(story)
        session.flush()
    _add_bands(session, story.id, keys, seen)
    return story.id


def _add_bands(session: Session, story_id: int, keys: set[int], seen: datetime) -> None:
    """A joining item's keys are added too, so a later copy close to it finds the story."""
    known = set(
        session.scalars(
            select(StoryBand.key).where(StoryBand.story_id == story_id, StoryBand.key.in_(keys))
        )
    )
    session.add_all(StoryBand(key=k, story_id=story_id, seen_at=seen) for k in keys - known)
