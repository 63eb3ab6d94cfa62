"""Heartbeats: timestamps written by singleton roles (beat), read by health checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from worker.models import Heartbeat


def beat(session: Session, name: str, now: datetime) -> None:
    row = session.get(Heartbeat, name)
    if row is None:
        session.add(Heartbeat(name=name, at=now))
    else:
        row.at = now
