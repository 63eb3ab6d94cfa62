from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.channels.webhook import WebhookChannel, WebhookConfig
from common.errors import ChannelGoneError, DeliveryError
from common.http import MAX_RETRY_AFTER
from tests.helpers.alerts import make_alert
from tests.helpers.http import Reply, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 24).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()
pytestmark = pytest.mark.timeout(30)


def config(url: str, **extra: Any) -> WebhookConfig:
    entry: dict[str, Any] = {"id": "hook", "type": "webhook", "url": url, "secret": SECRET}
    return WebhookConfig.model_validate({**entry, **extra})


def channel(url: str, **extra: Any) -> WebhookChannel:
    return WebhookChannel(config(url, **extra), allow_private=True)


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def fails(chan: WebhookChannel) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        chan.send(make_alert())
    return info.value


def test_signed_json_verifies_with_standard_webhooks(hook: WebhookReceiver) -> None:
    channel(hook.url).send(make_alert())
    [request] = hook.requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "dlv_0f3c2a"
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "alert.created.v1"
    assert payload["data"]["alert_id"] == "alr_1"
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(request.body, request.headers)


def test_tampered_body_fails_verification(hook: WebhookReceiver) -> None:
    channel(hook.url).send(make_alert())
    [request] = hook.requests
    tampered = request.body.replace(b"Missile tests", b"Missile jests")
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, request.headers)


def test_rotation_signs_with_every_secret(hook: WebhookReceiver) -> None:
    channel(hook.url, secret=[SECRET, OLD_SECRET]).send(make_alert())
    [request] = hook.requests
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (SECRET, OLD_SECRET):
        Webhook(secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(request.body, request.headers)


def test_retries_keep_the_webhook_id(hook: WebhookReceiver) -> None:
    hook.fail_times(2, status=503)
    chan = channel(hook.url)
    for _ in range(2):
        assert not fails(chan).permanent
    chan.send(make_alert())
    assert [r.headers["webhook-id"] for r in hook.requests] == ["dlv_0f3c2a"] * 3
    for request in hook.requests:
        Webhook(SECRET).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("reply", "permanent", "hint"),
    [
        (Reply(500), False, None),
        (Reply(503, headers={"Retry-After": "7"}), False, 7.0),
        (Reply(429, headers={"Retry-After": "30"}), False, 30.0),
        (Reply(408), False, None),
        (Reply(400), True, None),
        (Reply(401), True, None),
        (Reply(404), True, None),
    ],
)
def test_status_mapping(
    hook: WebhookReceiver, reply: Reply, permanent: bool, hint: float | None
) -> None:
    hook.script(reply)
    error = fails(channel(hook.url))
    assert type(error) is DeliveryError
    assert error.permanent is permanent
    assert error.retry_after == hint
    assert f"HTTP {reply.status}" in error.message


def test_gone_disables_the_channel(hook: WebhookReceiver) -> None:
    hook.script(Reply(410, body=b"endpoint deleted"))
    error = fails(channel(hook.url))
    assert isinstance(error, ChannelGoneError) and error.permanent
    assert "410" in error.message and "endpoint deleted" in error.message


def test_redirect_is_not_followed(hook: WebhookReceiver) -> None:
    hook.script(Reply(301, headers={"Location": f"http://127.0.0.1:{hook.port}/moved"}))
    error = fails(channel(hook.url))
    assert not error.permanent
    assert "/moved" in error.message and "not followed" in error.message
    assert [r.path for r in hook.requests] == ["/hook"]


def test_retry_after_http_date(hook: WebhookReceiver) -> None:
    now = datetime(2024, 5, 7, 10, 0, tzinfo=UTC)
    later = format_datetime(datetime(2024, 5, 7, 10, 2, tzinfo=UTC), usegmt=True)
    hook.script(Reply(429, headers={"Retry-After": later}))
    chan = WebhookChannel(config(hook.url), allow_private=True, clock=now.timestamp)
    assert fails(chan).retry_after == 120.0
    assert hook.requests[0].headers["webhook-timestamp"] == str(int(now.timestamp()))


def test_retry_after_is_capped_like_a_feeds(hook: WebhookReceiver) -> None:
    hook.script(Reply(503, headers={"Retry-After": "99999999999"}))
    assert fails(channel(hook.url)).retry_after == MAX_RETRY_AFTER


def test_hostile_error_body_is_one_bounded_line(hook: WebhookReceiver) -> None:
    hook.script(Reply(400, body=b"bad\r\nX-Injected: 1 " + b"y" * 100_000))
    error = fails(channel(hook.url))
    assert "\n" not in error.message and "\r" not in error.message
    assert len(error.message) < 300


def test_connection_refused_is_transient() -> None:
    receiver = WebhookReceiver().start()
    receiver.stop()
    error = fails(channel(receiver.url))
    assert not error.permanent and "ConnectError" in error.message


def test_timeout_is_transient(hook: WebhookReceiver) -> None:
    hook.script(Reply(hang=True))
    error = fails(channel(hook.url, timeout="300ms"))
    assert not error.permanent and "timed out" in error.message


def test_loopback_refused_without_allow_private(hook: WebhookReceiver) -> None:
    chan = WebhookChannel(config(hook.url), allow_private=False)
    error = fails(chan)
    assert error.permanent and "127.0.0.1" in error.message
    assert hook.requests == []


def test_slack_format(hook: WebhookReceiver) -> None:
    chan = WebhookChannel(config(hook.url, format="slack", secret=[]), allow_private=True)
    chan.send(make_alert(title="<!channel> Missile"))
    [request] = hook.requests
    body = json.loads(request.body)
    assert set(body) == {"text", "blocks"}
    assert "&lt;!channel&gt;" in body["text"]
    assert "webhook-signature" not in request.headers


def test_sends_reuse_one_kept_alive_connection_until_closed() -> None:
    with WebhookReceiver(keep_alive=True) as receiver:
        chan = channel(receiver.url)
        chan.send(make_alert())
        chan.send(make_alert())
        first, second = receiver.wait_for(2)
        assert first.peer == second.peer  # the same TCP connection
        chan.close()
        chan.send(make_alert())
        assert receiver.wait_for(3)[2].peer != first.peer  # closed: a new connection
        chan.close()


def test_mock_transport_unit() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    chan = WebhookChannel(
        config("https://hooks.example.org/x"), transport=httpx.MockTransport(handler)
    )
    chan.send(make_alert())
    assert seen[0].url == "https://hooks.example.org/x"
    Webhook(SECRET).verify(seen[0].content, dict(seen[0].headers))


@pytest.mark.parametrize(
    "bad",
    [
        {"secret": []},  # json must be signed
        {"secret": "not-whsec"},
        {"secret": "whsec_!!notbase64"},
        {"secret": "whsec_" + base64.b64encode(b"short").decode()},
        {"url": "ftp://example.org/x"},
        {"url": "http://example.org/a b"},
        {"format": "xml"},
        {"timeout": "0s"},
        {"extra": 1},
    ],
)
def test_config_rejects(bad: dict[str, Any]) -> None:
    entry = {
        "id": "hook",
        "type": "webhook",
        "url": "https://hooks.example.org/x",
        "secret": SECRET,
    }
    with pytest.raises(ValidationError):
        WebhookConfig.model_validate({**entry, **bad})


def test_config_accepts_one_secret_or_a_list_and_hides_them() -> None:
    one = config("https://hooks.example.org/x", timeout="2s")
    two = config("https://hooks.example.org/x", secret=[SECRET, OLD_SECRET])
    assert len(one.secret) == 1 and len(two.secret) == 2 and one.timeout == 2.0
    assert SECRET not in repr(two) and OLD_SECRET not in repr(two)
