"""Silences: while one is active, a watch-list's matches are recorded, not sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from worker.models import Silence


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    id: int
    watchlist_id: str
    channel_id: str | None  # None: every channel
    starts_at: datetime
    ends_at: datetime
    reason: str


def _record(row: Silence) -> SilenceRecord:
    return SilenceRecord(
        row.id, row.watchlist_id, row.channel_id, row.starts_at, row.ends_at, row.reason
    )


def active(session: Session, now: datetime) -> list[SilenceRecord]:
    rows = session.scalars(select(Silence).where(Silence.ends_at > now).order_by(Silence.id))
    return [_record(row) for row in rows]


def add(
    session: Session,
    watchlist_id: str,
    channel_id: str | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
) -> SilenceRecord:
    row = Silence(
        watchlist_id=watchlist_id,
        channel_id=channel_id,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
    )
    session.add(row)
    session.flush()
    return _record(row)


def remove(session: Session, ids: Sequence[int]) -> int:
    result = session.execute(delete(Silence).where(Silence.id.in_(list(ids))))
    return int(getattr(result, "rowcount", 0) or 0)
