"""``watchfloor backtest``: run watch-lists (live, or a candidate config dir) over stored items,
or, with ``--labels``, score them on a labelled set (``watchfloor eval export`` writes one)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.durations import parse_duration
from worker import read
from worker.backtest import SAMPLES, LabelsError, Score, compare, fired, load_labels, score
from worker.models import utcnow
from worker.read import StoredItem

if TYPE_CHECKING:
    from worker.config import Config

DEFAULT_SINCE = timedelta(days=7)


def register(sub: Any) -> None:
    p = sub.add_parser("backtest", help="what watch-lists would have sent over stored items")
    p.add_argument("--watchlist", help="only this watch-list id")
    p.add_argument(
        "--since",
        type=duration_arg,
        help="how far back in stored items (30m, 12h, 7d); default 7d; not with --labels",
    )
    p.add_argument(
        "--config-dir", type=Path, help="candidate config dir to compare with the live one"
    )
    p.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="precision and recall on this labelled set (JSON lines, as eval export writes)",
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
    if args.labels:
        if args.since is not None:
            print("error: --since is for stored items, not with --labels", file=sys.stderr)
            return 1
        return _run_labels(args, live, candidate if args.config_dir else None)
    since = utcnow() - (DEFAULT_SINCE if args.since is None else args.since)
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


def _run_labels(args: argparse.Namespace, live: Config, candidate: Config | None) -> int:
    try:
        items = load_labels(args.labels.read_text(encoding="utf-8"), str(args.labels))
    except (LabelsError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    configs = [live] if candidate is None else [live, candidate]
    configured = {w.id for c in configs for w in c.watchlists}
    if args.watchlist and args.watchlist not in configured:
        print(f"error: unknown watch-list {args.watchlist!r}", file=sys.stderr)
        return 1
    named = {w for i in items for w in (*i.labels, *(i.judged or ()))}
    ids = [args.watchlist] if args.watchlist else sorted(configured | named)
    tags = {f.id: f.tags for c in configs for f in c.feeds}
    scores = [score(items, c.matcher, ids, tags) for c in configs]
    rows = [(w, [s[w] for s in scores]) for w in ids if scores[0][w].judged]  # else: no label
    if args.json:
        for wid, per_config in rows:
            print(json.dumps(_labels_json(wid, per_config), ensure_ascii=False))
    else:
        print(_labels_table(rows, side_by_side=candidate is not None))
    # with --json, stdout holds only JSON lines: the summary goes to stderr
    summary = f"{len(items)} labelled items in {args.labels}"
    print(summary, file=sys.stderr if args.json else sys.stdout)
    return 0


def _score_json(s: Score) -> dict[str, Any]:
    rates = {"precision": round(s.precision, 4), "recall": round(s.recall, 4)}
    counts = {"tp": len(s.tp), "fp": len(s.fp), "fn": len(s.fn)}
    return rates | counts | {"false_positives": list(s.fp), "missed": list(s.fn)}


def _labels_json(watchlist_id: str, per_config: list[Score]) -> dict[str, Any]:
    """``candidate`` is null without --config-dir."""
    live, *candidate = per_config
    return {
        "watchlist": watchlist_id,
        "judged": live.judged,
        "live": _score_json(live),
        "candidate": _score_json(candidate[0]) if candidate else None,
    }


def _labels_table(rows: list[tuple[str, list[Score]]], side_by_side: bool) -> str:
    head = ["watch-list", "judged", "precision", "recall", "TP/FP/FN"]
    if side_by_side:
        head[2:] = ["live P", "cand P", "live R", "cand R", "live TP/FP/FN", "cand TP/FP/FN"]
    table = [head]
    for wid, scores in rows:
        table.append(
            [wid, str(scores[0].judged)]
            + [f"{s.precision:.2f}" for s in scores]
            + [f"{s.recall:.2f}" for s in scores]
            + [f"{len(s.tp)}/{len(s.fp)}/{len(s.fn)}" for s in scores]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table]
    lines += [_mistakes(wid, scores[-1]) for wid, scores in rows if scores[-1].fp or scores[-1].fn]
    return "\n".join(line.rstrip() for line in lines)


def _mistakes(watchlist_id: str, s: Score) -> str:
    """What the candidate (or, without one, the live config) still gets wrong."""

    def some(ids: tuple[str, ...]) -> str:
        more = f" (+{len(ids) - SAMPLES} more)" if len(ids) > SAMPLES else ""
        return ", ".join(ids[:SAMPLES]) + more

    wrong = [f"false positives {some(s.fp)}"] if s.fp else []
    wrong += [f"missed {some(s.fn)}"] if s.fn else []
    return f"  {watchlist_id}: " + "; ".join(wrong)
