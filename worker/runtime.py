"""Per-process wiring: engine, sessions, config cache, built channels."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels import build_channel, close_channel
from alerts.channels.base import Channel
from feeds.fetch import FetchLimits
from worker.config import ConfigCache
from worker.db import make_engine, session_factory
from worker.settings import Settings, load_settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    config: ConfigCache
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    max_countdown: timedelta = timedelta(seconds=60)
    _channels: dict[str, tuple[object, Channel]] = field(default_factory=dict)

    def channel(self, channel_id: str) -> Channel | None:
        """A built channel, rebuilt when its config entry changes."""
        config = self.config.current().channels.get(channel_id)
        if config is None:
            return None
        cached = self._channels.get(channel_id)
        if cached is None or cached[0] != config:
            if cached is not None:
                close_channel(cached[1])  # kept-alive connections of the old entry
            built = build_channel(config, allow_private=self.settings.allow_private_urls)
            self._channels[channel_id] = cached = (config, built)
        return cached[1]

    def close(self) -> None:
        """Close the built channels' connections and the engine's pool."""
        for _, built in self._channels.values():
            close_channel(built)
        self._channels.clear()
        self.engine.dispose()


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or load_settings()
    engine = make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        config=ConfigCache(
            settings.config_dir, snapshot=settings.var_dir / "last-good-config.json"
        ),
    )


GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    """A poll batch allocates millions of short-lived objects (parsed items, signatures,
    rows) over a long-lived heap (config, caches): young collections every 700 allocations
    cost 5-7% of a batch's CPU (measured, bench/polling.py). Collect less often, and freeze
    what startup made, so collections never walk it (and a forked pool child shares it)."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    gc.freeze()


_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """One Runtime per process (a forked Celery child builds its own engine)."""
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), build_runtime())
    return _runtime[1]
