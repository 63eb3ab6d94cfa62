"""``watchfloor health``: is this container's part of Watchfloor working?

One line per check (``ok   database``, ``FAIL broker: ...``); exit 1 when any check fails, so
it serves as a Docker ``HEALTHCHECK``. ``--component`` picks what a container is answerable for:
a worker needs the database and the broker; beat also needs its heartbeat (written by the
``poll_due_feeds`` task, so a stale one means beat or every poll worker is stuck); ``all`` adds
the outbox backlog and overdue feeds, for ``watchfloor run`` and for an operator.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from worker import read
from worker.models import utcnow
from worker.settings import Settings, load_settings

COMPONENTS = {
    "worker": ("database", "broker"),
    "beat": ("database", "broker", "beat"),
    "all": ("database", "broker", "beat", "outbox", "feeds"),
}
NEEDS_DATABASE = {"beat", "outbox", "feeds"}


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # "ok", "warn" (reported, still healthy), "FAIL", "skip" (could not check)
    detail: str = ""

    def line(self) -> str:
        return f"{self.level:<4} {self.name}" + (f": {self.detail}" if self.detail else "")


def register(sub: Any) -> None:
    p = sub.add_parser("health", help="check database, broker, beat and backlog; exit 1 if not")
    p.add_argument(
        "--component",
        choices=list(COMPONENTS),
        default="all",
        help="worker: database+broker; beat: +heartbeat; all: +outbox, feeds (default)",
    )
    p.add_argument(
        "--timeout", type=float, default=3.0, help="seconds allowed for each connection (default 3)"
    )
    p.add_argument(
        "--beat-max-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="oldest acceptable beat heartbeat (default max(60, 6 x beat interval))",
    )
    p.add_argument(
        "--outbox-max-age",
        type=float,
        default=10.0,
        metavar="MINUTES",
        help="a delivery due for longer than this is a backlog (default 10)",
    )
    p.add_argument(
        "--feed-lag",
        type=float,
        default=15.0,
        metavar="MINUTES",
        help="warn about feeds overdue by more than this (default 15)",
    )
    # the embedded database is brought up to date first, as every command does; an external
    # one is only checked: its schema state is one of the findings
    p.set_defaults(func=run, needs_database="if-embedded")


def run(args: argparse.Namespace) -> int:
    checks = health_checks(load_settings(), args)
    for check in checks:
        print(check.line())
    return 1 if any(c.level == "FAIL" for c in checks) else 0


def health_checks(settings: Settings, args: argparse.Namespace) -> list[Check]:
    names = COMPONENTS[args.component]
    engine = health_engine(settings.database_url, args.timeout)
    try:
        results = [_database(engine)]
        if "broker" in names:
            results.append(_broker(settings.broker_url, args.timeout))
        db_ok = results[0].level == "ok"
        with Session(engine) as session:
            for name in (n for n in names if n in NEEDS_DATABASE):
                check = partial(DB_CHECKS[name], session, settings, args)
                results.append(_guarded(name, check, db_ok))
        return results
    finally:
        engine.dispose()


def health_engine(url: str, timeout: float) -> Engine:
    """A one-shot engine that gives up on an unreachable server within ``timeout``."""
    from worker.db import make_engine

    if make_url(url).get_backend_name() != "postgresql":
        return make_engine(url)
    from sqlalchemy import create_engine

    connect_args = {"connect_timeout": max(1, round(timeout))}
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)


def short_error(exc: BaseException) -> str:
    """The driver's own message, first line only: no SQL, no SQLAlchemy boilerplate."""
    inner = getattr(exc, "orig", None) or exc
    message = str(inner).strip().splitlines()[0] if str(inner).strip() else type(inner).__name__
    return message[:300]


def _guarded(name: str, check: Callable[[], Check], db_ok: bool) -> Check:
    if not db_ok:
        return Check(name, "skip", "database unavailable")
    try:
        return check()
    except SQLAlchemyError as exc:
        return Check(name, "FAIL", short_error(exc))


def _database(engine: Engine) -> Check:
    from worker.db import SchemaOutOfDate, require_current_schema

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        require_current_schema(engine)
    except SchemaOutOfDate as exc:
        return Check("database", "FAIL", str(exc))
    except SQLAlchemyError as exc:
        return Check("database", "FAIL", short_error(exc))
    return Check("database", "ok")


def _broker(url: str, timeout: float) -> Check:
    from kombu.connection import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    except Exception as exc:  # any failure to connect is the finding, whatever its type
        return Check("broker", "FAIL", short_error(exc))
    return Check("broker", "ok")


def _beat(session: Session, settings: Settings, args: argparse.Namespace) -> Check:
    max_age = args.beat_max_age or max(60.0, 6 * settings.beat_interval)
    at = read.heartbeat(session)
    if at is None:
        return Check("beat", "FAIL", "no heartbeat yet: is beat running, and a worker on 'poll'?")
    age = (utcnow() - at).total_seconds()
    if age > max_age:
        return Check("beat", "FAIL", f"last heartbeat {ago(age)} ago (limit {ago(max_age)})")
    return Check("beat", "ok", f"last heartbeat {ago(age)} ago")


def _outbox(session: Session, settings: Settings, args: argparse.Namespace) -> Check:
    cutoff = utcnow() - timedelta(minutes=args.outbox_max_age)
    count, oldest = read.overdue_deliveries(session, cutoff)
    if not count or oldest is None:
        return Check("outbox", "ok")
    waited = ago((utcnow() - oldest).total_seconds())
    return Check("outbox", "FAIL", f"{count} deliveries overdue, oldest due {waited} ago")


def _feeds(session: Session, settings: Settings, args: argparse.Namespace) -> Check:
    """Overdue feeds warn; failing ones warn too, and every feed failing is a FAIL: then no
    alert can arrive (the network or a proxy is down, most likely)."""
    cutoff = utcnow() - timedelta(minutes=args.feed_lag)
    configured, note = _configured_feeds(settings)
    rows = [
        f
        for f in read.feeds(session).values()
        if not f.disabled_reason and (configured is None or f.id in configured)
    ]
    overdue = sorted(f.id for f in rows if f.next_poll_at is not None and f.next_poll_at < cutoff)
    failing = sorted((f.id, f.last_error) for f in rows if f.error_count)
    problems = [note] if note else []
    if overdue:
        problems.append(f"{len(overdue)} overdue by more than {ago(args.feed_lag * 60)}: ")
        problems[-1] += _names(overdue)
    if failing and len(failing) == len(rows):
        detail = f"all {len(rows)} feeds failing (last error: {(failing[0][1] or '')[:120]})"
        return Check("feeds", "FAIL", "; ".join([detail, *problems]))
    if failing:
        problems.append(f"{len(failing)} of {len(rows)} failing: {_names([f for f, _ in failing])}")
    return Check("feeds", "warn" if problems else "ok", "; ".join(problems))


def _names(ids: list[str]) -> str:
    return ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")


def _configured_feeds(settings: Settings) -> tuple[set[str] | None, str]:
    """Enabled feed ids from config; rows of feeds removed from config are not lagging."""
    from worker.config import ConfigError, load_config

    try:
        config = load_config(settings.config_dir)
    except ConfigError as exc:
        return None, f"config invalid ({len(exc.issues)} error(s); run 'watchfloor check')"
    return {f.id for f in config.feeds if f.enabled}, ""


DB_CHECKS: dict[str, Callable[[Session, Settings, argparse.Namespace], Check]] = {
    "beat": _beat,
    "outbox": _outbox,
    "feeds": _feeds,
}


def ago(seconds: float) -> str:
    """Compact duration: 42s, 5m, 3h, 2d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
