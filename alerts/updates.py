"""Update alerts: a story already alerted on gains an official source, reaches N sources,
or is reported in N languages.

Each update has a key of its own (``official``, ``sources-5``, ``languages-3``), stored
beside the story's key,
so the database's unique (watch-list, key) lets every update fire at most once per story.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alerts.watchlists import WatchList

OFFICIAL_TAG = "official"  # a feed with this tag is an official source (a ministry, the UN, ...)


def story_updates(
    watchlist: WatchList,
    feed_id: str,
    sources_before: Sequence[str],
    is_official: Callable[[str], bool],
    language: str | None = None,
    languages_before: Sequence[str] = (),
) -> list[str]:
    """Update keys that a new item of ``feed_id`` (in ``language``, None when unknown)
    triggers on a story reported so far by ``sources_before`` (feed ids, this item's not
    counted) in ``languages_before``."""
    if not watchlist.notify_updates or feed_id in sources_before:
        return []
    updates = []
    if is_official(feed_id) and not any(is_official(s) for s in sources_before):
        updates.append("official")
    wanted = watchlist.update_at_sources
    if wanted is not None and len(sources_before) < wanted <= len(sources_before) + 1:
        updates.append(f"sources-{wanted}")
    known = set(languages_before)
    in_languages = watchlist.update_at_languages
    new_language = language is not None and language not in known
    if in_languages is not None and new_language and len(known) + 1 == in_languages:
        updates.append(f"languages-{in_languages}")
    return updates


def update_text(update: str, feed_id: str) -> str:
    """What the alert says about why it is sent again."""
    if update == "official":
        return f"now reported by an official source ({feed_id})"
    if update.startswith("sources-"):
        return f"now reported by {update.removeprefix('sources-')} sources"
    if update.startswith("languages-"):
        return f"now reported in {update.removeprefix('languages-')} languages ({feed_id})"
    return update
