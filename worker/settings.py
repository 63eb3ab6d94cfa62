"""Process settings: every ``WATCHFLOOR_*`` variable declared once, in ``OPTIONS``.

Each option has its default (as it would be written in the environment), its parser and
the line the README's table shows (miniflux's ``options.go``). ``load_settings`` reads the
environment when it is called, never at import, and a bad value is a ``SettingsError``
that names the variable. The README's table is checked against ``OPTIONS`` by a test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from alerts.controls import DEFAULT_RETRY_SCHEDULE
from common.durations import parse_duration, parse_durations

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable that cannot be read; the message names it."""


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(f"not a yes/no value: {text!r} (use 1 or 0)")
    return value in _TRUE


def _seconds(text: str) -> float:
    seconds = float(text)
    if not seconds > 0:
        raise ValueError(f"must be a positive number of seconds, not {text!r}")
    return seconds


def _minutes(text: str) -> timedelta:
    return timedelta(seconds=_seconds(text) * 60)


def _hours(text: str) -> timedelta:
    return timedelta(seconds=_seconds(text) * 3600)


def _duration(text: str) -> timedelta:
    value = parse_duration(text.strip())
    if value < timedelta(seconds=1):
        raise ValueError(f"must be at least 1s, not {text!r}")
    return value


def _safety_net(text: str) -> timedelta:
    value = _duration(text)
    if value > timedelta(hours=1):
        raise ValueError(f"the safety net polls at least hourly: at most 1h, not {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _days(text: str) -> timedelta:
    return timedelta(seconds=_seconds(text) * 86400)


def _port(text: str) -> int | None:
    if not text.strip():
        return None
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"not a TCP port: {text!r}")
    return port


def _schedule(text: str) -> tuple[timedelta, ...]:
    delays = parse_durations(text)
    if not delays:
        raise ValueError("give at least one delay, e.g. 5s,5m,30m")
    return delays


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(a or '(empty)' for a in allowed)}")
        return value

    return parse


def _level(text: str) -> str:
    value = text.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"not a log level: {text!r} (DEBUG, INFO, WARNING or ERROR)")
    return value


def _bind(text: str) -> str:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not HOST:PORT: {text!r} (e.g. 127.0.0.1:8080)")
    return f"{host}:{port}"


def _url(text: str) -> str:
    value = text.strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {text!r}")
    return value


def _text(text: str) -> str:
    return text.strip()


def _path(text: str) -> Path:
    return Path(text).resolve()


def _short(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_DEFAULT_RETRY = ",".join(map(_short, DEFAULT_RETRY_SCHEDULE))


@dataclass(frozen=True)
class Option:
    env: str  # the variable
    field: str  # the Settings attribute it sets
    default: str  # as it would be written in the environment; "" is unset
    parse: Callable[[str], Any]
    doc: str
    shown_default: str | None = None  # for the README, when ``default`` says too little


OPTIONS: tuple[Option, ...] = (
    Option("WATCHFLOOR_CONFIG_DIR", "config_dir", "./config", _path, "config directory"),
    Option(
        "WATCHFLOOR_VAR_DIR", "var_dir", "./var", _path, "state directory for the embedded defaults"
    ),
    Option(
        "WATCHFLOOR_DATABASE_URL",
        "database_url",
        "",
        _text,
        "SQLAlchemy URL (`sqlite:///...`, `postgresql+psycopg://...`)",
        "SQLite in `var/`",
    ),
    Option(
        "WATCHFLOOR_BROKER_URL",
        "broker_url",
        "",
        _text,
        "Celery broker (`redis://...`)",
        "SQLite broker in `var/` (`sqla+sqlite://`)",
    ),
    Option(
        "WATCHFLOOR_ALLOW_PRIVATE_URLS",
        "allow_private_urls",
        "0",
        _flag,
        "`1` lets feeds and webhooks point at loopback/private addresses",
        "off",
    ),
    Option(
        "WATCHFLOOR_FIRST_POLL_WINDOW_HOURS",
        "first_poll_window",
        "24",
        _hours,
        "on a feed's first poll, only items published this recently alert",
    ),
    Option(
        "WATCHFLOOR_MIN_INTERVAL",
        "min_interval",
        "1m",
        _duration,
        "adaptive polling: the shortest interval a feed's publishing rhythm may earn"
        " (a feed's `min_interval` overrides it; never above the feed's `interval`)",
    ),
    Option(
        "WATCHFLOOR_MAX_INTERVAL",
        "max_interval",
        "1h",
        _duration,
        "adaptive polling: the longest interval a quiet feed may drift to"
        " (a feed's `max_interval` overrides it; never below the feed's `interval`)",
    ),
    Option(
        "WATCHFLOOR_BEAT_INTERVAL",
        "beat_interval",
        "5",
        _seconds,
        "seconds between due-feed checks",
    ),
    Option(
        "WATCHFLOOR_POLL_BATCH",
        "poll_batch",
        "200",
        _count,
        "feeds a poll worker claims and polls at once (fetched concurrently, written in one "
        "transaction)",
    ),
    Option(
        "WATCHFLOOR_POLL_LEASE",
        "poll_lease",
        "5m",
        _duration,
        "a claimed feed whose poll never records (a killed worker) is due again after this; "
        "longer than a batch takes",
    ),
    Option(
        "WATCHFLOOR_POLL_RINGS",
        "poll_rings",
        "8",
        _count,
        "at most this many poll workers beat wakes at each due-feed check (about one per poll "
        "process)",
    ),
    Option(
        "WATCHFLOOR_SWEEP_INTERVAL",
        "sweep_interval",
        "15",
        _seconds,
        "seconds between outbox sweeps",
    ),
    Option(
        "WATCHFLOOR_RETRY_SCHEDULE",
        "retry_schedule",
        _DEFAULT_RETRY,
        _schedule,
        "delivery retry delays; a channel's `retry:` keys are merged over it",
    ),
    Option(
        "WATCHFLOOR_DELIVERY_LEASE",
        "delivery_lease",
        "300",
        lambda text: timedelta(seconds=_seconds(text)),
        "seconds after which a delivery stuck in `sending` (dead worker) is retried",
    ),
    Option(
        "WATCHFLOOR_VISIBILITY_TIMEOUT",
        "visibility_timeout",
        "3600",
        _seconds,
        "Redis broker visibility timeout, seconds",
    ),
    Option(
        "WATCHFLOOR_REQUEUE_AFTER",
        "requeue_after",
        "60",
        lambda text: timedelta(seconds=_seconds(text)),
        "seconds after which the sweep re-enqueues a due delivery the broker may have lost",
    ),
    Option(
        "WATCHFLOOR_RETENTION_DAYS",
        "retention",
        "30",
        _days,
        "items older than this are pruned (items that fired an alert are kept)",
    ),
    Option(
        "WATCHFLOOR_FEED_FAILING_AFTER_MINUTES",
        "feed_failing_after",
        "360",
        _minutes,
        "a feed failing this long raises an ops alert (`ops_channel` in `channels.yaml`)",
    ),
    Option(
        "WATCHFLOOR_METRICS_PORT",
        "metrics_port",
        "",
        _port,
        "Prometheus metrics port of each worker (unset: no metrics server)",
        "unset (`9808` in compose)",
    ),
    Option(
        "WATCHFLOOR_WEB_BIND",
        "web_bind",
        "127.0.0.1:8080",
        _bind,
        "HOST:PORT the console listens on (`watchfloor web`, and `watchfloor run`)",
    ),
    Option(
        "WATCHFLOOR_CHROMIUM",
        "chromium",
        "/usr/bin/chromium",
        lambda text: text.strip(),
        "the headless Chromium that page sources with `render: browser` run (Debian's "
        "`chromium` package)",
    ),
    Option(
        "WATCHFLOOR_PUBLIC_URL",
        "public_url",
        "",
        _url,
        "the console's address as users reach it; `https://...` makes the session cookie Secure",
        "unset (`http://` + the bind address)",
    ),
    Option(
        "WATCHFLOOR_PUSH_POLL_INTERVAL",
        "push_poll_interval",
        "1h",
        _safety_net,
        "WebSub: how often a feed a hub pushes is still polled, as a safety net (at most 1h)."
        " Hubs are asked only when `WATCHFLOOR_PUBLIC_URL` is set: they call it back",
    ),
    Option(
        "WATCHFLOOR_PUSH_LEASE",
        "push_lease",
        "7d",
        _duration,
        "WebSub: the lease asked of a hub; a subscription is renewed when 80% of it has run",
    ),
    Option(
        "WATCHFLOOR_SECRET_KEY",
        "secret_key",
        "",
        _text,
        "signs the console's session cookies; every web process of a deployment needs the same",
        "generated once into `var/secret_key`",
    ),
    Option(
        "WATCHFLOOR_LOG_FORMAT",
        "log_format",
        "",
        _choice("", "json", "console"),
        "`json` forces JSON logs, `console` readable lines",
        "JSON when not on a terminal",
    ),
    Option(
        "WATCHFLOOR_LOG_LEVEL",
        "log_level",
        "",
        lambda text: _level(text) if text.strip() else None,
        "log level. At `INFO` the service logs alerts, new items, feed and delivery errors and "
        "state changes; Celery's per-task lines and polls that found nothing new show at `DEBUG`",
        "`INFO` for `run` and `web`, `WARNING` for one-shot commands",
    ),
)


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    var_dir: Path
    database_url: str
    broker_url: str
    allow_private_urls: bool
    first_poll_window: timedelta
    min_interval: timedelta
    max_interval: timedelta
    beat_interval: float
    poll_batch: int
    poll_lease: timedelta
    poll_rings: int
    sweep_interval: float
    retry_schedule: tuple[timedelta, ...]
    delivery_lease: timedelta
    visibility_timeout: float
    requeue_after: timedelta
    retention: timedelta
    feed_failing_after: timedelta
    metrics_port: int | None
    web_bind: str
    public_url: str
    push_poll_interval: timedelta
    push_lease: timedelta
    secret_key: str
    log_format: str
    log_level: str | None  # None: the command's own default
    chromium: str = "/usr/bin/chromium"
    # the SQLite file under var_dir, not a database someone runs: commands may migrate it
    embedded_database: bool = False

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("sqla+")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every option from ``env`` (default: the process environment, read now)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for option in OPTIONS:
        text = env.get(option.env, option.default)
        try:
            values[option.field] = option.parse(text)
        except (ValueError, OverflowError) as exc:
            raise SettingsError(f"{option.env}: {exc}") from None
    var_dir: Path = values["var_dir"]
    embedded = f"sqlite:///{var_dir / 'watchfloor.db'}"
    values["embedded_database"] = values["database_url"] in ("", embedded)
    values["database_url"] = values["database_url"] or embedded
    values["broker_url"] = values["broker_url"] or f"sqla+sqlite:///{var_dir / 'broker.db'}"
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in known})


def readme_rows() -> list[str]:
    """The README's environment table, one row per option."""
    rows = []
    for option in OPTIONS:
        default = option.shown_default or (f"`{option.default}`" if option.default else "unset")
        rows.append(f"| `{option.env}` | {option.doc} | {default} |")
    return rows
