"""Process settings from the environment (``WATCHFLOOR_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in _TRUE


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    var_dir: Path
    database_url: str
    broker_url: str
    allow_private_urls: bool
    first_poll_window_hours: float
    sweep_interval: float
    beat_interval: float
    metrics_port: int | None
    retention: timedelta = timedelta(days=30)
    feed_failing_after: timedelta = timedelta(hours=6)
    # the SQLite file under var_dir, not a database someone runs: commands may migrate it
    embedded_database: bool = False

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("sqla+")


def load_settings() -> Settings:
    var_dir = Path(os.environ.get("WATCHFLOOR_VAR_DIR", "./var")).resolve()
    metrics = os.environ.get("WATCHFLOOR_METRICS_PORT", "")
    embedded_url = f"sqlite:///{var_dir / 'watchfloor.db'}"
    return Settings(
        config_dir=Path(os.environ.get("WATCHFLOOR_CONFIG_DIR", "./config")).resolve(),
        var_dir=var_dir,
        database_url=os.environ.get("WATCHFLOOR_DATABASE_URL") or embedded_url,
        broker_url=os.environ.get(
            "WATCHFLOOR_BROKER_URL", f"sqla+sqlite:///{var_dir / 'broker.db'}"
        ),
        allow_private_urls=env_flag("WATCHFLOOR_ALLOW_PRIVATE_URLS"),
        first_poll_window_hours=float(os.environ.get("WATCHFLOOR_FIRST_POLL_WINDOW_HOURS", "24")),
        sweep_interval=float(os.environ.get("WATCHFLOOR_SWEEP_INTERVAL", "15")),
        beat_interval=float(os.environ.get("WATCHFLOOR_BEAT_INTERVAL", "5")),
        metrics_port=int(metrics) if metrics else None,
        retention=timedelta(days=float(os.environ.get("WATCHFLOOR_RETENTION_DAYS", "30"))),
        feed_failing_after=timedelta(
            minutes=float(os.environ.get("WATCHFLOOR_FEED_FAILING_AFTER_MINUTES", "360"))
        ),
        embedded_database=not os.environ.get("WATCHFLOOR_DATABASE_URL"),
    )
