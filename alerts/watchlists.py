"""Watch-list models (validated from ``config/watchlists.yaml``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.controls import DigestSpec

SLUG = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
ALIAS_NAME = re.compile(r"^[\w-]+$")  # what ``@name`` in a query can refer to
Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class WatchList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    # a real query is under 2,000 characters; the cap bounds what one can cost to compile
    query: str = Field(min_length=1, max_length=20_000)
    exclude: str | None = Field(default=None, max_length=20_000)
    severity: Severity = "medium"
    channels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # feed ids, or "tag:NAME"
    # ISO 639-1 codes (en, ko, ru): only items detected in one of them alert; an item whose
    # language could not be told passes (feeds/language.py), so no alert is lost to a doubt
    languages: tuple[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")], ...] = ()
    # every Cyrillic term and alias member also matches its inflected forms (all cases,
    # both numbers: alerts/morphology.py), so "ракета" needs no "ракет*"
    russian_forms: bool = False
    enabled: bool = True
    # a short update alert when an alerted story gains an official source (a feed tagged
    # "official") and, with update_at_sources, when it reaches that many sources
    notify_updates: bool = False
    update_at_sources: int | None = Field(default=None, ge=2)
    update_at_languages: int | None = Field(default=None, ge=2)  # and when in that many
    # "digest" groups this watch-list's alerts on every channel into scheduled digests
    mode: Literal["immediate", "digest"] = "immediate"
    digest: DigestSpec | None = None

    @model_validator(mode="after")
    def _digest_matches_mode(self) -> WatchList:
        if self.mode == "digest" and self.digest is None:
            raise ValueError("mode digest needs a schedule, e.g. digest: daily at 07:30 UTC")
        if self.update_at_sources is not None and not self.notify_updates:
            raise ValueError("update_at_sources needs notify_updates: true")
        if self.update_at_languages is not None and not self.notify_updates:
            raise ValueError("update_at_languages needs notify_updates: true")
        return self


class WatchListsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    watchlists: tuple[WatchList, ...] = ()

    @field_validator("aliases", mode="before")
    @classmethod
    def _numbers_are_text(cls, value: object) -> object:
        """YAML reads ``- 1718`` as a number; as an alias member it is the text 1718."""
        if not isinstance(value, dict):
            return value
        return {
            name: [_as_text(m) for m in members] if isinstance(members, list) else members
            for name, members in value.items()
        }

    @field_validator("aliases")
    @classmethod
    def _referable_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name in value:
            if not ALIAS_NAME.match(name):
                raise ValueError(f"alias name {name!r}: use letters, digits, - or _ (for @{name})")
        return value


def _as_text(member: object) -> object:
    is_number = isinstance(member, int | float) and not isinstance(member, bool)
    return str(member) if is_number else member
