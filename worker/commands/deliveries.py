"""``watchfloor deliveries``: list the outbox, and send dead deliveries again (same id)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from worker.commands.status import positive_int
from worker.models import DeliveryStatus, utcnow
from worker.read import DeliveryRow

STATUSES = [s.value for s in DeliveryStatus]


def register(sub: Any) -> None:
    p = sub.add_parser("deliveries", help="list deliveries; 'deliveries retry' resends dead ones")
    p.add_argument(
        "action",
        nargs="?",
        choices=["list", "retry"],
        default="list",
        help="list (default) the outbox, or retry dead deliveries with the same id",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="delivery ids (with retry)")
    p.add_argument(
        "--status", choices=STATUSES, help=f"only deliveries in this status ({', '.join(STATUSES)})"
    )
    p.add_argument("--all-dead", action="store_true", help="with retry: every dead delivery")
    p.add_argument(
        "--limit", type=positive_int, default=50, help="most rows shown, newest first (50)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run, needs_database=True)


def run(args: argparse.Namespace) -> int:
    from worker import read
    from worker.runtime import runtime

    rt = runtime()
    if args.action == "retry":
        return _retry(rt, args)
    status = DeliveryStatus(args.status) if args.status else None
    with rt.sessions() as session:
        rows = read.deliveries(session, status, args.limit)
    for row in rows:
        print(_format(row, as_json=args.json))
    if not rows and not args.json:
        print("no deliveries" + (f" with status {args.status}" if args.status else ""))
    return 0


def _format(row: DeliveryRow, *, as_json: bool) -> str:
    if as_json:
        fields = {
            "id": row.id,
            "status": row.status.value,
            "channel": row.channel_id,
            "watchlist": row.watchlist_id,
            "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at.isoformat(),
            "last_error": row.last_error,
            "title": row.title,
        }
        return json.dumps(fields, ensure_ascii=False)
    error = f"  error: {row.last_error}" if row.last_error else ""
    return (
        f"{row.id}  {row.status.value:<8} {row.channel_id:<16} {row.watchlist_id:<24} "
        f"attempts={row.attempts}  {row.title[:60]}{error}"
    )


def _retry(rt: Any, args: argparse.Namespace) -> int:
    if not args.ids and not args.all_dead:
        print("error: give delivery ids or --all-dead", file=sys.stderr)
        return 1
    from worker.outbox import store as outbox_store
    from worker.tasks import enqueue_deliveries

    with rt.sessions.begin() as session:
        ids = outbox_store.requeue_dead(session, args.ids or None, utcnow())
    enqueue_deliveries(ids)
    for delivery_id in ids:
        print(f"requeued {delivery_id}")
    missing = set(args.ids) - set(ids)
    for delivery_id in sorted(missing):
        print(f"error: {delivery_id} is not a dead delivery", file=sys.stderr)
    return 1 if missing else 0
