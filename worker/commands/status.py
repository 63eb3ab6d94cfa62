"""``watchfloor status``: one screen for the operator on duty, read from the database.

Feeds in error, the outbox by status, the last poll and beat's heartbeat, today's alerts per
watch-list, and each channel's state. It reads only; ``watchfloor health`` is the pass/fail one.
"""

from __future__ import annotations

import argparse
from datetime import datetime, time
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from worker.commands.health import ago, health_engine, short_error
from worker.models import ChannelState, Delivery, Feed, Heartbeat, MatchRow, utcnow
from worker.settings import load_settings

STATUSES = ("pending", "sending", "failed", "dead", "sent")


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="feeds in error, outbox, today's alerts, channel states")
    p.add_argument("--limit", type=int, default=20, help="most rows per section (default 20)")
    p.set_defaults(func=run, needs_database=True)


def run(args: argparse.Namespace) -> int:
    from worker.db import SchemaOutOfDate, require_current_schema

    settings = load_settings()
    engine = health_engine(settings.database_url, timeout=5.0)
    try:
        require_current_schema(engine)
        with Session(engine) as session:
            lines = report(session, utcnow(), args.limit, _configured_channels(settings))
    except SchemaOutOfDate as exc:
        print(f"error: {exc}")
        return 1
    except SQLAlchemyError as exc:
        print(f"error: database: {short_error(exc)}")
        return 1
    finally:
        engine.dispose()
    print("\n".join(line.rstrip() for line in lines))
    return 0


def report(session: Session, now: datetime, limit: int, channels: list[str]) -> list[str]:
    lines = [f"Watchfloor status at {now:%Y-%m-%d %H:%M:%S} UTC", ""]
    lines += _activity(session, now)
    lines += _feeds(session, now, limit)
    lines += _deliveries(session)
    lines += _alerts_today(session, now, limit)
    lines += _channels(session, now, channels)
    return lines


def _when(value: datetime | None, now: datetime) -> str:
    return (
        "never"
        if value is None
        else f"{value:%Y-%m-%d %H:%M:%S} ({ago((now - value).total_seconds())} ago)"
    )


def _activity(session: Session, now: datetime) -> list[str]:
    last_poll = session.scalar(select(func.max(Feed.last_polled_at)))
    heartbeat = session.scalar(select(Heartbeat.at).where(Heartbeat.name == "beat"))
    return [f"last poll       {_when(last_poll, now)}", f"beat heartbeat  {_when(heartbeat, now)}"]


def _feeds(session: Session, now: datetime, limit: int) -> list[str]:
    total = session.scalar(select(func.count()).select_from(Feed)) or 0
    troubled = (Feed.error_count > 0) | Feed.disabled_reason.is_not(None)
    rows = session.scalars(
        select(Feed).where(troubled).order_by(Feed.error_count.desc(), Feed.id)
    ).all()
    disabled = sum(1 for f in rows if f.disabled_reason)
    lines = ["", f"feeds: {total} known, {len(rows) - disabled} in error, {disabled} disabled"]
    if rows:
        lines.append(f"  {'FEED':<28} {'ERRORS':>6}  {'AGO':<8} LAST ERROR")
    for feed in rows[:limit]:
        since = ago((now - feed.last_error_at).total_seconds()) if feed.last_error_at else "-"
        error = f"DISABLED: {feed.disabled_reason}" if feed.disabled_reason else feed.last_error
        lines.append(f"  {feed.id:<28} {feed.error_count:>6}  {since:<8} {(error or '')[:80]}")
    return lines + _more(len(rows), limit)


def _deliveries(session: Session) -> list[str]:
    query = select(Delivery.status, func.count()).group_by(Delivery.status)
    counts = dict(session.execute(query).all())
    known = [f"{s} {counts.pop(s, 0)}" for s in STATUSES]
    other = [f"{s} {n}" for s, n in sorted(counts.items())]
    return ["", "deliveries: " + ", ".join(known + other)]


def _alerts_today(session: Session, now: datetime, limit: int) -> list[str]:
    midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    sent = func.sum(case((Delivery.status == "sent", 1), else_=0))
    query = (
        select(MatchRow.watchlist_id, func.count(func.distinct(MatchRow.id)), sent)
        .outerjoin(Delivery, Delivery.match_id == MatchRow.id)
        .where(MatchRow.created_at >= midnight)
        .group_by(MatchRow.watchlist_id)
        .order_by(func.count(func.distinct(MatchRow.id)).desc(), MatchRow.watchlist_id)
    )
    rows = session.execute(query).all()
    lines = ["", f"alerts today (since 00:00 UTC): {sum(r[1] for r in rows)}"]
    if rows:
        lines.append(f"  {'WATCH-LIST':<28} {'MATCHES':>7} {'SENT':>6}")
    lines += [f"  {wl:<28} {n:>7} {s or 0:>6}" for wl, n, s in rows[:limit]]
    return lines + _more(len(rows), limit)


def _channels(session: Session, now: datetime, configured: list[str]) -> list[str]:
    states = {s.id: s for s in session.scalars(select(ChannelState))}
    ids = sorted(set(configured) | set(states))
    lines = ["", f"channels: {len(ids)}"]
    if ids:
        lines.append(f"  {'CHANNEL':<20} {'STATE':<9} {'ERRORS':>6}  {'SENT AGO':<9} LAST ERROR")
    for channel_id in ids:
        lines.append("  " + _channel_line(channel_id, states.get(channel_id), now, configured))
    return lines


def _channel_line(
    channel_id: str, state: ChannelState | None, now: datetime, configured: list[str]
) -> str:
    if state is None:
        return f"{channel_id:<20} {'unused':<9} {0:>6}  {'-':<9}"
    label = "ok" if not state.error_count else "failing"
    label = "disabled" if state.disabled_reason else label
    label = label if channel_id in configured or not configured else "removed"
    sent = ago((now - state.last_success_at).total_seconds()) if state.last_success_at else "never"
    error = state.disabled_reason or (state.last_error if state.error_count else "") or ""
    return f"{channel_id:<20} {label:<9} {state.error_count:>6}  {sent:<9} {error[:70]}"


def _configured_channels(settings: Any) -> list[str]:
    """Channel ids from config, to show those never used; empty when the config is invalid."""
    from worker.config import ConfigError, load_config

    try:
        return sorted(load_config(settings.config_dir).channels)
    except ConfigError:
        return []


def _more(count: int, limit: int) -> list[str]:
    return [f"  ... and {count - limit} more"] if count > limit else []
