"""Items and stories: the new-item filter, what story clustering reads and writes, retention.

Story writes are batched: a first poll of a feed files dozens of items, so the members of
every candidate story are read in two queries and the choices written in a few executemany
statements, not a round trip per item and band key.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Delete,
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

from alerts.search import index_text
from feeds.story import MAX_STORIES_PER_KEY, informative_keys
from feeds.types import FeedItem
from worker.models import Item, MatchRow, Story, StoryBand
from worker.store import dialect_insert, insert_many_ignore


@dataclass(frozen=True, slots=True)
class Member:
    """One item of a story, as clustering compares it."""

    signature: str  # feeds.story.to_json
    seen: datetime  # published, else fetched


@dataclass(slots=True)
class StoryRecord:
    id: int
    first_seen: datetime
    last_seen: datetime
    members: list[Member] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewStory:
    title: str
    signature: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class Filed:
    """Where one new item went: its story (new ones by their index in ``new_stories``)."""

    item_id: int
    signature: str
    band_keys: frozenset[int]
    seen: datetime
    story_id: int | None = None
    new_story: int | None = None


def insert_new(
    session: Session, feed_id: str, items: Sequence[FeedItem], now: datetime
) -> list[tuple[int, FeedItem]]:
    """Insert unseen items (by GUID, then by canonical URL within the feed); returns (id,
    item) of those inserted, in feed order."""
    return insert_new_many(session, {feed_id: items}, now).get(feed_id, [])


def insert_new_many(
    session: Session, items: Mapping[str, Sequence[FeedItem]], now: datetime
) -> dict[str, list[tuple[int, FeedItem]]]:
    """``insert_new`` for many feeds at once: two lookups and one INSERT for them all.

    An item is new unless its feed already holds its canonical URL or its GUID. ON
    CONFLICT DO NOTHING returns only the rows inserted: a racing worker keeps its own."""
    known_urls = _known(
        session, "canonical_url", {f: [i.url for i in its if i.url] for f, its in items.items()}
    )
    fresh = {
        feed_id: list(
            {i.guid: i for i in its if not i.url or (feed_id, i.url) not in known_urls}.values()
        )
        for feed_id, its in items.items()
    }
    known_guids = _known(session, "guid", {f: [i.guid for i in its] for f, its in fresh.items()})
    rows = [
        _item_row(feed_id, item, now)
        for feed_id, its in fresh.items()
        for item in its
        if (feed_id, item.guid) not in known_guids
    ]
    if not rows:
        return {}
    stmt = dialect_insert(session, Item.__table__).on_conflict_do_nothing(
        index_elements=["feed_id", "guid"]
    )
    ids: dict[tuple[str, str], int] = {}
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        returned = session.execute(stmt.returning(Item.feed_id, Item.guid, Item.id), chunk)
        ids.update(((feed_id, guid), item_id) for feed_id, guid, item_id in returned)
    inserted = {
        feed_id: [(ids[(feed_id, i.guid)], i) for i in its if (feed_id, i.guid) in ids]
        for feed_id, its in fresh.items()
    }
    return {feed_id: pairs for feed_id, pairs in inserted.items() if pairs}


def _known(
    session: Session, column: str, wanted: Mapping[str, Sequence[str]]
) -> set[tuple[str, str]]:
    """Which (feed id, value) pairs of ``column`` the feeds already hold: one query per
    chunk, by (feed_id, column) row values, which both unique indexes lead with."""
    pairs = sorted({(feed_id, value) for feed_id, values in wanted.items() for value in values})
    found: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), _PAIRS_PER_LOOKUP):
        rows = session.execute(known_lookup(column, pairs[start : start + _PAIRS_PER_LOOKUP]))
        found.update((feed_id, value) for feed_id, value in rows)
    return found


def known_lookup(column: str, pairs: Sequence[tuple[str, str]]) -> Select[str, Any]:
    """The (feed id, ``canonical_url`` or ``guid``) pairs of ``pairs`` already stored."""
    value = Item.canonical_url if column == "canonical_url" else Item.guid
    return select(Item.feed_id, value).where(tuple_(Item.feed_id, value).in_(list(pairs)))


_PAIRS_PER_LOOKUP = 2_000  # two parameters each: well under PostgreSQL's 65,535
_ROWS_PER_INSERT = 1_000


def known_guids(session: Session, feed_id: str, guids: Sequence[str]) -> set[str]:
    """Which of these item ids the feed has stored already."""
    if not guids:
        return set()
    return set(session.scalars(guid_lookup(feed_id, guids)))


def guid_lookup(feed_id: str, guids: Sequence[str]) -> Select[str]:
    return select(Item.guid).where(Item.feed_id == feed_id, Item.guid.in_(list(guids)))


def seen_times(session: Session, feed_id: str, since: datetime, limit: int = 200) -> list[datetime]:
    """When the feed's newest items (fetched since ``since``) were published, for adaptive
    polling; a missing or future date counts as when the item was first fetched."""
    return seen_times_many(session, [feed_id], since, limit).get(feed_id, [])


def seen_times_many(
    session: Session, feed_ids: Collection[str], since: datetime, limit: int = 200
) -> dict[str, list[datetime]]:
    """``seen_times`` for many feeds in one read per chunk of ids, newest first, at most
    ``limit`` a feed."""
    found: dict[str, list[tuple[int, datetime]]] = {}
    ids = sorted(set(feed_ids))
    for start in range(0, len(ids), _PAIRS_PER_LOOKUP):
        rows = session.execute(seen_lookup(ids[start : start + _PAIRS_PER_LOOKUP], since))
        for feed_id, item_id, published, fetched in rows:
            seen = min(published, fetched) if published else fetched
            found.setdefault(feed_id, []).append((item_id, seen))
    return {
        feed_id: [seen for _, seen in sorted(pairs, reverse=True)[:limit]]
        for feed_id, pairs in found.items()
    }


def seen_lookup(
    feed_ids: Sequence[str], since: datetime
) -> Select[str, int, datetime | None, datetime]:
    """The items these feeds fetched since ``since``: their publishing rhythm."""
    return select(Item.feed_id, Item.id, Item.published_at, Item.fetched_at).where(
        Item.feed_id.in_(list(feed_ids)), Item.fetched_at >= since
    )


def _item_row(feed_id: str, item: FeedItem, now: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "guid": item.guid,
        "canonical_url": item.url,
        "title": item.title,
        "summary": item.summary,
        "published_at": item.published_at,
        "fetched_at": now,
        "fingerprint": item.fingerprint,
        "search_text": index_text(item.title, item.summary),
        "language": item.language or "und",
    }


def band_index(session: Session, keys: Iterable[int], since: datetime) -> dict[int, set[int]]:
    """Which stories seen since ``since`` each of ``keys`` points at (over-shared keys
    dropped: ``band_lookup_capped`` on PostgreSQL, ``band_lookup`` elsewhere)."""
    keys = sorted(set(keys))
    index: dict[int, set[int]] = {}
    lookup = band_lookup_capped if session.get_bind().dialect.name == "postgresql" else band_lookup
    for start in range(0, len(keys), _KEYS_PER_LOOKUP):  # a key's stories all in one chunk
        for key, story_id in session.execute(lookup(keys[start : start + _KEYS_PER_LOOKUP], since)):
            index.setdefault(key, set()).add(story_id)
    return informative_keys(index)


_KEYS_PER_LOOKUP = 20_000  # one parameter each: a poll batch's items have 200,000


def stories_with_members(session: Session, ids: Iterable[int]) -> dict[int, StoryRecord]:
    """The stories ``ids`` with their members' signatures, in two reads."""
    ids = sorted(set(ids))
    stories: dict[int, StoryRecord] = {}
    for start in range(0, len(ids), _KEYS_PER_LOOKUP):
        chunk = ids[start : start + _KEYS_PER_LOOKUP]
        rows = session.execute(  # plain rows: an ORM object per candidate costs more
            select(Story.id, Story.first_seen, Story.last_seen).where(Story.id.in_(chunk))
        )
        stories.update((sid, StoryRecord(sid, first, last)) for sid, first, last in rows)
        for member_of, signature, at in session.execute(members_lookup(chunk)):
            if member_of is not None and signature is not None:  # both are, by the WHERE
                stories[member_of].members.append(Member(signature, _aware(at)))
    if not stories:
        return {}
    legacy = [s for s in stories.values() if not s.members]  # filed before items kept one
    for story in session.scalars(select(Story).where(Story.id.in_([s.id for s in legacy]))):
        stories[story.id].members.append(Member(story.signature, story.first_seen))
    return stories


def band_lookup(
    keys: Sequence[int], since: datetime, limit: int = MAX_STORIES_PER_KEY
) -> Select[int, int]:
    """Band keys of stories seen in the window: the candidates of a poll's new items.

    A key shared by more than ``limit`` stories tells none apart (``informative_keys``);
    the database counts them and sends none of its rows, so a stock phrase in thousands
    of stories costs a count, not thousands of rows in Python.
    """
    shared_by = func.count().over(partition_by=StoryBand.key).label("shared_by")
    found = (
        select(StoryBand.key, StoryBand.story_id, shared_by)
        .join(Story, Story.id == StoryBand.story_id)
        .where(StoryBand.key.in_(list(keys)), Story.last_seen >= since)
        .subquery()
    )
    return select(found.c.key, found.c.story_id).where(found.c.shared_by <= limit)


def band_lookup_capped(
    keys: Sequence[int], since: datetime, limit: int = MAX_STORIES_PER_KEY
) -> Select[int, int]:
    """``band_lookup`` on PostgreSQL, which stops reading a key at ``limit + 1`` stories.

    The window count of ``band_lookup`` reads every row of a stock phrase's key before it
    drops it: at 400,000 stored items a poll batch's lookup took most of the poll. Here
    each key reads its newest stories backward along the primary key (``key, story_id``)
    and stops at ``limit + 1`` in the window; ``informative_keys`` drops a key that has that
    many, so the index it builds is the same.
    """
    wanted = (
        func.unnest(bindparam("band_keys", list(keys), type_=ARRAY(BigInteger)))
        .table_valued("key")
        .render_derived(name="wanted")
    )
    hits = (
        select(StoryBand.story_id)
        .join(Story, Story.id == StoryBand.story_id)
        .where(StoryBand.key == wanted.c.key, Story.last_seen >= since)
        .order_by(StoryBand.story_id.desc())
        .limit(limit + 1)
        .lateral("hits")
    )
    return select(wanted.c.key, hits.c.story_id).select_from(wanted.join(hits, true()))


def members_lookup(story_ids: Sequence[int]) -> Select[int | None, str | None, datetime]:
    seen = func.coalesce(Item.published_at, Item.fetched_at)
    return select(Item.story_id, Item.signature, seen).where(
        Item.story_id.in_(list(story_ids)), Item.signature.is_not(None)
    )


def _aware(value: datetime) -> datetime:
    """coalesce() may come back without the column type's UTC conversion."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def write_stories(
    session: Session,
    filed: Sequence[Filed],
    new_stories: Sequence[NewStory],
    touched: dict[int, datetime],
) -> dict[int, int]:
    """Write clustering's choices: new stories, later last_seen of joined ones, band keys
    and each item's story and signature. Returns item id -> story id."""
    made: list[int] = []
    if new_stories:
        rows = [_story_row(s) for s in new_stories]
        result = session.execute(
            insert(Story).returning(Story.id, sort_by_parameter_order=True), rows
        )
        made = [row[0] for row in result.all()]
    for story_id, last_seen in sorted(touched.items()):  # one lock order for every writer
        session.execute(
            update(Story)
            .where(Story.id == story_id, Story.last_seen < last_seen)
            .values(last_seen=last_seen)
        )
    story_of = {f.item_id: _story_of(f, made) for f in filed}
    bands = {
        (key, story_of[f.item_id]): {"key": key, "story_id": story_of[f.item_id], "seen_at": f.seen}
        for f in filed
        for key in f.band_keys
    }
    rows = [bands[pair] for pair in sorted(bands)]  # one lock order: no deadlock between batches
    insert_many_ignore(session, StoryBand.__table__, rows, ["key", "story_id"])
    if filed:
        session.execute(
            update(Item),
            [
                {"id": f.item_id, "story_id": story_of[f.item_id], "signature": f.signature}
                for f in filed
            ],
        )
    return story_of


def _story_of(filed: Filed, made: Sequence[int]) -> int:
    if filed.new_story is not None:
        return made[filed.new_story]
    if filed.story_id is None:
        raise ValueError(f"item {filed.item_id} was filed into no story")
    return filed.story_id


def _story_row(story: NewStory) -> dict[str, Any]:
    return {
        "title": story.title,
        "signature": story.signature,
        "first_seen": story.first_seen,
        "last_seen": story.last_seen,
    }


def story_sources(
    session: Session, story_id: int | None, except_item: int | None = None
) -> list[str]:
    """Feed ids that carried the story, first reporter first."""
    return _first_reported(session, Item.feed_id, story_id, except_item)


def story_languages(
    session: Session, story_id: int | None, except_item: int | None = None
) -> list[str]:
    """The languages the story was reported in so far (detected ones only), first first."""
    found = _first_reported(session, Item.language, story_id, except_item)
    return [lang for lang in found if lang != "und"]


def _first_reported(
    session: Session,
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
    story_id: int | None,
    except_item: int | None,
) -> list[str]:
    """Distinct values of ``column`` among the story's items, in order of first fetch."""
    if story_id is None:
        return []
    query = select(column, func.min(Item.fetched_at).label("first"))
    query = query.where(Item.story_id == story_id, column.is_not(None))
    if except_item is not None:
        query = query.where(Item.id != except_item)
    rows = session.execute(query.group_by(column).order_by("first", column))
    return [value for value, _ in rows if value]


def first_reported_many(
    session: Session, story_ids: Collection[int]
) -> dict[int, tuple[list[str], list[str]]]:
    """Per story: its feed ids and its detected languages, each in order of first fetch
    (``story_sources`` and ``story_languages`` for many stories, two queries in all)."""
    found: dict[int, tuple[list[str], list[str]]] = {sid: ([], []) for sid in story_ids}
    if not found:
        return found
    for slot, column in enumerate((Item.feed_id, Item.language)):
        first = func.min(Item.fetched_at).label("first")
        query = select(Item.story_id, column, first).where(
            Item.story_id.in_(list(found)), column.is_not(None)
        )
        rows = session.execute(query.group_by(Item.story_id, column).order_by("first", column))
        for story_id, value, _ in rows:
            if story_id is not None and value and (slot == 0 or value != "und"):
                found[story_id][slot].append(value)
    return found


def prune(session: Session, now: datetime, keep_items: timedelta, keep_bands: timedelta) -> int:
    """Drop old items no alert points at, and story bands past the clustering window.

    Matches, deliveries and the items they name stay: an alert can always be re-rendered.
    """
    old = prune_items_statement(now - keep_items)
    removed = session.execute(old.execution_options(synchronize_session=False))
    session.execute(prune_bands_statement(now - keep_bands))
    return int(getattr(removed, "rowcount", 0) or 0)


def prune_items_statement(before: datetime) -> Delete:
    """Items fetched before ``before`` that no alert names."""
    return delete(Item).where(Item.fetched_at < before, Item.id.not_in(select(MatchRow.item_id)))


def prune_bands_statement(before: datetime) -> Delete:
    return delete(StoryBand).where(StoryBand.seen_at < before)
