"""The outbox's SQL: alerts (matches), ops events, and the rows that deliver them.

Every status change goes through ``apply``: it asks ``transitions.transition`` for the next
state and writes it with an UPDATE that holds only while the row is as it was read, so of
two workers claiming one row exactly one wins. Set-based moves (a digest forming, its
members following it) use the same states, named from ``DeliveryStatus``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from alerts.controls import RetryPolicy
from alerts.types import Hit, Match
from worker.models import Delivery, DeliveryStatus, DigestRow, Item, MatchRow, OpsEvent, Story
from worker.outbox.transitions import (
    BATCHABLE,
    CLAIMABLE,
    Batch,
    Claim,
    Event,
    Follow,
    IllegalTransition,
    Requeue,
    RowState,
    Sent,
    transition,
)
from worker.planning import Plan
from worker.store import insert_ignore
from worker.store.items import first_reported_many

S = DeliveryStatus


class Kind(StrEnum):
    """The two tables of the one row protocol."""

    DELIVERY = "delivery"
    DIGEST = "digest"


OutboxModel = type[Delivery] | type[DigestRow]
MODELS: dict[Kind, OutboxModel] = {Kind.DELIVERY: Delivery, Kind.DIGEST: DigestRow}


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A plain snapshot of one outbox row: what it sends, to which channel, and its state."""

    kind: Kind
    id: str
    channel_id: str
    state: RowState
    match_id: int | None = None  # a delivery of an alert
    ops_event_id: int | None = None  # a delivery of an ops event
    digest_id: str | None = None  # the digest a batched delivery joined


def new_row_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


# --- alerts and ops events ------------------------------------------------------------------


def insert_alert(
    session: Session,
    item_id: int,
    story_id: int,
    update_kind: str,
    severity: str,
    match: Match,
    now: datetime,
) -> int | None:
    """Record a match once per (watch-list, story, update); None when it is already there."""
    row = {
        "item_id": item_id,
        "watchlist_id": match.watchlist_id,
        "story_id": story_id,
        "update_kind": update_kind,
        "severity": severity,
        "hits": [hit_to_json(h) for h in match.hits],
        "snippet": match.snippet,
        "created_at": now,
    }
    unique = ["watchlist_id", "story_id", "update_kind"]
    [match_id] = insert_ignore(session, MatchRow.__table__, [row], unique)
    return int(match_id) if match_id is not None else None


def hit_to_json(hit: Hit) -> dict[str, Any]:
    return {
        "term": hit.term,
        "field": hit.field,
        "start": hit.start,
        "end": hit.end,
        "snippet": hit.snippet,
    }


def insert_ops_event(
    session: Session, key: str, subject: str, title: str, message: str, now: datetime
) -> int | None:
    """Record an ops event once per ``key`` (one failing episode); None when known."""
    row = {"key": key, "subject": subject, "title": title, "message": message, "created_at": now}
    [event_id] = insert_ignore(session, OpsEvent.__table__, [row], ["key"])
    return int(event_id) if event_id is not None else None


def insert_deliveries(
    session: Session,
    plans: Mapping[str, Plan],
    now: datetime,
    *,
    match_id: int | None = None,
    ops_event_id: int | None = None,
) -> list[str]:
    """One outbox row per channel, as planned; returns the ids to enqueue now."""
    source = {"match_id": match_id, "ops_event_id": ops_event_id}
    rows = [
        {
            "id": new_row_id(),
            **source,
            "channel_id": channel_id,
            "status": plan.status,
            "attempts": 0,
            "next_attempt_at": plan.next_attempt_at,
            "enqueued_at": now,
            "last_error": plan.note,
            "created_at": now,
        }
        for channel_id, plan in plans.items()
    ]
    unique = ["match_id" if match_id is not None else "ops_event_id", "channel_id"]
    ids = insert_ignore(session, Delivery.__table__, rows, unique)
    due_now = {channel_id for channel_id, plan in plans.items() if _sends_now(plan, now)}
    return [
        str(row_id)
        for row_id, row in zip(ids, rows, strict=True)
        if row_id is not None and row["channel_id"] in due_now
    ]


def _sends_now(plan: Plan, now: datetime) -> bool:
    return plan.status is S.PENDING and plan.next_attempt_at <= now


# --- one row, one transition ----------------------------------------------------------------


def load(session: Session, kind: Kind, row_id: str) -> OutboxRow | None:
    row: Delivery | DigestRow | None
    if kind is Kind.DELIVERY:
        row = session.get(Delivery, row_id, populate_existing=True)
    else:
        row = session.get(DigestRow, row_id, populate_existing=True)
    return None if row is None else _snapshot(kind, row)


def _snapshot(kind: Kind, row: Delivery | DigestRow) -> OutboxRow:
    state = RowState(
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        claimed_at=row.claimed_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
    )
    if isinstance(row, Delivery):
        return OutboxRow(
            kind, row.id, row.channel_id, state, row.match_id, row.ops_event_id, row.digest_id
        )
    return OutboxRow(kind, row.id, row.channel_id, state)


def apply(
    session: Session, row: OutboxRow, event: Event, now: datetime, policy: RetryPolicy
) -> OutboxRow | None:
    """Move ``row`` by ``event`` if it is still in the state read; None when another worker
    moved it first, or when the event does not apply (a sent row is never claimed again)."""
    try:
        new = transition(row.state, event, now, policy)
    except IllegalTransition:
        return None
    model = MODELS[row.kind]
    old = row.state
    result = session.execute(
        update(model)
        .where(
            model.id == row.id,
            model.status == old.status,
            model.attempts == old.attempts,
            model.claimed_at.is_not_distinct_from(old.claimed_at),
        )
        .values(
            status=new.status,
            attempts=new.attempts,
            next_attempt_at=new.next_attempt_at,
            claimed_at=new.claimed_at,
            last_error=new.last_error,
            sent_at=new.sent_at,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return None
    return OutboxRow(
        row.kind, row.id, row.channel_id, new, row.match_id, row.ops_event_id, row.digest_id
    )


def claim(
    session: Session, kind: Kind, row_id: str, now: datetime, lease: timedelta
) -> OutboxRow | None:
    """Take a due row for one attempt; None when it is sent, dead, not due or taken."""
    row = load(session, kind, row_id)
    return None if row is None else apply(session, row, Claim(lease), now, RetryPolicy())


def claim_candidates(
    session: Session, ids: Sequence[str], now: datetime, lease: timedelta
) -> list[tuple[str, str]]:
    """(id, channel id) of the given deliveries that are claimable, oldest first. On
    PostgreSQL they are locked with SKIP LOCKED, so a row another worker is claiming right
    now is passed over, not waited for."""
    if not ids:
        return []
    query = (
        select(Delivery.id, Delivery.channel_id)
        .where(Delivery.id.in_(list(ids)), claimable_rows(Delivery, now, lease))
        .order_by(Delivery.created_at, Delivery.id)
        .with_for_update(skip_locked=True)
    )
    return [(str(i), str(c)) for i, c in session.execute(query)]


def claim_many(
    session: Session, ids: Sequence[str], now: datetime, lease: timedelta
) -> list[OutboxRow]:
    """``transitions.Claim`` for many deliveries in one UPDATE (the SQL form of the pure
    transition: sending, one more attempt, claimed now); only the rows still claimable are
    taken and returned, oldest first."""
    if not ids:
        return []
    claim = transition(_DUE, Claim(lease), now, RetryPolicy())
    returned = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(ids)), claimable_rows(Delivery, now, lease))
        .values(status=claim.status, attempts=Delivery.attempts + 1, claimed_at=claim.claimed_at)
        .returning(Delivery)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    rows = sorted(returned.scalars(), key=lambda row: (row.created_at, row.id))
    return [_snapshot(Kind.DELIVERY, row) for row in rows]


def _moved(row: OutboxRow, event: Event, now: datetime) -> OutboxRow:
    return replace(row, state=transition(row.state, event, now, RetryPolicy()))


def mark_sent(session: Session, rows: Sequence[OutboxRow], now: datetime) -> list[OutboxRow]:
    """``transitions.Sent`` for many claimed deliveries in one UPDATE; a row whose claim
    another worker has since taken over (its lease ran out) is left to that worker."""
    by_claim: dict[datetime | None, list[OutboxRow]] = {}
    for row in rows:
        by_claim.setdefault(row.state.claimed_at, []).append(row)
    done = []
    for claimed_at, group in by_claim.items():
        sent = transition(group[0].state, Sent(), now, RetryPolicy())  # the same for each
        moved = session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_([row.id for row in group]),
                Delivery.status == S.SENDING,
                Delivery.claimed_at.is_not_distinct_from(claimed_at),
            )
            .values(status=sent.status, sent_at=sent.sent_at, last_error=sent.last_error)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
        won = set(moved.scalars())
        done += [_moved(row, Sent(), now) for row in group if row.id in won]
    return done


# --- set-based moves ------------------------------------------------------------------------


def claimable_rows(model: OutboxModel, now: datetime, lease: timedelta) -> ColumnElement[bool]:
    """``transitions.claimable`` in SQL."""
    return or_(
        and_(model.status.in_(CLAIMABLE), model.next_attempt_at <= now),
        and_(model.status == S.SENDING, model.claimed_at <= now - lease),
    )


def due_rows(
    session: Session, kind: Kind, now: datetime, lease: timedelta, requeue_after: timedelta
) -> list[str]:
    """Claimable rows not enqueued recently: the broker may have lost them. Marks them."""
    model = MODELS[kind]
    not_recent = or_(model.enqueued_at.is_(None), model.enqueued_at <= now - requeue_after)
    due = and_(claimable_rows(model, now, lease), or_(model.status == S.SENDING, not_recent))
    ids = list(session.scalars(select(model.id).where(due).limit(1000)))
    mark_enqueued(session, kind, ids, now)
    return ids


def mark_enqueued(session: Session, kind: Kind, ids: Sequence[str], now: datetime) -> None:
    model = MODELS[kind]
    if ids:
        session.execute(update(model).where(model.id.in_(ids)).values(enqueued_at=now))


def batch_digests(session: Session, now: datetime) -> list[str]:
    """Put due digest-mode and held deliveries into digests (``transitions.Batch``); one
    UPDATE per channel, so a delivery joins exactly one digest even when two sweeps run at
    once. Returns the new digests' ids, marked enqueued: send them after commit."""
    made = []
    for status, reason in ((S.DIGEST, "digest"), (S.HELD, "rate-limit")):
        assert status in BATCHABLE
        due = (Delivery.status == status) & (Delivery.next_attempt_at <= now)
        for channel_id in session.scalars(select(Delivery.channel_id).where(due).distinct()):
            digest = _digest_row(new_row_id(), channel_id, reason, now)
            session.add(digest)
            session.flush()  # the row the deliveries' foreign key points at comes first
            joined = session.execute(
                update(Delivery)
                .where(due & (Delivery.channel_id == channel_id))
                .values(status=transition(_BATCHABLE, Batch(), now, RetryPolicy()).status)
                .values(digest_id=digest.id)
            )
            if not getattr(joined, "rowcount", 0):  # another sweep took them
                session.delete(digest)
                continue
            start, last = session.execute(
                select(func.min(Delivery.created_at), func.max(Delivery.next_attempt_at)).where(
                    Delivery.digest_id == digest.id
                )
            ).one()
            digest.window_start, digest.window_end = start, min(last, now)
            made.append(digest.id)
    return made


def _digest_row(digest_id: str, channel_id: str, reason: str, now: datetime) -> DigestRow:
    return DigestRow(
        id=digest_id,
        channel_id=channel_id,
        reason=reason,
        window_start=now,
        window_end=now,
        status=S.PENDING,
        attempts=0,
        next_attempt_at=now,
        enqueued_at=now,
        created_at=now,
    )


def follow_digest(
    session: Session, digest: OutboxRow, now: datetime, message: str | None = None
) -> None:
    """Members of a sent or dead digest take its outcome (``transitions.Follow``); a dead
    one's members are dead too, so ``deliveries retry`` can resend them one by one."""
    if digest.state.status not in (S.SENT, S.DEAD):
        return
    event = Follow(digest.id, digest.state.status is S.SENT, message)
    new = transition(_BATCHED, event, now, RetryPolicy())
    session.execute(
        update(Delivery)
        .where(Delivery.digest_id == digest.id, Delivery.status == S.BATCHED)
        .values(status=new.status, sent_at=new.sent_at, last_error=new.last_error)
    )


_BATCHED = RowState(S.BATCHED, 0, datetime.min.replace(tzinfo=UTC))  # any batched member
_BATCHABLE = replace(_BATCHED, status=S.DIGEST)
_DUE = replace(_BATCHED, status=S.PENDING)  # any due pending row
_DEAD = replace(_BATCHED, status=S.DEAD)


def requeue_dead(session: Session, ids: Sequence[str] | None, now: datetime) -> list[str]:
    """``transitions.Requeue`` for the given dead deliveries (all dead ones with None)."""
    condition = Delivery.status == S.DEAD
    if ids is not None:
        condition = condition & Delivery.id.in_(list(ids))
    found = list(session.scalars(select(Delivery.id).where(condition)))
    new = transition(_DEAD, Requeue(), now, RetryPolicy())
    if found:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(found), Delivery.status == S.DEAD)
            .values(
                status=new.status,
                attempts=new.attempts,
                next_attempt_at=new.next_attempt_at,
                claimed_at=new.claimed_at,
                enqueued_at=now,
            )
        )
    return found


# --- what the rate limit and the sweep read -------------------------------------------------


def digest_members(session: Session, digest_id: str) -> list[OutboxRow]:
    rows = session.scalars(
        select(Delivery).where(Delivery.digest_id == digest_id).order_by(Delivery.created_at)
    )
    return [_snapshot(Kind.DELIVERY, row) for row in rows]


def sent_since(
    session: Session, channel_id: str, except_ids: Collection[str], since: datetime
) -> int:
    """Alerts the channel sent alone since ``since``, plus those being sent right now
    (claimed by another worker, not yet recorded)."""
    recent = or_(Delivery.sent_at >= since, Delivery.status == S.SENDING)
    query = select(func.count()).select_from(Delivery)
    query = query.where(
        Delivery.channel_id == channel_id,
        Delivery.id.not_in(list(except_ids)),
        Delivery.digest_id.is_(None),
        recent,
    )
    return session.scalar(query) or 0


def held_release(session: Session, channel_id: str) -> datetime | None:
    """When the channel's current burst of held alerts goes out, if one is waiting."""
    held = (Delivery.channel_id == channel_id) & (Delivery.status == S.HELD)
    return session.scalar(select(func.min(Delivery.next_attempt_at)).where(held))


def outbox_backlog(session: Session, now: datetime) -> int:
    due = Delivery.status.in_(CLAIMABLE) & (Delivery.next_attempt_at <= now)
    return session.scalar(select(func.count()).select_from(Delivery).where(due)) or 0


# --- what a message is made of --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """A match with its item and story, as an alert tells it."""

    match_id: int
    watchlist_id: str
    severity: str
    update_kind: str
    hits: tuple[Hit, ...]
    snippet: str
    created_at: datetime
    item_title: str
    item_url: str
    feed_id: str
    published_at: datetime | None
    fetched_at: datetime
    summary: str
    story_id: int | None
    story_first_seen: datetime | None
    sources: tuple[str, ...]
    language: str | None = None  # the item's, as detected; None when unsure
    story_languages: tuple[str, ...] = ()  # every language the story was reported in


@dataclass(frozen=True, slots=True)
class OpsFacts:
    event_id: int
    subject: str
    title: str
    message: str
    created_at: datetime


def alert_facts(session: Session, match_id: int) -> AlertFacts:
    found = alert_facts_many(session, [match_id])
    if match_id not in found:
        raise LookupError(f"match {match_id} or its item is gone")
    return found[match_id]


def alert_facts_many(session: Session, match_ids: Collection[int]) -> dict[int, AlertFacts]:
    """The facts of many matches in three queries; a match whose item is gone is left out."""
    if not match_ids:
        return {}
    query = (
        select(MatchRow, Item, Story)
        .join(Item, Item.id == MatchRow.item_id)
        .outerjoin(Story, Story.id == Item.story_id)
        .where(MatchRow.id.in_(list(match_ids)))
    )
    rows = session.execute(query).all()
    reported = first_reported_many(session, {s.id for _, _, s in rows if s is not None})
    facts = {}
    for match, item, story in rows:
        sources, languages = reported.get(story.id, ([], [])) if story else ([], [])
        facts[match.id] = AlertFacts(
            match_id=match.id,
            watchlist_id=match.watchlist_id,
            severity=match.severity,
            update_kind=match.update_kind,
            hits=tuple(Hit(**h) for h in match.hits),
            snippet=match.snippet,
            created_at=match.created_at,
            item_title=item.title,
            item_url=item.canonical_url,
            feed_id=item.feed_id,
            published_at=item.published_at,
            fetched_at=item.fetched_at,
            summary=item.summary,
            story_id=story.id if story else None,
            story_first_seen=story.first_seen if story else None,
            sources=tuple(sources),
            language=item.language if item.language not in (None, "und") else None,
            story_languages=tuple(languages),
        )
    return facts


def ops_facts(session: Session, event_id: int) -> OpsFacts:
    event = session.get(OpsEvent, event_id)
    if event is None:
        raise LookupError(f"ops event {event_id} is gone")
    return OpsFacts(event.id, event.subject, event.title, event.message, event.created_at)


@dataclass(frozen=True, slots=True)
class DigestFacts:
    window_start: datetime
    window_end: datetime
    reason: str  # "digest" or "rate-limit"


def digest_facts(session: Session, digest_id: str) -> DigestFacts:
    digest = session.get(DigestRow, digest_id)
    if digest is None:
        raise LookupError(f"digest {digest_id} is gone")
    return DigestFacts(digest.window_start, digest.window_end, digest.reason)
