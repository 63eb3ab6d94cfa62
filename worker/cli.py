"""The ``watchfloor`` command."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Sequence

from worker import commands
from worker.config import ConfigError, load_config
from worker.settings import load_settings


def _check(args: argparse.Namespace) -> int:
    settings = load_settings()
    config_dir = args.config_dir or settings.config_dir
    try:
        config = load_config(config_dir)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        print(f"{len(exc.issues)} error(s) in {config_dir}", file=sys.stderr)
        return 1
    print(config.summary())
    return 0


def _run(args: argparse.Namespace) -> int:
    from worker.db import upgrade
    from worker.runtime import runtime

    settings = load_settings()
    try:
        print(load_config(settings.config_dir).summary(), file=sys.stderr)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    if args.migrate:
        upgrade(runtime().engine)
    from worker.app import app

    argv = ["worker", "--beat", "-Q", "poll,deliver", f"--loglevel={args.loglevel}"]
    argv += [f"--concurrency={args.concurrency}", "--hostname", f"watchfloor@{args.hostname}"]
    app.worker_main(argv)
    return 0


def _poll(args: argparse.Namespace) -> int:
    from worker import pipeline
    from worker.delivery import deliver
    from worker.runtime import runtime

    rt = runtime()
    config = rt.config.current()
    feed_ids = args.feed_ids or [f.id for f in config.feeds if f.enabled]
    status = 0
    for feed_id in feed_ids:
        if config.feed(feed_id) is None:
            print(json.dumps({"feed": feed_id, "error": "unknown feed id"}))
            status = 1
            continue
        outcome = pipeline.poll_feed(rt, feed_id)
        for _, item in outcome.new_items:
            print(json.dumps({"feed": feed_id, "new_item": item.title, "url": item.url}))
        for match_id, match in outcome.matches:
            row = {"feed": feed_id, "match": match_id, "watchlist": match.watchlist_id}
            print(json.dumps({**row, "terms": match.terms, "snippet": match.snippet}))
        print(json.dumps({"feed": feed_id, "status": outcome.status, "error": outcome.error}))
        for delivery_id in outcome.delivery_ids if args.deliver else ():
            print(json.dumps({"delivery": delivery_id, "status": deliver(rt, delivery_id).status}))
    return status


def _db(args: argparse.Namespace) -> int:
    from worker.db import current_revision, head_revision, upgrade
    from worker.runtime import runtime

    engine = runtime().engine
    if args.action == "upgrade":
        upgrade(engine)
    print(f"schema at {current_revision(engine)} (head {head_revision()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watchfloor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="run worker and beat in one process")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--hostname", default="%h")
    p.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        help="do not apply database migrations before starting",
    )
    p.set_defaults(func=_run)
    p = sub.add_parser("check", help="validate the config directory")
    p.add_argument("--config-dir", default=None)
    p.set_defaults(func=_check)
    p = sub.add_parser("poll", help="poll feeds now and print new items and matches")
    p.add_argument("feed_ids", nargs="*", metavar="FEED_ID")
    p.add_argument("--deliver", action="store_true", help="also send the new alerts now")
    p.set_defaults(func=_poll)
    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["upgrade", "current"])
    p.set_defaults(func=_db)
    for module in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"worker.commands.{module.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from worker.logs import configure_logging

    configure_logging()
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
