"""Feed source models (validated from ``config/feeds.yaml``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.durations import parse_duration
from feeds.jsonapi import check_expressions
from feeds.page import PageSelect, check_selectors

SLUG = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")  # an HTTP header name
# the fetcher's own: conditional GET, size limits and framing stay ours
_FETCH_OWNED = {"host", "content-length", "transfer-encoding", "connection", "if-none-match",
                "if-modified-since", "accept-encoding"}  # fmt: skip


class FeedSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SLUG)
    url: str = Field(pattern=r"^(?i:https?)://")
    title: str = ""
    interval: timedelta = timedelta(minutes=5)
    # bounds of the interval learned from the feed's rhythm; None: the service's default
    min_interval: timedelta | None = None
    max_interval: timedelta | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True
    # rss: RSS, Atom or JSON Feed; page: a list page read by ``select`` (feeds/page.py)
    type: Literal["rss", "page", "json"] = "rss"
    select: PageSelect | None = None
    follow: bool = False  # page: fetch each new item's page and match its main text too
    follow_delay: timedelta = timedelta(seconds=1)  # between two fetches of one host
    follow_max: int = Field(default=10, ge=1, le=100)  # article fetches per poll
    robots: Literal["obey", "ignore"] = "obey"  # robots.txt, for follow fetches
    render: Literal["none", "browser"] = "none"  # page: run its scripts in headless Chromium
    headers: tuple[tuple[str, str], ...] = ()

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, value: object) -> tuple[tuple[str, str], ...]:
        """A mapping in YAML, kept as pairs so the source stays hashable."""
        if isinstance(value, tuple):
            return value
        if not isinstance(value, dict) or len(value) > 20:
            raise ValueError("headers must be a mapping of at most 20 names to values")
        for name, text in value.items():
            if not isinstance(name, str) or not isinstance(text, str):
                raise ValueError("header names and values must be text")
            if name.lower() in _FETCH_OWNED or not _TOKEN.fullmatch(name):
                raise ValueError(f"header {name!r} cannot be set by a source")
            if len(text) > 1000 or any(c in text for c in "\r\n\0"):
                raise ValueError(f"header {name!r} has a bad value (one line, at most 1000)")
        return tuple(value.items())

    @field_validator("follow_delay", mode="before")
    @classmethod
    def _delay(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("interval", "min_interval", "max_interval", mode="before")
    @classmethod
    def _interval(cls, value: object) -> timedelta:
        interval = parse_duration(value)
        if interval < timedelta(seconds=1):
            raise ValueError("an interval must be at least 1s")
        return interval

    @model_validator(mode="after")
    def _bounds(self) -> FeedSource:
        low, high = self.min_interval, self.max_interval
        if low is not None and low > self.interval:
            raise ValueError("min_interval must not be longer than interval")
        if high is not None and high < self.interval:
            raise ValueError("max_interval must not be shorter than interval")
        if self.type != "rss" and self.select is None:
            raise ValueError(
                f"a {self.type} source needs select: {{item: ..., link: ..., title: ...}}"
            )
        if self.type == "rss" and (self.select is not None or self.follow):
            raise ValueError("select and follow are for type: page or json")
        if self.render == "browser" and self.type != "page":
            raise ValueError("render: browser is for type: page")
        if self.select is not None and self.type == "page":
            check_selectors(self.select)
        if self.select is not None and self.type == "json":
            missing = {"link", "title"} - self.select.model_fields_set
            if missing:
                raise ValueError(
                    f"a json source names its fields: select needs {', '.join(sorted(missing))}"
                )
            check_expressions(self.select)
        return self


class FeedsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feeds: tuple[FeedSource, ...] = ()
