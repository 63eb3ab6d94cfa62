"""``watchfloor deliveries``: list the outbox, and send dead deliveries again (same id)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy import select, update

from worker.models import Delivery, Item, MatchRow, utcnow

STATUSES = ("pending", "sending", "failed", "sent", "dead", "silenced")


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
    p.add_argument("--status", choices=STATUSES, help="only deliveries in this status")
    p.add_argument("--all-dead", action="store_true", help="with retry: every dead delivery")
    p.add_argument("--limit", type=int, default=50, help="most rows shown, newest first (50)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run, needs_database=True)


def run(args: argparse.Namespace) -> int:
    from worker.runtime import runtime

    rt = runtime()
    if args.action == "retry":
        return _retry(rt, args)
    query = (
        select(Delivery, MatchRow, Item)
        .join(MatchRow, MatchRow.id == Delivery.match_id)
        .join(Item, Item.id == MatchRow.item_id)
        .order_by(Delivery.created_at.desc())
        .limit(args.limit)
    )
    if args.status:
        query = query.where(Delivery.status == args.status)
    with rt.sessions() as session:
        rows = session.execute(query).all()
    for delivery, match, item in rows:
        print(_format(delivery, match, item, as_json=args.json))
    if not rows and not args.json:
        print("no deliveries" + (f" with status {args.status}" if args.status else ""))
    return 0


def _format(delivery: Delivery, match: MatchRow, item: Item, *, as_json: bool) -> str:
    row = {
        "id": delivery.id,
        "status": delivery.status,
        "channel": delivery.channel_id,
        "watchlist": match.watchlist_id,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat(),
        "last_error": delivery.last_error,
        "title": item.title,
    }
    if as_json:
        return json.dumps(row, ensure_ascii=False)
    error = f"  error: {delivery.last_error}" if delivery.last_error else ""
    return (
        f"{delivery.id}  {delivery.status:<8} {delivery.channel_id:<16} {match.watchlist_id:<24} "
        f"attempts={delivery.attempts}  {item.title[:60]}{error}"
    )


def _retry(rt: Any, args: argparse.Namespace) -> int:
    if not args.ids and not args.all_dead:
        print("error: give delivery ids or --all-dead")
        return 1
    from worker.tasks import deliver

    condition = Delivery.status == "dead"
    if args.ids:
        condition = condition & Delivery.id.in_(args.ids)
    now = utcnow()
    with rt.sessions.begin() as session:
        ids = list(session.scalars(select(Delivery.id).where(condition)))
        if ids:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(status="pending", attempts=0, next_attempt_at=now, enqueued_at=now)
            )
    for delivery_id in ids:
        deliver.delay(delivery_id)
        print(f"requeued {delivery_id}")
    missing = set(args.ids) - set(ids)
    for delivery_id in sorted(missing):
        print(f"error: {delivery_id} is not a dead delivery")
    return 1 if missing else 0
