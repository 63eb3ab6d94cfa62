"""Which update alerts a new item of an already-alerted story triggers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from alerts.updates import story_updates, update_text
from alerts.watchlists import WatchList

OFFICIAL = {"kcna", "mofa"}


def watchlist(**extra: Any) -> WatchList:
    return WatchList(id="missile-tests", title="Missile tests", query="missile", **extra)


def updates(wl: WatchList, feed_id: str, before: list[str]) -> list[str]:
    return story_updates(wl, feed_id, before, OFFICIAL.__contains__)


def test_off_by_default() -> None:
    assert updates(watchlist(), "kcna", ["yonhap"]) == []
    assert updates(watchlist(), "nknews", ["yonhap", "reuters"]) == []


def test_the_first_official_source_is_an_update_once() -> None:
    wl = watchlist(notify_updates=True)
    assert updates(wl, "kcna", ["yonhap"]) == ["official"]
    assert updates(wl, "mofa", ["yonhap", "kcna"]) == []  # not the first official one
    assert updates(wl, "reuters", ["kcna"]) == []  # the story began official
    assert updates(wl, "kcna", ["kcna", "yonhap"]) == []  # the same source again


def test_reaching_the_source_count_is_an_update_once() -> None:
    wl = watchlist(notify_updates=True, update_at_sources=3)
    assert updates(wl, "reuters", ["yonhap"]) == []
    assert updates(wl, "nknews", ["yonhap", "reuters"]) == ["sources-3"]
    assert updates(wl, "ap", ["yonhap", "reuters", "nknews"]) == []
    assert updates(wl, "kcna", ["yonhap", "reuters"]) == ["official", "sources-3"]


def test_update_texts() -> None:
    assert update_text("official", "kcna") == "now reported by an official source (kcna)"
    assert update_text("sources-5", "ap") == "now reported by 5 sources"


def test_source_count_needs_notify_updates_and_at_least_two() -> None:
    with pytest.raises(ValidationError, match="needs notify_updates"):
        watchlist(update_at_sources=3)
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        watchlist(notify_updates=True, update_at_sources=1)


def test_reaching_a_language_count_is_an_update_once() -> None:
    wl = watchlist(notify_updates=True, update_at_languages=3)

    def spoken(feed_id: str, language: str | None, before: list[str]) -> list[str]:
        return story_updates(wl, feed_id, ["f1", "f2"], OFFICIAL.__contains__, language, before)

    assert spoken("tass", "ru", ["en"]) == []  # two languages: not yet
    assert spoken("tass", "ru", ["en", "ko"]) == ["languages-3"]
    assert spoken("tass", "en", ["en", "ko"]) == []  # a language the story had
    assert spoken("tass", None, ["en", "ko"]) == []  # an unknown one counts for nothing
    assert spoken("tass", "ja", ["en", "ko", "ru"]) == []  # past the count: no second update
    assert update_text("languages-3", "tass") == "now reported in 3 languages (tass)"
    with pytest.raises(ValidationError, match="needs notify_updates"):
        watchlist(update_at_languages=2)
