"""Write a config dir for a test: YAML built from Python data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_WATCHLISTS: dict[str, Any] = {
    "watchlists": [
        {
            "id": "missile-tests",
            "title": "Missile tests",
            "query": '"ballistic missile" AND (Pyongyang OR "North Korea")',
            "severity": "high",
            "channels": ["console"],
        }
    ]
}


def write_config(
    path: Path,
    feeds: list[dict[str, Any]] | None = None,
    watchlists: dict[str, Any] | None = None,
    channels: list[dict[str, Any]] | None = None,
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    dump = {"allow_unicode": True, "sort_keys": False}
    (path / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds or []}, **dump))
    (path / "watchlists.yaml").write_text(yaml.safe_dump(watchlists or DEFAULT_WATCHLISTS, **dump))
    chans = channels if channels is not None else [{"id": "console", "type": "log"}]
    (path / "channels.yaml").write_text(yaml.safe_dump({"channels": chans}, **dump))
    return path
