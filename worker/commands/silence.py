"""``watchfloor silence``: hold a watch-list's alerts for a while; they are recorded, not sent."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from common.durations import parse_duration
from worker.models import utcnow
from worker.store import silences
from worker.store.silences import SilenceRecord


def register(sub: Any) -> None:
    p = sub.add_parser("silence", help="silence a watch-list: add, list, remove")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="silence a watch-list (on one channel or all)")
    add.add_argument("--watchlist", required=True, help="the watch-list id to silence")
    add.add_argument("--channel", help="only this channel (default: every channel)")
    add.add_argument("--for", dest="duration", required=True, help="how long: 30m, 2h, 1d")
    add.add_argument("--reason", default="", help="why, shown in listings and on deliveries")
    actions.add_parser("list", help="active silences")
    remove = actions.add_parser("remove", help="end silences now")
    remove.add_argument("ids", nargs="+", type=int, metavar="ID", help="ids from 'silence list'")
    p.set_defaults(func=run, needs_database=True)


def run(args: argparse.Namespace) -> int:
    from worker.runtime import runtime

    rt = runtime()
    now = utcnow()
    if args.action == "add":
        config = rt.config.current()
        if config.watchlist(args.watchlist) is None:
            print(f"error: unknown watch-list {args.watchlist!r}", file=sys.stderr)
            return 1
        if args.channel and args.channel not in config.channels:
            print(f"error: unknown channel {args.channel!r}", file=sys.stderr)
            return 1
        try:
            length = parse_duration(args.duration)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if length <= timedelta(0):
            print(
                f"error: --for {args.duration!r} silences nothing: give a length, e.g. 2h",
                file=sys.stderr,
            )
            return 1
        ends = now + length
        with rt.sessions.begin() as session:
            row = silences.add(session, args.watchlist, args.channel, now, ends, args.reason)
        print(f"silence {row.id}: {_describe(row)}")
        return 0
    if args.action == "remove":
        with rt.sessions.begin() as session:
            gone = silences.remove(session, args.ids)
        print(f"removed {gone} silence(s)")
        return 0 if gone == len(set(args.ids)) else 1
    with rt.sessions() as session:
        lines = [f"{row.id}  {_describe(row)}" for row in silences.active(session, now)]
    print("\n".join(lines) if lines else "no active silences")
    return 0


def _describe(row: SilenceRecord) -> str:
    channel = row.channel_id or "all channels"
    reason = f"  ({row.reason})" if row.reason else ""
    return f"{row.watchlist_id} on {channel} until {row.ends_at:%Y-%m-%d %H:%M} UTC{reason}"
