"""Alerts of a poll's new items: each watch-list that fires, once per story, with one
delivery per channel (the outbox), in the transaction that records the poll; on a story
already alerted, the updates it earns (``notify_updates``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from alerts.types import Match
from alerts.updates import story_updates
from alerts.watchlists import WatchList
from feeds.sources import FeedSource
from feeds.types import FeedItem
from worker import planning
from worker.config import Config
from worker.outbox import store as outbox_store
from worker.store import items as items_store
from worker.store import silences as silences_store
from worker.store.silences import SilenceRecord


@dataclass
class Alerted:
    """What one feed's items alerted: the matches, and the deliveries to enqueue after commit."""

    matches: list[tuple[int, Match]] = field(default_factory=list)
    delivery_ids: list[str] = field(default_factory=list)


@dataclass
class AlertWriter:
    """Matches items and writes their alerts; silences are read once per transaction."""

    session: Session
    config: Config
    now: datetime
    _silences: list[SilenceRecord] | None = None

    def match(
        self, source: FeedSource, item_id: int, story_id: int, item: FeedItem, out: Alerted
    ) -> None:
        matches = self.config.matcher.match(
            item.title,
            item.summary,
            feed_id=source.id,
            feed_tags=source.tags,
            language=item.language,
        )
        for match in matches:
            watchlist = self.config.watchlist(match.watchlist_id)
            if watchlist is None:
                continue
            if self._record(watchlist, item_id, story_id, "", match, out):
                continue
            if watchlist.notify_updates:
                for update in self._updates(watchlist, source, item_id, story_id, item):
                    self._record(watchlist, item_id, story_id, update, match, out)

    def _updates(
        self, watchlist: WatchList, source: FeedSource, item_id: int, story_id: int, item: FeedItem
    ) -> list[str]:
        before = items_store.story_sources(self.session, story_id, except_item=item_id)
        spoken = items_store.story_languages(self.session, story_id, except_item=item_id)
        is_official = self.config.is_official
        return story_updates(watchlist, source.id, before, is_official, item.language, spoken)

    def _record(
        self,
        watchlist: WatchList,
        item_id: int,
        story_id: int,
        update: str,
        match: Match,
        out: Alerted,
    ) -> bool:
        """False when the (watch-list, story, update) alerted already."""
        severity = watchlist.severity
        match_id = outbox_store.insert_alert(
            self.session, item_id, story_id, update, severity, match, self.now
        )
        if match_id is None:
            return False
        out.matches.append((match_id, match))
        silences = self._active_silences()
        plans = {
            channel_id: planning.plan_delivery(
                watchlist,
                self.config.channels.get(channel_id),
                planning.find_silence(silences, watchlist.id, channel_id, self.now),
                self.now,
            )
            for channel_id in watchlist.channels
        }
        out.delivery_ids += outbox_store.insert_deliveries(
            self.session, plans, self.now, match_id=match_id
        )
        return True

    def _active_silences(self) -> list[SilenceRecord]:
        if self._silences is None:
            self._silences = silences_store.active(self.session, self.now)
        return self._silences
