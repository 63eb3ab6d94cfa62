"""Load and validate ``config/`` into one immutable ``Config``; keep the last good one."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
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
from worker.config_errors import admin_message, did_you_mean
from worker.yamlsource import ConfigIssue, YamlDocument, field_name, load_yaml

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=BaseModel)
FILES = ("feeds.yaml", "watchlists.yaml", "channels.yaml")
# More sources than one file's cap holds (or one file per desk or region): feeds.d/*.yaml,
# each read as a feeds.yaml, read in name order after it.
FEEDS_DIR = "feeds.d"
MAX_FEED_FILES = 64  # 64 files at the 4 MB cap: far past 100,000 sources


class ChannelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # failing channels and feeds are reported to this channel (optional)
    ops_channel: str | None = None
    channels: tuple[AnyChannelConfig, ...] = ()


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
    texts: Mapping[str, str] = field(default_factory=dict, compare=False)  # as loaded

    def feed(self, feed_id: str) -> FeedSource | None:
        return self._feeds_by_id.get(feed_id)

    @cached_property
    def _feeds_by_id(self) -> dict[str, FeedSource]:
        """A poll batch looks up hundreds of feeds among up to 100,000: by id, not a scan."""
        return {f.id: f for f in self.feeds}

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


MAX_FILE_BYTES = 4 * 1024 * 1024  # a hundred times a large desk's watch-lists


def _read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, why not): only a regular UTF-8 file within the size cap is
    read, so a FIFO or a device cannot hang a reload and a huge file cannot stall it."""
    try:
        if path.exists() and not path.is_file():
            return None, "cannot read: not a regular file"
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    if len(data) > MAX_FILE_BYTES:
        return None, f"larger than the {MAX_FILE_BYTES // (1024 * 1024)} MB cap for a config file"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})"


def feed_files(config_dir: Path) -> tuple[list[str], str | None]:
    """The ``feeds.d/*.yaml`` files as names relative to ``config_dir``, in name order, and
    why some were left out (too many, or the directory cannot be listed)."""
    folder = config_dir / FEEDS_DIR
    try:
        if not folder.is_dir():
            return [], None
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith((".yaml", ".yml")))
    except OSError as exc:
        return [], f"cannot list: {exc.strerror or exc}"
    if len(names) > MAX_FEED_FILES:
        return [], f"{len(names)} files: at most {MAX_FEED_FILES} are read"
    return [f"{FEEDS_DIR}/{name}" for name in names], None


def config_files(config_dir: Path) -> tuple[list[str], list[ConfigIssue]]:
    """Every file the config reads, as names relative to ``config_dir``."""
    extra, problem = feed_files(config_dir)
    where = str(config_dir / FEEDS_DIR)
    return [*FILES, *extra], [ConfigIssue(where, 1, "(directory)", problem)] if problem else []


def read_texts(config_dir: Path) -> tuple[dict[str, str], list[ConfigIssue]]:
    names, issues = config_files(config_dir)
    texts = {}
    for name in names:
        text, problem = _read_text(config_dir / name)
        if text is None:
            issues.append(ConfigIssue(str(config_dir / name), 1, "(file)", problem or "?"))
        else:
            texts[name] = text
    return texts, issues


def _parse(
    config_dir: Path, name: str, texts: Mapping[str, str], issues: list[ConfigIssue]
) -> YamlDocument:
    path = str(config_dir / name)
    if name not in texts:  # unreadable, reported by read_texts
        return YamlDocument(path, None, {}, [ConfigIssue(path, 1, "(file)", "unreadable")])
    doc = load_yaml(texts[name], path)
    issues.extend(doc.issues)
    return doc


def _validate(doc: YamlDocument, model: type[M], issues: list[ConfigIssue]) -> M | None:
    if doc.data is None:  # an empty file is valid; an unreadable one was reported already
        return None if doc.issues else model.model_validate({})
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        schema = model.model_json_schema()
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if err["type"] == "union_tag_invalid":  # the problem is the tag's value
                loc += (str((err.get("ctx") or {}).get("discriminator", "type")).strip("'"),)
            if doc.reported(loc):
                continue
            problem = admin_message(err, schema)
            issues.append(ConfigIssue(doc.file, doc.line_of(loc), doc.field_of(loc), problem))
        return None


def _entries(doc: YamlDocument, key: str) -> list[Any]:
    """The list ``key`` as written (possibly invalid), so that checks across entries (unique
    ids, references, queries) run even when some entry fails validation."""
    entries = doc.data.get(key) if isinstance(doc.data, dict) else None
    return entries if isinstance(entries, list) else []


def _raw_ids(doc: YamlDocument, key: str) -> list[str | None]:
    return [e.get("id") if isinstance(e, dict) else None for e in _entries(doc, key)]


def _valid(doc: YamlDocument, key: str, model: type[M]) -> list[tuple[int, M]]:
    """Entries of ``key`` that validate on their own, with their index in the file."""
    out = []
    for i, entry in enumerate(_entries(doc, key)):
        try:
            out.append((i, model.model_validate(entry)))
        except ValidationError:
            continue  # reported with the whole file
    return out


def _unique(docs: list[YamlDocument], key: str, issues: list[ConfigIssue]) -> None:
    """An id used twice, in one file or in two (feeds.yaml and feeds.d/), is reported where
    it comes again; across files it names where it was first."""
    first: dict[str, str] = {}
    for doc in docs:
        for i, ident in enumerate(_raw_ids(doc, key)):
            if not isinstance(ident, str):
                continue
            line = doc.line_of((key, i, "id"))
            if ident in first:
                problem = f"duplicate id {ident!r}"
                if not first[ident].startswith(f"{doc.file}:"):
                    problem += f" (first in {first[ident]})"
                issues.append(ConfigIssue(doc.file, line, f"{key}[{i}].id", problem))
            else:
                first[ident] = f"{doc.file}:{line}"


def _check_references(doc: YamlDocument, channels: set[str], issues: list[ConfigIssue]) -> None:
    for i, entry in enumerate(_entries(doc, "watchlists")):
        named = entry.get("channels") if isinstance(entry, dict) else None
        for j, channel in enumerate(named if isinstance(named, list) else ()):
            if isinstance(channel, str) and channel not in channels:
                where = ("watchlists", i, "channels", j)
                problem = f"unknown channel id {channel!r}{did_you_mean(channel, sorted(channels))}"
                problem += " (channels.yaml has: " + ", ".join(sorted(channels)) + ")"
                issues.append(ConfigIssue(doc.file, doc.line_of(where), field_name(where), problem))


def _queries_as_written(doc: YamlDocument) -> list[tuple[int, WatchList]]:
    """Each entry as a watch-list to compile; one that fails validation (a missing title,
    say) still has its query and exclude checked, as a disabled stand-in."""
    valid = dict(_valid(doc, "watchlists", WatchList))
    out = []
    for i, entry in enumerate(_entries(doc, "watchlists")):
        if i in valid:
            out.append((i, valid[i]))
            continue
        fields = entry if isinstance(entry, dict) else {}
        query, exclude = fields.get("query"), fields.get("exclude")
        if isinstance(query, str) and query and (exclude is None or isinstance(exclude, str)):
            ident = fields.get("id") if isinstance(fields.get("id"), str) else f"#{i}"
            stand_in = WatchList.model_construct(
                id=ident, query=query, exclude=exclude, enabled=False, sources=()
            )
            out.append((i, stand_in))
    return out


def _check_sources(doc: YamlDocument, feeds: set[str], issues: list[ConfigIssue]) -> None:
    """A watch-list's ``sources`` name feeds that exist (``tag:NAME`` entries are free)."""
    for i, entry in enumerate(_entries(doc, "watchlists")):
        named = entry.get("sources") if isinstance(entry, dict) else None
        for j, source in enumerate(named if isinstance(named, list) else ()):
            if isinstance(source, str) and not source.startswith("tag:") and source not in feeds:
                where = ("watchlists", i, "sources", j)
                problem = f"unknown feed id {source!r}{did_you_mean(source, sorted(feeds))}"
                problem += " (write tag:NAME for a tag)"
                issues.append(ConfigIssue(doc.file, doc.line_of(where), field_name(where), problem))


def _aliases(doc: YamlDocument) -> dict[str, tuple[str, ...]]:
    """The aliases that validate, so queries are checked even when another alias is bad."""
    raw = doc.data.get("aliases") if isinstance(doc.data, dict) else None
    out: dict[str, tuple[str, ...]] = {}
    for name, members in (raw or {}).items() if isinstance(raw, dict) else ():
        try:
            out |= WatchListsFile.model_validate({"aliases": {name: members}}).aliases
        except ValidationError:
            continue  # reported with the whole file
    return out


def _compile(
    doc: YamlDocument, wl: WatchListsFile | None, issues: list[ConfigIssue]
) -> Matcher | None:
    """The matcher, or None with every query problem reported; with an invalid file, the
    watch-lists that validate on their own are still compiled, to report their queries."""
    entries = list(enumerate(wl.watchlists)) if wl else _queries_as_written(doc)
    aliases = wl.aliases if wl else _aliases(doc)
    try:
        matcher = compile_matcher([w for _, w in entries], aliases)
    except WatchListErrors as group:
        index = {w.id: i for i, w in entries}
        for err in group.errors:
            if err.message == "duplicate watch-list id":
                continue  # reported by _unique, with the line of the second id
            where = ("watchlists", index.get(err.watchlist_id, 0), err.field)
            problem = f"{err.message} (column {err.column})"
            issues.append(ConfigIssue(doc.file, doc.line_of(where), field_name(where), problem))
        return None
    return matcher if wl else None


def _channel_ids(doc: YamlDocument) -> set[str]:
    """Ids as written, so references are checked even when a channel entry is invalid."""
    return {i for i in _raw_ids(doc, "channels") if isinstance(i, str)}


def _check_ops_channel(doc: YamlDocument, issues: list[ConfigIssue]) -> None:
    ops = doc.data.get("ops_channel") if isinstance(doc.data, dict) else None
    channels = sorted(_channel_ids(doc))
    if isinstance(ops, str) and ops not in channels:
        problem = f"unknown channel id {ops!r}{did_you_mean(ops, channels)}"
        issues.append(ConfigIssue(doc.file, doc.line_of(("ops_channel",)), "ops_channel", problem))


_FILE_RANK = {FILES[0]: 0, FEEDS_DIR: 1, FILES[1]: 2, FILES[2]: 3}


def _in_file_order(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """feeds.yaml, then feeds.d/ in name order, then watchlists.yaml and channels.yaml."""

    def rank(issue: ConfigIssue) -> tuple[int, str, int]:
        path = Path(issue.file)
        if FEEDS_DIR in (path.parent.name, path.name):
            return _FILE_RANK[FEEDS_DIR], path.name, issue.line
        return _FILE_RANK.get(path.name, len(_FILE_RANK)), "", issue.line

    return sorted(issues, key=rank)


def signature(config_dir: Path) -> tuple[Any, ...]:
    """Cheap change detector: (name, mtime_ns, size) of each file."""
    out: list[tuple[str, int | None, int | None]] = []
    for name in config_files(config_dir)[0]:
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
    texts, issues = read_texts(config_dir)
    return config_from_texts(texts, config_dir, issues, sig)


def config_from_texts(
    texts: Mapping[str, str],
    config_dir: Path,
    issues: list[ConfigIssue] | None = None,
    sig: tuple[Any, ...] = (),
) -> Config:
    """The config the files' ``texts`` make (errors name them in ``config_dir``): the three
    files, and the ``feeds.d/`` files ``texts`` holds."""
    issues = list(issues or [])
    feeds_doc, wl_doc, ch_doc = (_parse(config_dir, name, texts, issues) for name in FILES)
    more = sorted(name for name in texts if name.startswith(f"{FEEDS_DIR}/"))
    feed_docs = [feeds_doc, *(_parse(config_dir, name, texts, issues) for name in more)]
    feeds = [_validate(doc, FeedsFile, issues) for doc in feed_docs]
    wl = _validate(wl_doc, WatchListsFile, issues)
    channels = _validate(ch_doc, ChannelsFile, issues)
    for docs, key in ((feed_docs, "feeds"), ([wl_doc], "watchlists"), ([ch_doc], "channels")):
        _unique(docs, key, issues)
    _check_ops_channel(ch_doc, issues)
    if ch_doc.data is not None or not ch_doc.issues:  # not when channels.yaml is unreadable
        _check_references(wl_doc, _channel_ids(ch_doc), issues)
    if all(doc.data is not None or not doc.issues for doc in feed_docs):
        ids = {i for doc in feed_docs for i in _raw_ids(doc, "feeds") if isinstance(i, str)}
        _check_sources(wl_doc, ids, issues)
    matcher = _compile(wl_doc, wl, issues)
    if issues or not (all(feeds) and wl and channels and matcher):
        raise ConfigError(_in_file_order(issues))
    return Config(
        feeds=tuple(f for file in feeds if file for f in file.feeds),
        watchlists=wl.watchlists,
        aliases=wl.aliases,
        channels={c.id: c for c in channels.channels},
        matcher=matcher,
        ops_channel=channels.ops_channel,
        signature=sig,
        texts=dict(texts),
    )


def load_watchlists(config_dir: Path | str) -> WatchListsFile:
    """``watchlists.yaml`` alone, for trying watch-lists without the rest (``watchfloor
    match``): every problem ``load_config`` finds in it but references to channels."""
    config_dir = Path(config_dir)
    text, problem = _read_text(config_dir / "watchlists.yaml")
    issues = [ConfigIssue(str(config_dir / "watchlists.yaml"), 1, "(file)", problem or "?")]
    texts = {} if text is None else {"watchlists.yaml": text}
    issues = issues if text is None else []
    doc = _parse(config_dir, "watchlists.yaml", texts, issues)
    wl = _validate(doc, WatchListsFile, issues)
    _unique([doc], "watchlists", issues)
    _compile(doc, wl, issues)
    if issues or wl is None:
        raise ConfigError(issues)
    return wl


class ConfigCache:
    """Reloads when a file changes; an invalid edit keeps the last good config.

    The last good config's texts are also kept in ``snapshot`` (a JSON file under var/), so
    a process that starts while the files are broken (a Celery pool child replaced after a
    time limit, a restarted container) comes up on them instead of failing every task.
    """

    def __init__(
        self,
        config_dir: Path,
        loader: Callable[[Path], Config] = load_config,
        snapshot: Path | None = None,
    ) -> None:
        self.config_dir = config_dir
        self.snapshot = snapshot
        self._loader = loader
        self._current: Config | None = None
        self._loaded_at = 0.0  # time.time() when _current was loaded
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
            loaded = self._loader(self.config_dir)
        except Exception as exc:  # any failure to load, not only a reported one, keeps the old
            errors = [str(i) for i in exc.issues] if isinstance(exc, ConfigError) else []
            errors = errors or [f"{type(exc).__name__}: {exc}"[:500]]
            self._current = self._newer_snapshot() or self._current or self._from_snapshot()
            if self._current is None:
                raise
            self._failed_signature = sig
            log.error("config invalid; keeping the last good one", errors=errors)
            return self._current
        self._current, self._failed_signature = loaded, None
        self._loaded_at = time.time()
        log.info("config loaded", summary=loaded.summary())
        self._save_snapshot(loaded)
        return loaded

    def _save_snapshot(self, config: Config) -> None:
        if self.snapshot is None or not config.texts:
            return
        try:
            if self.snapshot.exists() and json.loads(self.snapshot.read_text()) == config.texts:
                return
            self.snapshot.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.snapshot.with_name(f"{self.snapshot.name}.{os.getpid()}.tmp")
            # ASCII: a file name that is not UTF-8 (kept by Python as surrogates) survives
            tmp.write_text(json.dumps(config.texts))
            os.replace(tmp, self.snapshot)  # atomic: another process reads old or new, whole
        except (OSError, ValueError) as exc:
            log.warning("cannot keep the last good config", path=str(self.snapshot), error=str(exc))

    def _newer_snapshot(self) -> Config | None:
        """The last good config another process kept after this one loaded its own: a pool
        child that slept through a valid edit, then met a broken one, takes the newer one."""
        if self.snapshot is None or self._current is None:
            return None
        try:
            if self.snapshot.stat().st_mtime <= self._loaded_at:
                return None
            texts = json.loads(self.snapshot.read_text())
            if texts == self._current.texts:
                return None
            config = config_from_texts(texts, self.config_dir)
        except (OSError, ValueError, ConfigError):
            return None
        log.warning("config files invalid; running on the newer last good config")
        self._loaded_at = time.time()
        return config

    def _from_snapshot(self) -> Config | None:
        if self.snapshot is None:
            return None
        try:
            texts = json.loads(self.snapshot.read_text())
            config = config_from_texts(texts, self.config_dir)
        except (OSError, ValueError, ConfigError):
            return None
        log.warning("config files invalid at start; running on the last good config")
        return config
