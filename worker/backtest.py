"""What watch-lists would have sent over stored items: for the CLI's ``backtest`` and the
console's backtest of a candidate query; and how well they do on a labelled set (precision
and recall), with the labels built from the desk's triage for ``watchfloor eval export``.
Pure over items, judgements and matchers, except the read in ``compare_query``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from sqlalchemy.orm import Session

from alerts.match import Matcher, compile_matcher
from alerts.watchlists import WatchList
from feeds.language import detect_language
from worker import read
from worker.config import Config
from worker.read import AlertVerdict, MissedFlag, StoredItem

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
            item.title,
            item.summary,
            feed_id=item.feed_id,
            feed_tags=tags.get(item.feed_id, ()),
            language=detect_language(item.title, item.summary),
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


class LabelledItem(BaseModel):
    """One line of a labelled set (``tests/data/eval_watchlists.jsonl``): ``labels`` are the
    watch-lists that should fire on the item. ``judged`` names the watch-lists it was judged
    for; without it (the shipped set) it was judged for every one, so a watch-list missing
    from ``labels`` must not fire. ``feed`` lets a watch-list limited to some sources fire
    as it did on the stored item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    labels: tuple[str, ...]
    judged: tuple[str, ...] | None = None
    feed: str | None = None
    title: str
    summary: str = ""

    @model_validator(mode="after")
    def _labels_are_judged(self) -> LabelledItem:
        if self.judged is not None and not set(self.labels) <= set(self.judged):
            raise ValueError("every watch-list in labels must be in judged too")
        return self

    def counts_for(self, watchlist_id: str) -> bool:
        return self.judged is None or watchlist_id in self.judged


class LabelsError(ValueError):
    """A labelled set that does not parse: the message names the file and the line."""


def load_labels(text: str, source: str) -> list[LabelledItem]:
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(LabelledItem.model_validate_json(line))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(map(str, error["loc"]))
            problem = f"{where}: {error['msg']}" if where else error["msg"]
            raise LabelsError(f"{source}:{number}: {problem}") from None
    return items


@dataclass(frozen=True, slots=True)
class Score:
    """A watch-list on a labelled set: item ids it got right, fired on wrongly, missed."""

    judged: int
    tp: tuple[str, ...] = ()
    fp: tuple[str, ...] = ()
    fn: tuple[str, ...] = ()

    @property
    def precision(self) -> float:
        return len(self.tp) / (len(self.tp) + len(self.fp)) if self.tp or self.fp else 1.0

    @property
    def recall(self) -> float:
        return len(self.tp) / (len(self.tp) + len(self.fn)) if self.tp or self.fn else 1.0


def score(
    items: Iterable[LabelledItem],
    matcher: Matcher,
    watchlist_ids: Iterable[str],
    tags: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Score]:
    """Per watch-list, over the items judged for it: true and false positives, misses."""
    tags = tags or {}
    found: dict[str, tuple[list[str], ...]] = {w: ([], [], [], []) for w in watchlist_ids}
    for item in items:
        feed_tags = tags.get(item.feed, ()) if item.feed else ()
        language = detect_language(item.title, item.summary)
        matches = matcher.match(
            item.title, item.summary, feed_id=item.feed, feed_tags=feed_tags, language=language
        )
        fired_on = {m.watchlist_id for m in matches}
        for wid, (judged, tp, fp, fn) in found.items():
            if not item.counts_for(wid):
                continue
            judged.append(item.id)
            expected, got = wid in item.labels, wid in fired_on
            if expected or got:
                (tp if expected and got else fn if expected else fp).append(item.id)
    return {
        wid: Score(len(judged), tuple(tp), tuple(fp), tuple(fn))
        for wid, (judged, tp, fp, fn) in found.items()
    }


KEPT_AFTER = timedelta(days=1)  # an alert nobody called false for a day is kept


@dataclass(frozen=True, slots=True)
class Judgement:
    item: StoredItem
    watchlist_id: str
    positive: bool
    explicit: bool  # an analyst said so (false positive, missed); else a kept alert
    at: datetime


def alert_judgement(alert: AlertVerdict, now: datetime) -> Judgement | None:
    """A false positive is a negative; a kept alert (acknowledged, or older than a day,
    and not a false positive) a positive; a fresh unacknowledged alert no label yet."""
    if alert.false_positive:
        at = alert.triaged_at or alert.created_at
        return Judgement(alert.item, alert.watchlist_id, False, True, at)
    if alert.acknowledged or alert.created_at <= now - KEPT_AFTER:
        return Judgement(alert.item, alert.watchlist_id, True, False, alert.created_at)
    return None


def missed_judgement(flag: MissedFlag) -> Judgement:
    return Judgement(flag.item, flag.watchlist_id, True, True, flag.flagged_at)


def labelled_items(judgements: Iterable[Judgement]) -> list[LabelledItem]:
    """One labelled item per stored item, judged for every watch-list it has a judgement
    of. Of two judgements of one item for one watch-list, an analyst's (false positive,
    missed) beats a kept alert, and the later of two analysts' wins."""
    chosen: dict[tuple[int, str], Judgement] = {}
    for j in judgements:
        key = (j.item.id, j.watchlist_id)
        if key not in chosen or (j.explicit, j.at) >= (chosen[key].explicit, chosen[key].at):
            chosen[key] = j
    by_item: dict[int, list[Judgement]] = defaultdict(list)
    for j in chosen.values():
        by_item[j.item.id].append(j)
    return [_labelled(by_item[item_id]) for item_id in sorted(by_item)]


def _labelled(judgements: Sequence[Judgement]) -> LabelledItem:
    item = judgements[0].item
    return LabelledItem(
        id=f"item-{item.id}",
        labels=tuple(sorted(j.watchlist_id for j in judgements if j.positive)),
        judged=tuple(sorted(j.watchlist_id for j in judgements)),
        feed=item.feed_id,
        title=item.title,
        summary=item.summary,
    )


def desk_labels(
    alerts: Iterable[AlertVerdict], missed: Iterable[MissedFlag], now: datetime
) -> list[LabelledItem]:
    """The desk's judgements as a labelled set (what ``watchfloor eval export`` writes)."""
    from_alerts = (alert_judgement(a, now) for a in alerts)
    kept = [j for j in from_alerts if j is not None]
    return labelled_items([*kept, *map(missed_judgement, missed)])
