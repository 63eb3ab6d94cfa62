"""Triage: an alert's current state (acknowledged, assignee, false positive) and the history
of who did what, written together in one transaction; and items flagged as missed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.models import MatchRow, MissedItem, Triage, TriageEvent, User
from worker.store import insert_ignore

DETAIL_MAX = 2000


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    UNACKNOWLEDGE = "unacknowledge"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    FALSE_POSITIVE = "false_positive"
    NOT_FALSE_POSITIVE = "not_false_positive"
    COMMENT = "comment"


class TriageError(ValueError):
    """A triage request that cannot be done (unknown alert or assignee, empty comment)."""


@dataclass(frozen=True, slots=True)
class TriageState:
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    assignee: str | None = None
    false_positive: bool = False
    false_positive_reason: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    user: str | None
    action: str
    detail: str


def apply(
    session: Session,
    match_ids: Sequence[int],
    user_id: int,
    action: Action,
    now: datetime,
    detail: str = "",
    assignee: str | None = None,
) -> int:
    """Apply one action to each alert (one, or every alert of a story); returns how many."""
    detail = detail.strip()[:DETAIL_MAX]
    if action is Action.COMMENT and not detail:
        raise TriageError("a comment needs some text")
    assignee_id = _assignee(session, assignee) if action is Action.ASSIGN else None
    known = list(session.scalars(select(MatchRow.id).where(MatchRow.id.in_(list(match_ids)))))
    if not known:
        raise TriageError("no such alert")
    for match_id in known:
        state = _state(session, match_id, now)
        _change(state, action, user_id, assignee_id, detail, now)
        note = (assignee or "") if action is Action.ASSIGN else detail
        session.add(
            TriageEvent(
                match_id=match_id, user_id=user_id, action=action, detail=note, created_at=now
            )
        )
    return len(known)


def _assignee(session: Session, name: str | None) -> int:
    found = session.scalar(select(User.id).where(User.name == (name or "")))
    if found is None:
        raise TriageError(f"no user {name!r} to assign")
    return found


def _state(session: Session, match_id: int, now: datetime) -> Triage:
    row = {"match_id": match_id, "false_positive": False, "updated_at": now}
    insert_ignore(session, Triage.__table__, [row], ["match_id"])
    state = session.get(Triage, match_id, populate_existing=True)
    if state is None:  # pragma: no cover - inserted just above, in this transaction
        raise TriageError(f"triage of alert {match_id} vanished")
    return state


def _change(
    state: Triage, action: Action, user_id: int, assignee_id: int | None, detail: str, now: datetime
) -> None:
    if action is Action.ACKNOWLEDGE:
        state.acknowledged_at, state.acknowledged_by = now, user_id
    elif action is Action.UNACKNOWLEDGE:
        state.acknowledged_at = state.acknowledged_by = None
    elif action is Action.ASSIGN:
        state.assignee_id = assignee_id
    elif action is Action.UNASSIGN:
        state.assignee_id = None
    elif action is Action.FALSE_POSITIVE:
        state.false_positive, state.false_positive_reason = True, detail or None
    elif action is Action.NOT_FALSE_POSITIVE:
        state.false_positive, state.false_positive_reason = False, None
    state.updated_at = now


def history(session: Session, match_ids: Sequence[int]) -> list[HistoryEntry]:
    rows = session.execute(
        select(TriageEvent, User.name)
        .outerjoin(User, User.id == TriageEvent.user_id)
        .where(TriageEvent.match_id.in_(list(match_ids)))
        .order_by(TriageEvent.created_at, TriageEvent.id)
    )
    return [HistoryEntry(e.created_at, name, e.action, e.detail) for e, name in rows]


def flag_missed(
    session: Session, item_id: int, watchlist_id: str, user_id: int, note: str, now: datetime
) -> bool:
    """An item a watch-list should have alerted on; False when it was flagged already."""
    row = {
        "item_id": item_id,
        "watchlist_id": watchlist_id,
        "user_id": user_id,
        "note": note.strip()[:DETAIL_MAX],
        "created_at": now,
    }
    [made] = insert_ignore(session, MissedItem.__table__, [row], ["item_id", "watchlist_id"])
    return made is not None
