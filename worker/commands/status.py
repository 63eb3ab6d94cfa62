"""``watchfloor status``: one screen for the operator on duty, read from the database.

Feeds in error, the outbox by status, the last poll and beat's heartbeat, today's alerts per
watch-list, and each channel's state. It reads only; ``watchfloor health`` is the pass/fail one.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from worker import read
from worker.commands.health import ago, health_engine, short_error
from worker.models import DeliveryStatus, utcnow
from worker.settings import load_settings
from worker.store.channels import ChannelHealth

# always shown, even at 0; the other statuses when some delivery is in them
MAIN = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.FAILED,
    DeliveryStatus.DEAD,
    DeliveryStatus.SENT,
)


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="feeds in error, outbox, today's alerts, channel states")
    p.add_argument(
        "--limit", type=positive_int, default=20, help="most rows per section (default 20)"
    )
    p.set_defaults(func=run, needs_database=True)


def positive_int(text: str) -> int:
    """argparse type for counts: a bad one is a usage error in one line."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


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
    last_poll, beat = read.last_poll(session), read.heartbeat(session)
    return [f"last poll       {_when(last_poll, now)}", f"beat heartbeat  {_when(beat, now)}"]


def _feeds(session: Session, now: datetime, limit: int) -> list[str]:
    feeds = read.feeds(session)
    rows = sorted(
        (f for f in feeds.values() if f.error_count or f.disabled_reason),
        key=lambda f: (-f.error_count, f.id),
    )
    disabled = sum(1 for f in rows if f.disabled_reason)
    lines = ["", f"feeds: {len(feeds)} known, {len(rows) - disabled} in error, {disabled} disabled"]
    if rows:
        lines.append(f"  {'FEED':<28} {'ERRORS':>6}  {'AGO':<8} LAST ERROR")
    for feed in rows[:limit]:
        since = ago((now - feed.last_error_at).total_seconds()) if feed.last_error_at else "-"
        error = f"DISABLED: {feed.disabled_reason}" if feed.disabled_reason else feed.last_error
        lines.append(f"  {feed.id:<28} {feed.error_count:>6}  {since:<8} {(error or '')[:80]}")
    return lines + _more(len(rows), limit)


def _deliveries(session: Session) -> list[str]:
    counts = read.delivery_counts(session)
    others = [s for s in DeliveryStatus if s not in MAIN and counts.get(s)]
    shown = [f"{s.value} {counts.get(s, 0)}" for s in (*MAIN, *others)]
    return ["", "deliveries: " + ", ".join(shown)]


def _alerts_today(session: Session, now: datetime, limit: int) -> list[str]:
    rows = read.alerts_since(session, read.midnight(now))
    lines = ["", f"alerts today (since 00:00 UTC): {sum(r.matches for r in rows)}"]
    if rows:
        lines.append(f"  {'WATCH-LIST':<28} {'MATCHES':>7} {'SENT':>6}")
    lines += [f"  {r.watchlist_id:<28} {r.matches:>7} {r.sent:>6}" for r in rows[:limit]]
    return lines + _more(len(rows), limit)


def _channels(session: Session, now: datetime, configured: list[str]) -> list[str]:
    states = read.channels(session)
    ids = sorted(set(configured) | set(states))
    lines = ["", f"channels: {len(ids)}"]
    if ids:
        lines.append(f"  {'CHANNEL':<20} {'STATE':<9} {'ERRORS':>6}  {'SENT AGO':<9} LAST ERROR")
    for channel_id in ids:
        lines.append("  " + _channel_line(channel_id, states.get(channel_id), now, configured))
    return lines


def _channel_line(
    channel_id: str, state: ChannelHealth | None, now: datetime, configured: list[str]
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
