"""``watchfloor backtest`` over a real store filled by real polls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
import yaml

from tests.conftest import REPO
from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from worker import pipeline
from worker.runtime import build_runtime
from worker.settings import load_settings

ITEMS = [
    ("North Korea fires ballistic missile toward the East Sea", "Launched near Pyongyang."),
    ("North Korea readies reconnaissance satellite at Sohae", "Fuel trucks seen at the pad."),
    ("Seoul stocks close higher on chip exports", "KOSPI up 1.2%."),
]


def test_backtest_reports_counts_samples_and_difference(
    tmp_path: Path, engine: sa.Engine, db_url: str
) -> None:
    with FeedServer() as feeds:
        feeds.publish("wire", *(FeedEntry(f"g{i}", t, s) for i, (t, s) in enumerate(ITEMS)))
        live = write_config(tmp_path / "live", feeds=[{"id": "wire", "url": feeds.url("wire")}])
        settings = replace(
            load_settings(), config_dir=live, database_url=db_url, allow_private_urls=True
        )
        rt = build_runtime(settings)
        assert len(pipeline.poll_feed(rt, "wire").new_items) == 3
        rt.engine.dispose()
    candidate = write_config(
        tmp_path / "candidate",
        feeds=[{"id": "wire", "url": "http://127.0.0.1:9/"}],
        watchlists={
            "watchlists": [
                {"id": "missile-tests", "title": "M", "query": "zzz", "channels": ["console"]},
                {"id": "sat", "title": "S", "query": "satellite", "channels": ["console"]},
            ]
        },
    )
    env = {**os.environ, "WATCHFLOOR_CONFIG_DIR": str(live), "WATCHFLOOR_DATABASE_URL": db_url}
    result = subprocess.run(
        [sys.executable, "-m", "worker", "backtest", "--config-dir", str(candidate), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = {r["watchlist"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["missile-tests"]["alerts"] == 0 and rows["missile-tests"]["gone"] == 1
    assert rows["missile-tests"]["gone_samples"] == [ITEMS[0][0]]
    assert rows["sat"]["alerts"] == 1 and rows["sat"]["new"] == 1
    assert result.stderr.startswith("3 items since")  # stdout holds only the JSON lines
    text = subprocess.run(
        [sys.executable, "-m", "worker", "backtest", "--config-dir", str(candidate)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "missile-tests: 0 alerts (+0 new, -1 gone)" in text
    assert yaml.safe_load((live / "watchlists.yaml").read_text())  # live config untouched
