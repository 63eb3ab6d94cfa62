"""The log channel, and the channel registry (``alerts.channels``) it is the default of."""

from __future__ import annotations

import io
from typing import Any

import pytest
import structlog
from pydantic import TypeAdapter, ValidationError
from structlog.testing import capture_logs

from alerts.channels import CHANNEL_TYPES, AnyChannelConfig, build_channel
from alerts.channels.base import ChannelConfig
from alerts.channels.email import EmailChannel, EmailConfig
from alerts.channels.log import LogChannel, LogConfig
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from tests.helpers.alerts import make_alert

HOSTILE = "Missile\r\nfake=entry\u2028<script>"
ENTRIES: list[dict[str, Any]] = [
    {"id": "console", "type": "log"},
    {
        "id": "desk",
        "type": "email",
        "to": ["desk@example.org"],
        "from": "alerts@example.org",
        "smtp": {"host": "mail.example.org"},
    },
    {
        "id": "hook",
        "type": "webhook",
        "url": "https://hooks.example.org/x",
        "secret": "whsec_" + "a" * 32,
    },
]


def test_one_structured_event_per_alert() -> None:
    with capture_logs() as logs:
        LogChannel(LogConfig(id="console")).send(make_alert(title=HOSTILE))
    [entry] = logs
    assert entry["event"] == "alert.created" and entry["log_level"] == "info"
    assert entry["channel"] == "console"
    assert entry["alert_id"] == "alr_1" and entry["delivery_id"] == "dlv_0f3c2a"
    assert entry["watchlist"] == "missile-tests" and entry["severity"] == "high"
    assert entry["title"] == "Missile fake=entry <script>"
    assert entry["url"] == "https://news.example.org/2024/05/07/missile"


def test_rendered_output_is_one_line() -> None:
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out), processors=[structlog.processors.KeyValueRenderer()]
    )
    LogChannel(LogConfig(id="console"), logger=logger).send(make_alert(title=HOSTILE))
    assert out.getvalue().count("\n") == 1
    assert "title='Missile fake=entry <script>'" in out.getvalue()


def test_registry_maps_types_to_channels() -> None:
    from alerts.channels.chat import AppriseChannel

    assert {
        "email": EmailChannel,
        "webhook": WebhookChannel,
        "log": LogChannel,
        "apprise": AppriseChannel,
    } == CHANNEL_TYPES


def test_union_validates_each_type_and_builds_it() -> None:
    configs = TypeAdapter(list[AnyChannelConfig]).validate_python(ENTRIES)
    assert [type(c) for c in configs] == [LogConfig, EmailConfig, WebhookConfig]
    built = [build_channel(c) for c in configs]
    assert [type(c) for c in built] == [LogChannel, EmailChannel, WebhookChannel]
    assert built[2].allow_private is False
    assert build_channel(configs[2], allow_private=True).allow_private is True


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "x", "type": "pager"},
        {"id": "x"},
        {"id": "x", "type": "log", "url": "https://example.org"},
    ],
)
def test_union_rejects(entry: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(AnyChannelConfig).validate_python(entry)


def test_build_refuses_a_bare_or_unknown_config() -> None:
    with pytest.raises(ValueError, match="unknown channel type 'pager'"):
        build_channel(ChannelConfig(id="x", type="pager"))
    with pytest.raises(TypeError):
        build_channel(ChannelConfig(id="x", type="email"))
