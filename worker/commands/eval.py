"""``watchfloor eval export``: the desk's judgements as a labelled set, the input of
``watchfloor backtest --labels`` (and the format of ``tests/data/eval_watchlists.jsonl``).

One JSON line per stored item, ``{"id", "labels", "judged", "feed", "title", "summary"}``:
``labels`` are the watch-lists that should fire on it, ``judged`` every watch-list the desk
judged it for (a judged watch-list missing from ``labels`` must not fire; the others say
nothing about the item). What becomes a label, over alerts raised and items flagged within
``--since``:

- an alert marked false positive: a negative for its watch-list;
- an alert kept: not marked false positive, and either acknowledged or raised more than a
  day before the export (a day in which nobody called it false). A fresher alert nobody
  acknowledged is left out: nobody has judged it yet;
- an item flagged as missed: a positive for that watch-list.

An analyst's judgement (false positive, missed) beats a kept alert of the same item and
watch-list, and the later of two analysts' judgements wins (worker/backtest.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from worker.commands.backtest import duration_arg


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="the desk's judgements as a labelled set for backtest")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export", help="write false positives, kept alerts and missed items as JSON lines"
    )
    export.add_argument(
        "--since",
        default="30d",
        type=duration_arg,
        help="alerts raised and items flagged this far back (12h, 30d); default 30d",
    )
    export.add_argument(
        "--out", type=Path, metavar="FILE", help="write the labels to FILE (default: stdout)"
    )
    p.set_defaults(func=run, needs_database=True)


def run(args: argparse.Namespace) -> int:
    from worker import read
    from worker.backtest import desk_labels
    from worker.models import utcnow
    from worker.runtime import runtime

    now = utcnow()
    since = now - args.since
    with runtime().sessions() as session:
        alerts = read.alert_verdicts(session, since)
        missed = read.missed_flags(session, since)
    labels = desk_labels(alerts, missed, now)
    text = "".join(item.model_dump_json(exclude_none=True) + "\n" for item in labels)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    positives = sum(len(item.labels) for item in labels)
    negatives = sum(len(item.judged or ()) for item in labels) - positives
    summary = f"{len(labels)} items ({positives} positive, {negatives} negative labels)"
    summary += f" from alerts and flags since {since:%Y-%m-%d %H:%M} UTC"
    # without --out, stdout holds only the JSON lines: the summary goes to stderr
    print(
        summary + (f" in {args.out}" if args.out else ""),
        file=sys.stdout if args.out else sys.stderr,
    )
    return 0
