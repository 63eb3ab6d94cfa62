"""Ops alerts are alerts: a failing feed or channel writes an ops event and its delivery to
the ops channel in the transaction that records the error, and the deliver queue sends it
with retries, dedupe and the channel's rate limit, like any other."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from worker.config import Config
from worker.outbox import store as outbox_store
from worker.planning import plan_delivery


def raise_ops_alert(
    session: Session,
    config: Config,
    key: str,
    subject: str,
    errors: int,
    message: str,
    now: datetime,
) -> list[str]:
    """Record that ``subject`` is failing, once per ``key`` (one episode), with a delivery
    to the ops channel; returns the delivery ids to enqueue after commit. Nothing when no
    ops channel is set, or when the failing channel is the ops channel itself."""
    ops = config.ops_channel
    if ops is None or ops not in config.channels or subject == f"channel {ops}":
        return []
    title = f"{subject} is failing: {errors} errors in a row"
    event_id = outbox_store.insert_ops_event(session, key, subject, title, message, now)
    if event_id is None:  # told already
        return []
    plan = plan_delivery(None, config.channels[ops], None, now, severity="high")
    return outbox_store.insert_deliveries(session, {ops: plan}, now, ops_event_id=event_id)
