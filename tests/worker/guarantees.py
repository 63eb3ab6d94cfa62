"""Shared set-up for the delivery-guarantee tests: a feed, a watch-list, a webhook channel."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import sqlalchemy as sa

from tests.helpers.configdir import write_config
from tests.helpers.processes import service_env

HIT = "North Korea fires ballistic missile toward the East Sea"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
WATCHLIST = {
    "id": "missile-tests",
    "title": "Missile tests",
    "query": '"ballistic missile" AND (Pyongyang OR "North Korea")',
    "severity": "high",
    "channels": ["hook"],
}


def channel_entry(kind: str, hook_url: str) -> dict[str, str]:
    """The channel ``hook`` to the receiver: a signed webhook, or Apprise's json://."""
    if kind == "apprise":
        return {"id": "hook", "type": "apprise", "url": hook_url.replace("http://", "json://", 1)}
    return {"id": "hook", "type": "webhook", "url": hook_url, "secret": SECRET}


def hook_stack_env(
    tmp_path: Path,
    feed_url: str,
    hook_url: str,
    db_url: str,
    redis_url: str,
    channel: str = "webhook",
    **extra: str,
) -> dict[str, str]:
    config_dir = write_config(
        tmp_path / "config",
        feeds=[{"id": "wire", "url": feed_url, "interval": "1s"}],
        watchlists={"watchlists": [WATCHLIST]},
        channels=[channel_entry(channel, hook_url)],
    )
    return service_env(tmp_path, config_dir, db_url, redis_url, **extra)


def deliveries(db_url: str) -> list[dict[str, object]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, status, attempts, last_error FROM deliveries ORDER BY created_at"
                )
            )
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()


def channel_state(db_url: str, channel_id: str) -> dict[str, object] | None:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT * FROM channel_state WHERE id = :id"), {"id": channel_id}
            ).first()
            return dict(row._mapping) if row else None
    finally:
        engine.dispose()


def send_ops_alerts_to(config_dir: Path, url: str) -> None:
    """Point the config's ops channel at a webhook receiver (the console channel stays)."""
    import yaml

    channels = [
        {"id": "console", "type": "log"},
        {"id": "ops", "type": "webhook", "url": url, "secret": SECRET},
    ]
    text = yaml.safe_dump({"ops_channel": "ops", "channels": channels})
    (config_dir / "channels.yaml").write_text(text)
