"""Load and validate ``config/`` into one immutable ``Config``; keep the last good one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from alerts.channels import AnyChannelConfig
from alerts.channels.base import ChannelConfig
from alerts.match import Matcher, WatchListErrors, compile_matcher
from alerts.updates import OFFICIAL_TAG
from alerts.watchlists import WatchList, WatchListsFile
from feeds.sources import FeedsFile, FeedSource
from worker.yamlsource import ConfigIssue, YamlDocument, field_name, load_yaml

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=BaseModel)
FILES = ("feeds.yaml", "watchlists.yaml", "channels.yaml")


class ChannelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # failing channels and feeds are reported to this channel (optional)
    ops_channel: str | None = None
    channels: tuple[AnyChannelConfig, ...] = ()  # type: ignore[valid-type]


class ConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(map(str, issues)))
        self.issues = issues


@dataclass(frozen=True)
class Config:
    feeds: tuple[FeedSource, ...]
    watchlists: tuple[WatchList, ...]
    aliases: Mapping[str, tuple[str, ...]]
    channels: Mapping[str, ChannelConfig]
    matcher: Matcher
    ops_channel: str | None = None
    signature: tuple[Any, ...] = field(default=(), compare=False)

    def feed(self, feed_id: str) -> FeedSource | None:
        return next((f for f in self.feeds if f.id == feed_id), None)

    def is_official(self, feed_id: str) -> bool:
        feed = self.feed(feed_id)
        return feed is not None and OFFICIAL_TAG in feed.tags

    def watchlist(self, watchlist_id: str) -> WatchList | None:
        return next((w for w in self.watchlists if w.id == watchlist_id), None)

    def summary(self) -> str:
        active = sum(w.enabled for w in self.watchlists)
        return (
            f"config OK: {len(self.feeds)} feeds, {active} watch-lists, "
            f"{len(self.channels)} channels"
        )


def _read(config_dir: Path, name: str, issues: list[ConfigIssue]) -> YamlDocument:
    path = config_dir / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        issues.append(ConfigIssue(str(path), 1, "(file)", f"cannot read: {exc.strerror or exc}"))
        return YamlDocument(str(path), None, {}, [])
    doc = load_yaml(text, str(path))
    issues.extend(doc.issues)
    return doc


def _validate(doc: YamlDocument, model: type[M], issues: list[ConfigIssue]) -> M | None:
    if doc.data is None:  # an empty file is valid; an unreadable one was reported already
        return None if doc.issues else model.model_validate({})
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            issues.append(ConfigIssue(doc.file, doc.line_of(loc), doc.field_of(loc), err["msg"]))
        return None


def _unique(doc: YamlDocument, key: str, ids: list[str], issues: list[ConfigIssue]) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            line = doc.line_of((key, i, "id"))
            issues.append(ConfigIssue(doc.file, line, f"{key}[{i}].id", f"duplicate id {ident!r}"))
        seen.add(ident)


def _check_references(
    doc: YamlDocument, wl: WatchListsFile, channels: set[str], issues: list[ConfigIssue]
) -> None:
    for i, watchlist in enumerate(wl.watchlists):
        for j, channel in enumerate(watchlist.channels):
            if channel not in channels:
                where = ("watchlists", i, "channels", j)
                problem = f"unknown channel id {channel!r} (channels.yaml has: "
                problem += ", ".join(sorted(channels)) + ")"
                issues.append(ConfigIssue(doc.file, doc.line_of(where), field_name(where), problem))


def _compile(doc: YamlDocument, wl: WatchListsFile, issues: list[ConfigIssue]) -> Matcher | None:
    try:
        return compile_matcher(wl.watchlists, wl.aliases)
    except WatchListErrors as group:
        index = {w.id: i for i, w in enumerate(wl.watchlists)}
        for err in group.errors:
            if err.message == "duplicate watch-list id":
                continue  # reported by _unique, with the line of the second id
            where = ("watchlists", index.get(err.watchlist_id, 0), err.field)
            problem = f"{err.message} (column {err.column})"
            issues.append(ConfigIssue(doc.file, doc.line_of(where), field_name(where), problem))
        return None


def _channel_ids(doc: YamlDocument) -> set[str]:
    """Ids as written, so references are checked even when a channel entry is invalid."""
    entries = doc.data.get("channels") if isinstance(doc.data, dict) else None
    return {e["id"] for e in entries or () if isinstance(e, dict) and isinstance(e.get("id"), str)}


def signature(config_dir: Path) -> tuple[Any, ...]:
    """Cheap change detector: (name, mtime_ns, size) of each file."""
    out = []
    for name in FILES:
        try:
            st = (config_dir / name).stat()
            out.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


def load_config(config_dir: Path | str) -> Config:
    """Raise ConfigError with every problem found, each naming file, line and field."""
    config_dir = Path(config_dir)
    sig = signature(config_dir)
    issues: list[ConfigIssue] = []
    feeds_doc, wl_doc, ch_doc = (_read(config_dir, name, issues) for name in FILES)
    feeds = _validate(feeds_doc, FeedsFile, issues)
    wl = _validate(wl_doc, WatchListsFile, issues)
    channels = _validate(ch_doc, ChannelsFile, issues)
    if feeds:
        _unique(feeds_doc, "feeds", [f.id for f in feeds.feeds], issues)
    if channels:
        _unique(ch_doc, "channels", [c.id for c in channels.channels], issues)
        if channels.ops_channel and channels.ops_channel not in {c.id for c in channels.channels}:
            problem = f"unknown channel id {channels.ops_channel!r}"
            issues.append(
                ConfigIssue(ch_doc.file, ch_doc.line_of(("ops_channel",)), "ops_channel", problem)
            )
    matcher = None
    if wl:
        _unique(wl_doc, "watchlists", [w.id for w in wl.watchlists], issues)
        _check_references(wl_doc, wl, _channel_ids(ch_doc), issues)
        matcher = _compile(wl_doc, wl, issues)
    if issues or not (feeds and wl and channels and matcher):
        raise ConfigError(issues)
    return Config(
        feeds=feeds.feeds,
        watchlists=wl.watchlists,
        aliases=wl.aliases,
        channels={c.id: c for c in channels.channels},
        matcher=matcher,
        ops_channel=channels.ops_channel,
        signature=sig,
    )


class ConfigCache:
    """Reloads when a file changes; an invalid edit keeps the last good config."""

    def __init__(self, config_dir: Path, loader: Callable[[Path], Config] = load_config) -> None:
        self.config_dir = config_dir
        self._loader = loader
        self._current: Config | None = None
        self._failed_signature: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    def current(self) -> Config:
        sig = signature(self.config_dir)
        config = self._current
        if config is not None and (sig == config.signature or sig == self._failed_signature):
            return config
        with self._lock:
            return self._reload(sig)

    def _reload(self, sig: tuple[Any, ...]) -> Config:
        try:
            self._current = self._loader(self.config_dir)
            self._failed_signature = None
            log.info("config loaded", summary=self._current.summary())
        except ConfigError as exc:
            if self._current is None:
                raise
            self._failed_signature = sig
            log.error(
                "config invalid; keeping the last good one",
                errors=[str(i) for i in exc.issues],
            )
        return self._current
