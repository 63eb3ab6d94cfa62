"""Feed source models (validated from ``config/feeds.yaml``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.durations import parse_duration

SLUG = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class FeedSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SLUG)
    url: str = Field(pattern=r"^(?i:https?)://")
    title: str = ""
    interval: timedelta = timedelta(minutes=5)
    tags: tuple[str, ...] = ()
    enabled: bool = True

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: object) -> timedelta:
        interval = parse_duration(value)
        if interval < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        return interval


class FeedsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feeds: tuple[FeedSource, ...] = ()
