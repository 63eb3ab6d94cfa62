"""What watch-lists would have sent over stored items: for the CLI's ``backtest`` and the
console's backtest of a candidate query. Pure over items and matchers, except the read."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from alerts.match import Matcher, compile_matcher
from alerts.watchlists import WatchList
from worker import read
from worker.config import Config
from worker.read import StoredItem

SAMPLES = 3
Fired = dict[str, dict[int, str]]  # watch-list id -> {item id: title}


@dataclass(frozen=True)
class Comparison:
    watchlist_id: str
    alerts: int
    samples: list[str]
    new: list[str]  # titles the candidate fires on and the live config does not
    gone: list[str]


def fired(
    matcher: Matcher, items: Sequence[StoredItem], tags: Mapping[str, Sequence[str]]
) -> Fired:
    out: Fired = defaultdict(dict)
    for item in items:
        for match in matcher.match(
            item.title, item.summary, feed_id=item.feed_id, feed_tags=tags.get(item.feed_id, ())
        ):
            out[match.watchlist_id][item.id] = item.title
    return out


def compare(watchlist_id: str, before: Mapping[int, str], after: Mapping[int, str]) -> Comparison:
    new = [after[i] for i in after.keys() - before.keys()]
    gone = [before[i] for i in before.keys() - after.keys()]
    return Comparison(watchlist_id, len(after), list(after.values())[:SAMPLES], new, gone)


def compare_query(
    session: Session, config: Config, watchlist: WatchList, query: str, since: datetime
) -> Comparison:
    """``watchlist`` with ``query`` in place of its own, over the items stored since
    ``since``; raises WatchListErrors for a query that does not compile."""
    candidate = watchlist.model_copy(update={"query": query, "enabled": True})
    live = watchlist.model_copy(update={"enabled": True})
    items = read.items_since(session, since)
    tags = {f.id: f.tags for f in config.feeds}
    before = fired(compile_matcher([live], config.aliases), items, tags)
    after = fired(compile_matcher([candidate], config.aliases), items, tags)
    return compare(watchlist.id, before.get(watchlist.id, {}), after.get(watchlist.id, {}))
