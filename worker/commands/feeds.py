"""``watchfloor feeds``: one line per feed with its health."""

from __future__ import annotations

import argparse
import json
from typing import Any

from common.durations import format_duration
from worker import read


def register(sub: Any) -> None:
    p = sub.add_parser("feeds", help="feed health: status, last success, last error, items")
    p.add_argument("--json", action="store_true", help="one JSON object per feed")
    p.set_defaults(func=run, needs_database=True)


def run(args: argparse.Namespace) -> int:
    from worker.runtime import runtime

    rt = runtime()
    config = rt.config.current()
    with rt.sessions() as session:
        rows = read.feeds(session)
    table = read.feed_health(config.feeds, rows)
    if args.json:
        print("\n".join(json.dumps(r, ensure_ascii=False) for r in table))
        return 0
    header = (
        "id", "status", "last success", "errors", "items", "interval", "overflows", "push",
        "next poll", "last error",
    )  # fmt: skip
    widths = (24, 8, 17, 6, 6, 8, 9, 7, 17, 0)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in table:
        cells = (
            r["id"],
            r["status"],
            _when(r["last_success"]),
            str(r["error_count"]),
            str(r["items"]),
            format_duration(r["interval_s"]),
            str(r["window_overflows"]),
            r["push"],
            _when(r["next_poll"]),
            (r["last_error"] or r["push_error"] or "")[:80],
        )
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return 0


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"
