"""``watchfloor backtest``: run watch-lists (live, or a candidate config dir) over stored items."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common.durations import parse_duration
from worker import read
from worker.backtest import SAMPLES, compare, fired
from worker.models import utcnow
from worker.read import StoredItem


def register(sub: Any) -> None:
    p = sub.add_parser("backtest", help="what watch-lists would have sent over stored items")
    p.add_argument("--watchlist", help="only this watch-list id")
    p.add_argument(
        "--since",
        default="7d",
        type=duration_arg,
        help="how far back (30m, 12h, 7d); default 7d",
    )
    p.add_argument(
        "--config-dir", type=Path, help="candidate config dir to compare with the live one"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per watch-list")
    p.set_defaults(func=run, needs_database=True)


def duration_arg(value: str) -> timedelta:
    """argparse type: a bad duration is a usage error in one line, not a traceback."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from worker.config import ConfigError, load_config
    from worker.runtime import runtime

    rt = runtime()
    try:
        live = load_config(rt.settings.config_dir)
        candidate = load_config(args.config_dir) if args.config_dir else live
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    since = utcnow() - args.since
    items = _items(rt, since)
    tags = {f.id: f.tags for f in (*live.feeds, *candidate.feeds)}
    before, after = fired(live.matcher, items, tags), fired(candidate.matcher, items, tags)
    ids = sorted(set(before) | set(after))
    if args.watchlist:
        known = {w.id for w in (*live.watchlists, *candidate.watchlists)}
        if args.watchlist not in known:
            print(f"error: unknown watch-list {args.watchlist!r}", file=sys.stderr)
            return 1
        ids = [args.watchlist]
    for watchlist_id in ids:
        print(
            _report(watchlist_id, before.get(watchlist_id, {}), after.get(watchlist_id, {}), args)
        )
    # with --json, stdout holds only JSON lines: the summary goes to stderr
    summary = f"{len(items)} items since {since:%Y-%m-%d %H:%M} UTC"
    print(summary, file=sys.stderr if args.json else sys.stdout)
    return 0


def _items(rt: Any, since: datetime) -> list[StoredItem]:
    with rt.sessions() as session:
        return read.items_since(session, since)


def _report(
    watchlist_id: str, before: dict[int, str], after: dict[int, str], args: argparse.Namespace
) -> str:
    c = compare(watchlist_id, before, after)
    if args.json:
        row = {
            "watchlist": watchlist_id,
            "alerts": c.alerts,
            "new": len(c.new),
            "gone": len(c.gone),
        }
        row |= {"samples": c.samples, "new_samples": c.new[:SAMPLES]}
        return json.dumps(row | {"gone_samples": c.gone[:SAMPLES]}, ensure_ascii=False)
    lines = [f"{watchlist_id}: {c.alerts} alerts (+{len(c.new)} new, -{len(c.gone)} gone)"]
    lines += [f"    {title[:100]}" for title in c.samples]
    lines += [f"  + {title[:100]}" for title in c.new[:SAMPLES]]
    lines += [f"  - {title[:100]}" for title in c.gone[:SAMPLES]]
    return "\n".join(lines)
