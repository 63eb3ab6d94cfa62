"""``watchfloor match``: try watch-lists on items from a file, with no database or broker.

    watchfloor match [--watchlist ID] [--config-dir DIR] FILE|-

Reads JSON lines ``{"id", "title", "summary"}`` (other keys are allowed; ``feed_id`` and
``feed_tags`` are honoured for watch-lists restricted by ``sources``; ``guid`` stands in
for a missing ``id``, as older ``watchfloor parse`` output has it) and prints one JSON
line per match: ``{"id", "watchlist", "terms", "snippet"}`` (and ``spellings`` when a
term matched only as another romanisation or transliteration of an alias member), so that
``watchfloor parse URL | watchfloor match -`` tries the watch-lists on a live feed. Title
and summary are cleaned as the parser cleans a plain-text feed item (control characters
and lone surrogates dropped, whitespace collapsed), so what matches here matches in the
pipeline. ``--watchlist`` tries one watch-list, even a disabled one, so a draft can be
tested before it goes live. A bad input line is reported on stderr with its line number
and skipped; the exit status is then 1. A config that does not load gives exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Any

from alerts.match import Matcher, compile_matcher
from alerts.spelling import spelling_table, which_spellings
from feeds.language import detect_language
from feeds.normalize import SUMMARY_LIMIT, TITLE_LIMIT
from feeds.text import clean_text
from worker.config import ConfigError, load_watchlists
from worker.settings import load_settings


class _UsageError(Exception):
    pass


def register(sub: Any) -> None:
    p = sub.add_parser("match", help="match JSON-lines items against the watch-lists and print")
    p.add_argument("file", metavar="FILE", help='JSON lines {"id", "title", "summary"}; - = stdin')
    p.add_argument("--watchlist", metavar="ID", help="try only this watch-list (even if disabled)")
    p.add_argument(
        "--config-dir",
        default=None,
        help="directory with watchlists.yaml (default: $WATCHFLOOR_CONFIG_DIR or ./config)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config_dir = Path(args.config_dir or load_settings().config_dir)
    try:
        matcher = load_matcher(config_dir, args.watchlist)
        table = spelling_table(load_watchlists(config_dir).aliases)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 2
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with _open(args.file) as stream:
            return _match_lines(matcher, stream, sys.stdout, table)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def load_matcher(config_dir: Path, watchlist_id: str | None = None) -> Matcher:
    """Compile ``watchlists.yaml``; with an id, only that watch-list, enabled. A file that
    does not load raises ConfigError with each problem at its FILE:LINE."""
    parsed = load_watchlists(config_dir)
    watchlists = parsed.watchlists
    if watchlist_id is not None:
        chosen = [w for w in watchlists if w.id == watchlist_id]
        if not chosen:
            known = ", ".join(w.id for w in watchlists) or "none"
            raise _UsageError(f"unknown watch-list {watchlist_id!r} (known: {known})")
        watchlists = (chosen[0].model_copy(update={"enabled": True}),)
    return compile_matcher(watchlists, parsed.aliases)


def _open(name: str) -> AbstractContextManager[IO[str]]:
    if name == "-":
        return nullcontext(sys.stdin)
    return open(name, encoding="utf-8")


def _match_lines(
    matcher: Matcher,
    lines: Iterable[str],
    out: IO[str],
    spelled: Mapping[str, tuple[str, str]] | None = None,
) -> int:
    status = 0
    for number, item in _items(lines):
        if isinstance(item, str):
            print(f"error: line {number}: {item}", file=sys.stderr)
            status = 1
            continue
        # cleaned as the parser cleans a plain-text feed item
        title = clean_text(item.get("title", ""), html=False, limit=TITLE_LIMIT)
        summary = clean_text(item.get("summary", ""), html=False, limit=SUMMARY_LIMIT)
        matches = matcher.match(
            title,
            summary,
            feed_id=item.get("feed_id"),
            feed_tags=item.get("feed_tags") or (),
            language=detect_language(title, summary),
        )
        for match in matches:
            row = {"id": _item_id(item), "watchlist": match.watchlist_id}
            row |= {"terms": match.terms, "snippet": match.snippet}
            if found := which_spellings(match.terms, spelled or {}):  # which variant fired
                row["spellings"] = [
                    {"matched": s.matched, "alias": f"@{s.alias}", "member": s.member}
                    for s in found
                ]
            print(json.dumps(row, ensure_ascii=False), file=out)
    return status


def _item_id(item: dict[str, Any]) -> Any:
    """``id``, else ``guid``: what ``watchfloor parse`` printed before it printed ``id``."""
    value = item.get("id")
    return item.get("guid") if value is None else value


def _items(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, item) per non-blank line; the item is an error message when bad."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not JSON ({exc.msg} at column {exc.colno})"
            continue
        yield number, _problem(item) or item


def _problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "expected a JSON object with title and summary"
    if not all(isinstance(item.get(key, ""), str) for key in ("title", "summary")):
        return "title and summary must be strings"
    if not isinstance(item.get("feed_id", ""), str):
        return "feed_id must be a string"
    tags = item.get("feed_tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return "feed_tags must be a list of strings"
    return None
