"""The ``watchfloor`` command."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Sequence

from worker import commands
from worker.config import Config, ConfigError, load_config
from worker.settings import Settings, SettingsError, load_settings


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
    for name in args.explain or ():
        try:
            print("\n".join(_explain(name, config)))
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


def _explain(name: str, config: Config) -> list[str]:
    """``--explain NAME``: an alias group (``@name``, or a bare name that is one), else the
    watch-list with that id (the Russian forms its terms take)."""
    from alerts.explain_alias import explain_alias
    from alerts.explain_forms import explain_forms

    aliases = {k.lower() for k in config.aliases}
    watchlist = config.watchlist(name)
    if name.startswith("@") or name.lower() in aliases or watchlist is None:
        return explain_alias(name, config.aliases, config.watchlists)
    return explain_forms(watchlist, config.aliases)


def _run(args: argparse.Namespace) -> int:
    from worker.db import make_engine, upgrade

    settings = load_settings()
    try:
        print(load_config(settings.config_dir).summary(), file=sys.stderr)
        _keep_last_good()
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        if not _last_good_config(settings):
            return 1
    if args.migrate:
        # An engine of its own, closed before Celery forks beat and the pool: a SQLite
        # connection carried across fork makes the child's first query a "disk I/O error".
        engine = make_engine(settings.database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    web = _start_web(settings) if args.web else None
    from worker.app import app

    loglevel = args.loglevel or settings.log_level or "INFO"
    argv = ["worker", "--beat", "-Q", "poll,deliver", f"--loglevel={loglevel}"]
    argv += [f"--concurrency={args.concurrency}", "--hostname", f"watchfloor@{args.hostname}"]
    try:
        app.worker_main(argv)
    finally:
        if web is not None:
            web.terminate()
            web.wait(10)
    return 0


def _start_web(settings: Settings) -> subprocess.Popen[bytes]:
    """The console beside the worker, as its own process (no thread crosses Celery's fork)."""
    print(f"console on http://{settings.web_bind}/", file=sys.stderr, flush=True)
    argv = [sys.executable, "-m", "worker", "web", "--bind", settings.web_bind]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL)


def _keep_last_good() -> None:
    from worker.runtime import runtime

    runtime().config.current()  # a good load writes the snapshot a broken edit falls back to


def _last_good_config(settings: Settings) -> bool:
    """A restart with broken files comes up on the last good config, if one was kept."""
    from worker.runtime import runtime

    try:
        runtime().config.current()  # the config cache falls back to its snapshot
    except ConfigError:
        print("no last good config to run on: fix the files above", file=sys.stderr)
        return False
    print(
        f"running on the last good config ({settings.var_dir / 'last-good-config.json'})",
        file=sys.stderr,
    )
    return True


def _poll(args: argparse.Namespace) -> int:
    from worker import pipeline
    from worker.outbox.deliver import deliver
    from worker.outbox.store import Kind
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
        status = 1 if outcome.status == "error" else status
        for delivery_id in outcome.delivery_ids if args.deliver else ():
            sent = deliver(rt, Kind.DELIVERY, delivery_id)
            print(json.dumps({"delivery": delivery_id, "status": sent.status}))
    return status


def _db(args: argparse.Namespace) -> int:
    from worker.db import current_revision, head_revision, make_engine, upgrade

    engine = make_engine(load_settings().database_url)
    try:
        if args.action == "upgrade":
            upgrade(engine)
        print(f"schema at {current_revision(engine) or 'nothing'} (head {head_revision()})")
    finally:
        engine.dispose()
    return 0


def _prepare_database() -> None:
    """Commands that read or write the store run on a schema at head (see prepare_schema)."""
    from worker.db import prepare_schema
    from worker.runtime import runtime

    rt = runtime()
    prepare_schema(rt.engine, rt.settings.embedded_database)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; a database that is down or behind is one line, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from worker.commands.health import short_error
    from worker.db import SchemaOutOfDate

    try:
        needs = getattr(args, "needs_database", False)
        if needs is True or (needs == "if-embedded" and load_settings().embedded_database):
            _prepare_database()
        return int(args.func(args) or 0)
    except SchemaOutOfDate as exc:
        print(f"error: {exc}", file=sys.stderr)
    except SQLAlchemyError as exc:
        url = load_settings().database_url
        print(f"error: database {_safe_url(url)}: {short_error(exc)}", file=sys.stderr)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        print(f"{len(exc.issues)} error(s) in the config: run 'watchfloor check'", file=sys.stderr)
    except ImportError as exc:
        ours = (exc.name or "").split(".")[0] in {"worker", "web", "feeds", "alerts", "common"}
        if ours:
            raise  # a broken install is a bug to see whole
        print(f"error: {exc} (is a driver for the database URL installed?)", file=sys.stderr)
    except OSError as exc:  # var/ not writable, a path that is a file, a full disk
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
    return 1


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown by its scheme only
        return url.split(":", 1)[0]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watchfloor", description=__doc__)
    parser.add_argument("--version", action="version", version=f"watchfloor {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="run worker and beat in one process")
    p.add_argument(
        "--concurrency", type=int, default=2, help="worker processes for tasks (default 2)"
    )
    p.add_argument(
        "--loglevel",
        default=None,
        help="DEBUG, INFO, WARNING or ERROR (default $WATCHFLOOR_LOG_LEVEL or INFO)",
    )
    p.add_argument(
        "--hostname",
        default="%h",
        help="this worker's name in Celery, as watchfloor@NAME (default: the host name)",
    )
    p.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        help="do not apply database migrations before starting",
    )
    p.add_argument(
        "--no-web",
        dest="web",
        action="store_false",
        help="do not serve the console (default: on $WATCHFLOOR_WEB_BIND)",
    )
    p.set_defaults(func=_run)
    p = sub.add_parser("check", help="validate the config directory")
    p.add_argument("--config-dir", default=None, help="default: $WATCHFLOOR_CONFIG_DIR or ./config")
    p.add_argument(
        "--explain",
        action="append",
        metavar="@ALIAS|ID",
        help="also print what an alias group stands for (its members, their Russian forms "
        "where a watch-list asks for them, the watch-lists using it), or the Russian forms "
        "the terms of watch-list ID take (marked with ~, or all with russian_forms); "
        "repeatable",
    )
    p.set_defaults(func=_check)
    p = sub.add_parser("poll", help="poll feeds now and print new items and matches")
    p.add_argument(
        "feed_ids", nargs="*", metavar="FEED_ID", help="feeds to poll (default: every enabled one)"
    )
    p.add_argument("--deliver", action="store_true", help="also send the new alerts now")
    p.set_defaults(func=_poll, needs_database=True)
    p = sub.add_parser("db", help="database schema")
    p.add_argument(
        "action",
        choices=["upgrade", "current"],
        help="upgrade: apply migrations; current: show the schema revision",
    )
    p.set_defaults(func=_db)
    for module in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"worker.commands.{module.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from worker.logs import configure_logging

    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # A one-shot command prints its answer; its log says only what went wrong (warnings),
    # unless WATCHFLOOR_LOG_LEVEL asks for more. `run` and `web` are services: INFO.
    default = "INFO" if args.command in ("run", "web") else "WARNING"
    configure_logging(settings.log_level or default, settings.log_format)
    return _dispatch(args)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("watchfloor")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
