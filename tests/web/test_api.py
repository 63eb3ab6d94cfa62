"""The API and the Atom feed on a real server: the webhook's ``data`` validated against its
schema, triage state beside it, cursor pages, filters; the Atom feed read by feedparser."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import jsonschema
import pytest

from alerts.types import Hit, Match
from feeds.normalize import fingerprint
from feeds.sources import FeedSource
from feeds.types import FeedItem
from tests.conftest import REPO
from tests.helpers.configdir import write_config
from tests.helpers.processes import free_port, service_env, wait_until, watchfloor
from worker.db import make_engine, session_factory, upgrade
from worker.outbox import store as outbox
from worker.store import feeds, items
from worker.store import triage as triage_store
from worker.store import users as users_store
from worker.store.triage import Action
from worker.stories import file_items

SCHEMA = json.loads((REPO / "alerts" / "schema" / "alert.created.v1.json").read_text())
NOW = datetime.now(UTC).replace(microsecond=0)
WATCHLISTS = {
    "aliases": {"dprk": ["North Korea", "북한", "КНДР"]},
    "watchlists": [
        {
            "id": "missile-tests",
            "title": "Missile tests",
            "query": "@dprk AND (missile* OR 미사일 OR ракет*)",
            "severity": "high",
            "channels": ["console"],
        },
        {
            "id": "sanctions",
            "title": "Sanctions",
            "query": "sanction*",
            "severity": "medium",
            "channels": ["console"],
        },
    ],
}
TITLES = [
    ("missile-tests", "North Korea fires ballistic missile toward the East Sea", "en"),
    ("missile-tests", "북한, 서해상으로 탄도미사일 발사", "ko"),  # other events: no one story
    ("missile-tests", "КНДР провела испытание ракетного двигателя", "ru"),
    ("sanctions", "EU widens sanctions on shipping firms", "en"),
]
PASSWORD = "correct horse battery staple"


def _seed(db_url: str) -> tuple[str, list[int]]:
    """Four alerts (one of them a false positive), an analyst and a token."""
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    match_ids = []
    with sessions.begin() as s:
        feeds.sync(s, [FeedSource(id="wire", url="http://127.0.0.1:9/wire")], NOW)
        for n, (watchlist, title, _) in enumerate(TITLES):
            at = NOW - timedelta(minutes=10 * (len(TITLES) - n))
            item = FeedItem(
                f"g{n}",
                title,
                f"https://news.example.org/{n}",
                "summary",
                at,
                fingerprint(title, ""),
            )
            [(item_id, stored)] = items.insert_new(s, "wire", [item], at)
            story_id = file_items(s, [(item_id, stored)], at)[item_id]
            hit = Hit(title.split()[0], "title", 0, len(title.split()[0]), title)
            match = Match(watchlist, (hit,), title)
            match_id = outbox.insert_alert(s, item_id, story_id, "", "high", match, at)
            assert match_id is not None
            match_ids.append(match_id)
        user = users_store.add_user(s, "ana", "analyst", PASSWORD, NOW)
        triage_store.apply(s, [match_ids[0]], user.id, Action.FALSE_POSITIVE, NOW, "a drill")
        token = users_store.add_token(s, "reader", "ana", NOW)
    engine.dispose()
    return token, match_ids


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[tuple[str, str, list[int]]]:
    token, match_ids = _seed(db_url)
    config_dir = write_config(tmp_path / "config", watchlists=WATCHLISTS)
    env = service_env(tmp_path, config_dir, db_url, "memory://")
    bind = f"127.0.0.1:{free_port()}"
    with watchfloor(env, tmp_path / "web.log", "web", "--bind", bind) as web:
        base = f"http://{bind}"
        assert wait_until(lambda: _answers(base), 60), web.log()
        yield base, token, match_ids


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_api_gives_each_alert_the_webhook_data_and_its_triage(server) -> None:  # type: ignore[no-untyped-def]
    base, token, match_ids = server
    auth = {"Authorization": f"Bearer {token}"}
    body = httpx.get(f"{base}/api/v1/alerts", headers=auth, timeout=10).json()
    assert [a["data"]["alert_id"] for a in body["alerts"]] == [
        f"alr_{i}" for i in reversed(match_ids)
    ]
    for alert in body["alerts"]:  # the same data object as the webhook payload
        envelope = {
            "type": "alert.created.v1",
            "timestamp": "2026-12-01T00:00:00Z",
            "data": alert["data"],
        }
        jsonschema.Draft202012Validator(SCHEMA).validate(envelope)
    by_id = {a["data"]["alert_id"]: a for a in body["alerts"]}
    first = by_id[f"alr_{match_ids[0]}"]
    assert first["triage"]["false_positive"] is True
    assert first["triage"]["false_positive_reason"] == "a drill"
    assert {a["data"]["item"]["language"] for a in body["alerts"]} == {"en", "ko", "ru"}
    assert body["alerts"][1]["data"]["story"]["sources"] == ["wire"]


def test_the_api_pages_by_cursor_and_filters(server) -> None:  # type: ignore[no-untyped-def]
    base, token, match_ids = server
    auth = {"Authorization": f"Bearer {token}"}
    seen, cursor = [], None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(f"{base}/api/v1/alerts", headers=auth, params=params, timeout=10).json()
        seen += [a["data"]["alert_id"] for a in page["alerts"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"alr_{i}" for i in reversed(match_ids)]  # newest first, each once

    def ids(**params: str) -> list[str]:
        got = httpx.get(f"{base}/api/v1/alerts", headers=auth, params=params, timeout=10).json()
        return [a["data"]["alert_id"] for a in got["alerts"]]

    assert ids(watchlist="sanctions") == [f"alr_{match_ids[3]}"]
    assert ids(q="미사일") == [f"alr_{match_ids[1]}"]
    assert ids(q="ракет") == [f"alr_{match_ids[2]}"]
    assert ids(feed="wire", severity="high", since="1d") == ids()
    assert ids(since="2099-01-01") == []


def test_the_atom_feed_has_one_entry_per_alert_of_its_watch_list(server) -> None:  # type: ignore[no-untyped-def]
    base, token, match_ids = server
    for request in (
        {"headers": {"Authorization": f"Bearer {token}"}},
        {"params": {"token": token}},  # feed readers that cannot send a header
    ):
        response = httpx.get(f"{base}/watchlists/missile-tests/feed.atom", timeout=10, **request)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(io.BytesIO(response.content))
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.version == "atom10"
        assert [e.id for e in parsed.entries] == [
            f"urn:watchfloor:alert:{i}" for i in reversed(match_ids[:3])
        ]
        assert parsed.entries[0].link.startswith("https://news.example.org/")
    assert httpx.get(f"{base}/watchlists/missile-tests/feed.atom", timeout=10).status_code == 401
    bad = {"Authorization": "Bearer wft_not-a-token"}
    assert httpx.get(f"{base}/api/v1/alerts", headers=bad, timeout=10).status_code == 401


def test_a_cli_line_of_the_token_is_the_only_time_it_is_shown(tmp_path: Path) -> None:
    env = service_env(
        tmp_path, write_config(tmp_path / "config"), f"sqlite:///{tmp_path / 'wf.db'}", "memory://"
    )

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "worker", *args]
        return subprocess.run(
            argv, input=stdin, cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )

    assert run("db", "upgrade").returncode == 0
    assert (
        run(
            "user", "add", "ana", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n"
        ).returncode
        == 0
    )
    made = run("token", "add", "reader", "--user", "ana")
    token = made.stdout.strip()
    assert made.returncode == 0 and token.startswith("wft_")
    listed = run("token", "list")
    assert "reader  ana (analyst)  live  never used" in listed.stdout and token not in listed.stdout
    assert run("token", "revoke", "reader").returncode == 0
    assert "revoked" in run("token", "list").stdout
