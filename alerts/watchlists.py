"""Watch-list models (validated from ``config/watchlists.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SLUG = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class WatchList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1)
    exclude: str | None = None
    severity: Severity = "medium"
    channels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # feed ids, or "tag:NAME"
    enabled: bool = True
    notify_updates: bool = False


class WatchListsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    watchlists: tuple[WatchList, ...] = ()
