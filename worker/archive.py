"""The console's read model: the alert archive, full-text search, stories.

Pages are keyset-paginated on (created_at, id), newest first, so a deep page costs what the
first does. Search runs on the dialect's index (SQLite FTS5 ``items_fts``, PostgreSQL
``items.search_vector``; migration 0004) over the tokens ``alerts.search`` makes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Session, aliased

from alerts.search import fts5_query, parse_search, tsquery
from alerts.types import Hit
from worker.models import Delivery, Item, MatchRow, Story, Triage, User
from worker.store.triage import TriageState

PAGE_MAX = 200
_ITEMS_FTS = table("items_fts", column("rowid", Integer))  # SQLite's FTS5 index (migration 0004)
TRIAGE_STATES = ("new", "acknowledged", "assigned", "mine", "false_positive")


@dataclass(frozen=True)
class AlertFilter:
    watchlists: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    triage: str | None = None  # one of TRIAGE_STATES
    q: str = ""
    user_id: int | None = None  # for triage "mine"


@dataclass(frozen=True)
class AlertRow:
    match_id: int
    created_at: datetime
    watchlist_id: str
    severity: str
    update_kind: str
    snippet: str
    hits: tuple[Hit, ...]
    item_id: int
    title: str
    url: str
    feed_id: str
    published_at: datetime | None
    fetched_at: datetime
    summary: str
    language: str | None
    story_id: int | None
    story_first_seen: datetime | None
    triage: TriageState
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    rows: list[AlertRow]
    next_cursor: str | None


def encode_cursor(created_at: datetime, match_id: int) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{match_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    """None for anything that is not a cursor this module wrote (it comes from a URL)."""
    try:
        at, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        moment = datetime.fromisoformat(at)
        return (moment, int(ident)) if moment.tzinfo else None
    except (ValueError, UnicodeError):
        return None


def _search_condition(session: Session, q: str) -> ColumnElement[bool] | None:
    terms = parse_search(q)
    if not terms:
        return None
    if session.get_bind().dialect.name == "postgresql":
        query = func.to_tsquery(literal_column("'simple'"), bindparam("tsq", tsquery(terms)))
        return literal_column("items.search_vector").bool_op("@@")(query)
    match = literal_column("items_fts").bool_op("MATCH")(bindparam("fts", fts5_query(terms)))
    return Item.id.in_(select(_ITEMS_FTS.c.rowid).where(match))


AlertSelect = Select[MatchRow, Item, datetime, Triage, str, str]


def _alert_query(session: Session, filters: AlertFilter) -> AlertSelect:
    acked = aliased(User)
    assignee = aliased(User)
    query = (
        select(MatchRow, Item, Story.first_seen, Triage, acked.name, assignee.name)
        .join(Item, Item.id == MatchRow.item_id)
        .outerjoin(Story, Story.id == MatchRow.story_id)
        .outerjoin(Triage, Triage.match_id == MatchRow.id)
        .outerjoin(acked, acked.id == Triage.acknowledged_by)
        .outerjoin(assignee, assignee.id == Triage.assignee_id)
    )
    conditions: list[ColumnElement[bool]] = []
    if filters.watchlists:
        conditions.append(MatchRow.watchlist_id.in_(filters.watchlists))
    if filters.severities:
        conditions.append(MatchRow.severity.in_(filters.severities))
    if filters.feeds:
        conditions.append(Item.feed_id.in_(filters.feeds))
    if filters.languages:
        conditions.append(Item.language.in_(filters.languages))
    if filters.since:
        conditions.append(MatchRow.created_at >= filters.since)
    if filters.until:
        conditions.append(MatchRow.created_at < filters.until)
    if (state := _triage_condition(filters)) is not None:
        conditions.append(state)
    if filters.q and (search := _search_condition(session, filters.q)) is not None:
        conditions.append(search)
    return query.where(*conditions)


def _triage_condition(filters: AlertFilter) -> ColumnElement[bool] | None:
    not_fp = or_(Triage.false_positive.is_(None), Triage.false_positive.is_(False))
    if filters.triage == "new":
        return and_(Triage.acknowledged_at.is_(None), not_fp)
    if filters.triage == "acknowledged":
        return Triage.acknowledged_at.is_not(None)
    if filters.triage == "assigned":
        return Triage.assignee_id.is_not(None)
    if filters.triage == "mine":
        return Triage.assignee_id == (filters.user_id or -1)
    if filters.triage == "false_positive":
        return Triage.false_positive.is_(True)
    return None


def alerts(
    session: Session, filters: AlertFilter, cursor: str | None = None, limit: int = 50
) -> Page:
    """One page of alerts, newest first; ``next_cursor`` continues after its last row."""
    limit = max(1, min(limit, PAGE_MAX))
    query = _alert_query(session, filters)
    after = decode_cursor(cursor) if cursor else None
    if after is not None:
        at, ident = after
        query = query.where(
            or_(MatchRow.created_at < at, and_(MatchRow.created_at == at, MatchRow.id < ident))
        )
    query = query.order_by(MatchRow.created_at.desc(), MatchRow.id.desc()).limit(limit + 1)
    rows = [_row(*r) for r in session.execute(query)]
    more = len(rows) > limit
    rows = _with_sources(session, rows[:limit])
    last = rows[-1] if rows else None
    return Page(rows, encode_cursor(last.created_at, last.match_id) if more and last else None)


def alerts_after(session: Session, match_id: int, limit: int = 50) -> list[AlertRow]:
    """Alerts newer than ``match_id`` (ids grow with time), oldest first: the live stream."""
    query = _alert_query(session, AlertFilter()).where(MatchRow.id > match_id)
    rows = session.execute(query.order_by(MatchRow.id).limit(limit))
    return _with_sources(session, [_row(*r) for r in rows])


def latest_alert_id(session: Session) -> int:
    return session.scalar(select(func.max(MatchRow.id))) or 0


def _row(
    match: MatchRow,
    item: Item,
    first_seen: datetime | None,
    triage: Triage | None,
    acked_by: str | None,
    assignee: str | None,
) -> AlertRow:
    state = TriageState()
    if triage is not None:
        state = TriageState(
            triage.acknowledged_at,
            acked_by,
            assignee,
            triage.false_positive,
            triage.false_positive_reason,
        )
    return AlertRow(
        match_id=match.id,
        created_at=match.created_at,
        watchlist_id=match.watchlist_id,
        severity=match.severity,
        update_kind=match.update_kind,
        snippet=match.snippet,
        hits=tuple(Hit(**h) for h in match.hits),
        item_id=item.id,
        title=item.title,
        url=item.canonical_url,
        feed_id=item.feed_id,
        published_at=item.published_at,
        fetched_at=item.fetched_at,
        summary=item.summary,
        language=item.language,
        story_id=match.story_id,
        story_first_seen=first_seen,
        triage=state,
    )


def _with_sources(session: Session, rows: list[AlertRow]) -> list[AlertRow]:
    """Each row with its story's sources, first reporter first, in one query for the page."""
    story_ids = {r.story_id for r in rows if r.story_id is not None}
    if not story_ids:
        return rows
    first = func.min(Item.fetched_at)
    found = session.execute(
        select(Item.story_id, Item.feed_id, first)
        .where(Item.story_id.in_(story_ids))
        .group_by(Item.story_id, Item.feed_id)
        .order_by(Item.story_id, first)
    )
    sources: dict[int, list[str]] = {}
    for story_id, feed_id, _ in found:
        if story_id is not None:
            sources.setdefault(story_id, []).append(feed_id)
    return [replace(r, sources=tuple(sources.get(r.story_id or -1, ()))) for r in rows]


# --- search over items -----------------------------------------------------------------------


@dataclass(frozen=True)
class ItemRow:
    id: int
    feed_id: str
    title: str
    url: str
    summary: str
    published_at: datetime | None
    fetched_at: datetime
    language: str | None
    story_id: int | None


def search_items(session: Session, q: str, limit: int = 50) -> list[ItemRow]:
    """Items whose text holds every word of ``q``, newest first."""
    condition = _search_condition(session, q)
    if condition is None:
        return []
    rows = session.scalars(
        select(Item).where(condition).order_by(Item.id.desc()).limit(min(limit, PAGE_MAX))
    )
    return [_item(i) for i in rows]


def _item(i: Item) -> ItemRow:
    return ItemRow(
        i.id,
        i.feed_id,
        i.title,
        i.canonical_url,
        i.summary,
        i.published_at,
        i.fetched_at,
        i.language,
        i.story_id,
    )


# --- a story ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryView:
    id: str
    match_id: int | None
    channel_id: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


@dataclass
class StoryView:
    id: int
    title: str
    first_seen: datetime
    items: list[ItemRow] = field(default_factory=list)  # in time order: every source
    alerts: list[AlertRow] = field(default_factory=list)
    deliveries: list[DeliveryView] = field(default_factory=list)


def story(session: Session, story_id: int) -> StoryView | None:
    row = session.get(Story, story_id)
    if row is None:
        return None
    view = StoryView(row.id, row.title, row.first_seen)
    seen = func.coalesce(Item.published_at, Item.fetched_at)
    items = session.scalars(select(Item).where(Item.story_id == story_id).order_by(seen, Item.id))
    view.items = [_item(i) for i in items]
    view.alerts = _story_alerts(session, story_id)
    match_ids = [a.match_id for a in view.alerts]
    deliveries = session.scalars(
        select(Delivery).where(Delivery.match_id.in_(match_ids)).order_by(Delivery.created_at)
    )
    view.deliveries = [
        DeliveryView(d.id, d.match_id, d.channel_id, d.status, d.attempts, d.last_error, d.sent_at)
        for d in deliveries
    ]
    return view


def _story_alerts(session: Session, story_id: int) -> list[AlertRow]:
    query = _alert_query(session, AlertFilter()).where(MatchRow.story_id == story_id)
    rows = session.execute(query.order_by(MatchRow.created_at, MatchRow.id))
    return _with_sources(session, [_row(*r) for r in rows])


def match_ids_of_story(session: Session, story_id: int) -> list[int]:
    return list(session.scalars(select(MatchRow.id).where(MatchRow.story_id == story_id)))


def alert(session: Session, match_id: int) -> AlertRow | None:
    query = _alert_query(session, AlertFilter()).where(MatchRow.id == match_id)
    found = [_row(*r) for r in session.execute(query)]
    return _with_sources(session, found)[0] if found else None


def watchlist_stats(session: Session, since: datetime) -> dict[str, tuple[int, int]]:
    """watch-list id -> (alerts since ``since``, of them marked false positive)."""
    fp = func.sum(case((Triage.false_positive.is_(True), 1), else_=0))
    rows = session.execute(
        select(MatchRow.watchlist_id, func.count(), fp)
        .outerjoin(Triage, Triage.match_id == MatchRow.id)
        .where(MatchRow.created_at >= since)
        .group_by(MatchRow.watchlist_id)
    )
    return {w: (int(n), int(f or 0)) for w, n, f in rows}


def recent_for_watchlist(session: Session, watchlist_id: str, limit: int = 20) -> list[AlertRow]:
    return alerts(session, AlertFilter(watchlists=(watchlist_id,)), limit=limit).rows


def ids_of(rows: Sequence[AlertRow]) -> list[int]:
    return [r.match_id for r in rows]
