"""The whole pipeline on real parts: Celery worker + beat on Redis, a loopback feed server,
aiosmtpd, and a loopback webhook receiver verified with the ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import WebhookReceiver
from tests.helpers.processes import Service, celery_worker, service_env, wait_until
from tests.helpers.smtp import SMTPServer

HIT = "North Korea fires ballistic missile toward the East Sea"
MISS = "Seoul stocks close higher on chip exports"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@dataclass
class Stack:
    feeds: FeedServer
    smtp: SMTPServer
    hook: WebhookReceiver
    worker: Service


@pytest.fixture
def stack(tmp_path: Path, engine, db_url: str, redis_url: str) -> Iterator[Stack]:
    with FeedServer() as feeds, SMTPServer() as smtp, WebhookReceiver() as hook:
        config_dir = write_config(
            tmp_path / "config",
            feeds=[{"id": "wire", "url": feeds.url("wire"), "interval": "1s"}],
            watchlists={
                "watchlists": [
                    {
                        "id": "missile-tests",
                        "title": "Missile tests",
                        "query": '"ballistic missile" AND (Pyongyang OR "North Korea")',
                        "severity": "high",
                        "channels": ["desk-email", "soc-webhook"],
                    }
                ]
            },
            channels=[
                {
                    "id": "desk-email",
                    "type": "email",
                    "to": ["desk@example.org"],
                    "from": "watchfloor@example.org",
                    "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
                },
                {"id": "soc-webhook", "type": "webhook", "url": hook.url, "secret": "${WF_SECRET}"},
            ],
        )
        env = service_env(tmp_path, config_dir, db_url, redis_url, WF_SECRET=SECRET)
        with celery_worker(env, tmp_path / "worker.log") as worker:
            yield Stack(feeds, smtp, hook, worker)


def test_matching_item_gives_one_email_and_one_signed_webhook(stack: Stack) -> None:
    stack.feeds.publish("wire", FeedEntry("g1", MISS))
    assert wait_until(lambda: len(stack.feeds.statuses("wire")) >= 2, 90), stack.worker.log()
    stack.feeds.publish("wire", FeedEntry("g2", HIT, summary="Launched from near Pyongyang."))
    assert wait_until(lambda: stack.smtp.messages and stack.hook.requests, 90), stack.worker.log()
    stack.feeds.publish("wire", FeedEntry("g3", MISS))
    polls = len(stack.feeds.statuses("wire"))
    # several more polls and sweeps: time for a duplicate to surface, if there were one
    assert wait_until(lambda: len(stack.feeds.statuses("wire")) >= polls + 4, 60)

    assert len(stack.smtp.messages) == 1
    assert len(stack.hook.requests) == 1
    email = stack.smtp.messages[0].parsed()
    assert email["Subject"] == f"[HIGH] Missile tests: {HIT}"
    assert stack.smtp.messages[0].rcpt_tos == ("desk@example.org",)
    _assert_matched_words_in_context(email)

    request = stack.hook.requests[0]
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "alert.created.v1"  # issue 4: the version lives in `type`
    assert payload["data"]["watchlist"] == {
        "id": "missile-tests",
        "title": "Missile tests",
        "severity": "high",
    }
    assert payload["data"]["item"]["title"] == HIT
    assert payload["data"]["item"]["feed_id"] == "wire"
    terms = {m["term"].lower() for m in payload["data"]["matches"]}
    assert "ballistic missile" in terms
    assert email["Message-ID"].startswith("<msg_") and request.headers["webhook-id"].startswith(
        "msg_"
    )
    assert 200 in stack.feeds.statuses("wire") and 304 in stack.feeds.statuses("wire")


def _assert_matched_words_in_context(email: EmailMessage) -> None:
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "ballistic missile" in text.lower()
    assert "<mark>" in html and "https://news.example.org/g2" in html


def test_hostile_title_cannot_inject_header_or_html(stack: Stack) -> None:
    hostile = 'North Korea ballistic missile\r\nBcc: x@y\r\n<script>alert("x")</script>'
    stack.feeds.publish("wire", FeedEntry("evil", hostile))
    assert wait_until(lambda: stack.smtp.messages and stack.hook.requests, 90), stack.worker.log()
    polls = len(stack.feeds.statuses("wire"))
    assert wait_until(lambda: len(stack.feeds.statuses("wire")) >= polls + 3, 60)
    assert len(stack.smtp.messages) == 1
    received = stack.smtp.messages[0]
    email = received.parsed()
    assert received.rcpt_tos == ("desk@example.org",)
    assert email["Bcc"] is None and "x@y" not in str(email["To"])
    assert "\n" not in email["Subject"] and "\r" not in email["Subject"]
    raw_headers = received.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in raw_headers
    html = email.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    data = json.loads(stack.hook.requests[0].body)["data"]
    assert "\r" not in data["item"]["title"] and "\n" not in data["item"]["title"]
