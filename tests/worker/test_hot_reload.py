"""Editing watchlists.yaml takes effect within a poll cycle, without a restart; an invalid
edit is logged and the last good watch-lists stay in force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import WebhookReceiver
from tests.helpers.processes import celery_worker, wait_until
from tests.worker.guarantees import WATCHLIST, hook_stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SATELLITE = {
    "id": "satellite-launches",
    "title": "Satellite launches",
    "query": '"reconnaissance satellite" AND (Sohae OR "North Korea")',
    "severity": "high",
    "channels": ["hook"],
}


def watchlists_alerted(hook: WebhookReceiver) -> list[str]:
    return [json.loads(r.body)["data"]["watchlist"]["id"] for r in hook.requests]


def test_valid_edit_applies_and_invalid_edit_keeps_last_good(
    tmp_path: Path, engine, db_url: str, redis_url: str
) -> None:
    with FeedServer() as feeds, WebhookReceiver() as hook:
        feeds.publish("wire", FeedEntry("g0", "Seoul stocks close higher on chip exports"))
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        config = Path(env["WATCHFLOOR_CONFIG_DIR"]) / "watchlists.yaml"
        with celery_worker(env, tmp_path / "w.log") as worker:
            assert wait_until(lambda: len(feeds.statuses("wire")) >= 2, 90), worker.log()
            config.write_text(yaml.safe_dump({"watchlists": [WATCHLIST, SATELLITE]}))
            feeds.publish(
                "wire",
                FeedEntry(
                    "g1",
                    "North Korea readies reconnaissance satellite launch at Sohae",
                    "Commercial imagery shows fuel trucks at the Sohae launch pad.",
                ),
            )
            assert wait_until(lambda: len(hook.requests) == 1, 60), worker.log()
            assert watchlists_alerted(hook) == ["satellite-launches"]

            config.write_text(
                "watchlists:\n  - id: broken\n    title: Broken\n    query: '(unbalanced'\n"
            )
            feeds.publish(
                "wire",
                FeedEntry(
                    "g2",
                    "Second reconnaissance satellite set for launch, North Korea tells Japan",
                    "A maritime warning names a window from Dec. 1 to Dec. 10.",
                ),
            )
            assert wait_until(lambda: len(hook.requests) == 2, 60), worker.log()
            assert watchlists_alerted(hook) == ["satellite-launches"] * 2
            assert wait_until(lambda: "config invalid; keeping the last good one" in worker.log())
            assert "unbalanced parenthesis" in worker.log()
            assert worker.alive()
