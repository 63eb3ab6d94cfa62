"""``watchfloor send-test CHANNEL_ID``: send a sample alert through one configured channel."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from alerts.channels import build_channel, close_channel
from alerts.types import Alert, AlertItem, AlertWatchlist, Hit
from common.errors import DeliveryError
from worker.config import ConfigError, load_config
from worker.settings import load_settings

TITLE = "Watchfloor test alert"
SUMMARY = "A test alert sent by watchfloor send-test to check this channel's configuration."


def register(sub: Any) -> None:
    p = sub.add_parser("send-test", help="send a sample alert through one channel")
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="an id from channels.yaml")
    p.add_argument("--config-dir", default=None, help="default: $WATCHFLOOR_CONFIG_DIR or ./config")
    p.set_defaults(func=run)


def sample_alert(now: datetime | None = None) -> Alert:
    """A realistic alert; a fresh delivery id each time, so mail servers do not dedupe it."""
    now = now or datetime.now(UTC)
    start = SUMMARY.index("test alert")
    return Alert(
        alert_id="alr_test",
        delivery_id=f"test-{uuid.uuid4().hex}",
        created_at=now,
        watchlist=AlertWatchlist(id="send-test", title="Channel test", severity="low"),
        item=AlertItem(
            title=TITLE,
            url="https://example.org/watchfloor/send-test",
            feed_id="send-test",
            published_at=now,
            summary=SUMMARY,
        ),
        hits=(Hit("test alert", "summary", start, start + len("test alert"), SUMMARY),),
        snippet=SUMMARY,
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    config_dir = args.config_dir or settings.config_dir
    try:
        channels = load_config(config_dir).channels
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return _error(f"{len(exc.issues)} problem(s) in {config_dir}")
    config = channels.get(args.channel_id)
    if config is None:
        known = ", ".join(sorted(channels)) or "none"
        return _error(f"unknown channel {args.channel_id!r} (channels.yaml has: {known})")
    channel = build_channel(config, allow_private=settings.allow_private_urls)
    try:
        channel.send(sample_alert())
    except DeliveryError as exc:
        kind = "permanent" if exc.permanent else "transient"
        return _error(f"{exc.message} ({kind})")
    finally:
        close_channel(channel)  # a kept session would otherwise outlive the command
    print(f"ok: sent test alert via {args.channel_id}")
    return 0


def _error(reason: str) -> int:
    print(f"error: {reason}", file=sys.stderr)
    return 1
