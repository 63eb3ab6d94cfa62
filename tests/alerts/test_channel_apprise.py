"""The Apprise channel: our message template, feed text that can ping no one and link
nowhere, and real sends through Apprise's json:// and form:// to a loopback receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import markdown_it
import pytest
from pydantic import TypeAdapter

from alerts.channels import AnyChannelConfig, build_channel
from alerts.channels.chat import ID_HEADER, AppriseChannel
from alerts.render_chat import chat_body, chat_title, digest_body
from alerts.types import AlertStory, Digest
from common.errors import DeliveryError
from tests.helpers.alerts import digest_alerts, make_alert
from tests.helpers.configdir import write_config
from tests.helpers.http import WebhookReceiver
from worker.config import ConfigError, load_config

HOSTILE = (
    "@channel @everyone <!here> [click](https://evil.example/x) <a href='https://evil.example'>"
    "x</a> **bold** # Heading <script>alert(1)</script> \u202e ＠here missile"
)


def channel(url: str, fmt: str = "markdown", *, allow_private: bool = True) -> AppriseChannel:
    config = TypeAdapter(AnyChannelConfig).validate_python(
        {"id": "chat", "type": "apprise", "url": url, "format": fmt}
    )
    built = build_channel(config, allow_private=allow_private)
    assert isinstance(built, AppriseChannel)
    return built


def test_the_message_says_what_where_which_watchlist_and_why() -> None:
    story = AlertStory(7, datetime(2024, 5, 7, tzinfo=UTC), ("wire", "yonhap", "tass"))
    alert = make_alert(story=story)
    body = chat_body(alert, "text")
    assert chat_title(alert, "text") == "[HIGH] Missile tests"
    assert "Pyongyang fires ballistic missile into the sea" in body
    assert "https://news.example.org/2024/05/07/missile" in body
    assert "Sources: wire, yonhap, tass" in body and "Matched: ballistic missile" in body
    assert "ref dlv" in body  # the delivery id, the same on every retry


@pytest.mark.parametrize("fmt", ["markdown", "html", "text"])
def test_a_hostile_title_cannot_mention_link_or_restyle(fmt: str) -> None:
    alert = make_alert(title=HOSTILE, summary="North Korea: " + HOSTILE)
    body, title = chat_body(alert, fmt), chat_title(alert, fmt)  # type: ignore[arg-type]
    text = body + title
    for mention in ("@channel", "@everyone", "<!here>", "＠here"):
        assert mention not in text, (fmt, mention)
    assert "\u202e" not in text  # no right-to-left override reorders the line
    if fmt == "markdown":
        rendered = markdown_it.MarkdownIt().render(body)
        assert rendered.count("<a ") == 1 and 'href="https://news.example.org' in rendered
        assert "evil.example" not in rendered.split('href="')[1].split('"')[0]
        assert "<script" not in rendered and "<h1" not in rendered
        assert "<strong>bold</strong>" not in rendered  # feed stars stay stars
    if fmt == "html":
        assert body.count("<a ") == 1 and "<script" not in body and "&lt;script&gt;" in body


def test_a_javascript_link_is_no_link() -> None:
    alert = make_alert(
        item=make_alert().item.__class__(
            title="Launch", url="javascript:alert(1)", feed_id="wire", published_at=None, summary=""
        )
    )
    assert "javascript" not in chat_body(alert, "markdown")
    assert "](" not in chat_body(alert, "markdown")


def test_json_scheme_sends_with_the_delivery_id_and_a_failure_is_transient() -> None:
    with WebhookReceiver() as hook:
        sender = channel(hook.url.replace("http://", "json://"))
        hook.fail_times(1)
        with pytest.raises(DeliveryError) as failed:
            sender.send(make_alert(delivery_id="dlv_same"))
        assert not failed.value.permanent and "500" in failed.value.message
        sender.send(make_alert(delivery_id="dlv_same"))
        assert [r.headers[ID_HEADER.lower()] for r in hook.requests] == ["dlv_same", "dlv_same"]
        payload = json.loads(hook.requests[-1].body)
        assert payload["title"] == "\\[HIGH\\] Missile tests"
        assert "ballistic missile" in payload["message"]


def test_form_scheme_and_digests() -> None:
    with WebhookReceiver() as hook:
        sender = channel(hook.url.replace("http://", "form://"), "text")
        alerts = digest_alerts()
        now = datetime(2024, 5, 7, tzinfo=UTC)
        sender.send_digest(Digest("dig_1", "chat", now, now, alerts))
        [request] = hook.requests
        form = parse_qs(request.body.decode())
        assert form["title"] == ["Watchfloor digest: 4 alerts"]
        assert "ref dig_1" in form["message"][0] and request.headers[ID_HEADER.lower()] == "dig_1"
        assert digest_body(Digest("dig_1", "chat", now, now, alerts), "text") == form["message"][0]


def test_a_receiver_that_is_down_is_a_transient_failure() -> None:
    with WebhookReceiver() as hook:
        url = hook.url.replace("http://", "json://")
    with pytest.raises(DeliveryError) as failed:
        channel(url).send(make_alert())
    assert not failed.value.permanent and "connection error" in failed.value.message.lower()


def test_private_addresses_are_refused_unless_allowed() -> None:
    with pytest.raises(DeliveryError) as refused:
        channel("json://127.0.0.1:9/hook", allow_private=False).send(make_alert())
    assert refused.value.permanent and "refused" in refused.value.message


def test_the_url_is_a_secret_never_shown(tmp_path: Path) -> None:
    secret = "json://user:hunter2-very-secret@127.0.0.1:9/hook-token-123456"
    config = TypeAdapter(AnyChannelConfig).validate_python(
        {"id": "chat", "type": "apprise", "url": secret}
    )
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.model_dump())
    with pytest.raises(DeliveryError) as failed:
        build_channel(config, allow_private=True).send(make_alert())
    assert "hunter2" not in failed.value.message and "hook-token" not in failed.value.message
    bad = {"id": "chat", "type": "apprise", "url": "nosuch://hunter2-very-secret/x"}
    config_dir = write_config(tmp_path / "config", channels=[bad, {"id": "console", "type": "log"}])
    with pytest.raises(ConfigError) as refused:
        load_config(config_dir)
    [issue] = [str(i) for i in refused.value.issues]
    assert "hunter2" not in issue and "scheme 'nosuch'" in issue and "channels.yaml" in issue
