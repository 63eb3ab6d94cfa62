from __future__ import annotations

import argparse
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.helpers.configdir import write_config
from tests.helpers.http import Reply, WebhookReceiver
from tests.helpers.smtp import SMTPServer
from worker.commands import send_test

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
pytestmark = pytest.mark.timeout(30)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    send_test.register(parser.add_subparsers())
    args = parser.parse_args(["send-test", *argv])
    return args.func(args)


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def channels_dir(tmp_path: Path, *extra: dict[str, Any]) -> Path:
    return write_config(tmp_path / "config", channels=[{"id": "console", "type": "log"}, *extra])


def webhook_entry(url: str, secret: str = SECRET) -> dict[str, Any]:
    return {"id": "hook", "type": "webhook", "url": url, "secret": secret}


def test_sends_signed_webhook(
    tmp_path: Path, hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("WATCHFLOOR_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    config_dir = channels_dir(tmp_path, webhook_entry(hook.url, "${HOOK_SECRET}"))
    assert cli("hook", "--config-dir", str(config_dir)) == 0
    assert capsys.readouterr().out == "ok: sent test alert via hook\n"
    [request] = hook.requests
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "alert.created.v1"
    assert payload["data"]["item"]["title"] == "Watchfloor test alert"
    assert payload["data"]["matches"][0]["term"] == "test alert"


def test_private_url_refused_without_the_setting(
    tmp_path: Path, hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("WATCHFLOOR_ALLOW_PRIVATE_URLS", raising=False)
    monkeypatch.setenv(
        "WATCHFLOOR_CONFIG_DIR", str(channels_dir(tmp_path, webhook_entry(hook.url)))
    )
    assert cli("hook") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: webhook url refused") and "(permanent)" in err
    assert hook.requests == []


def test_reports_a_failing_receiver(
    tmp_path: Path, hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("WATCHFLOOR_ALLOW_PRIVATE_URLS", "true")
    hook.script(Reply(503, body=b"maintenance"))
    assert cli("hook", "--config-dir", str(channels_dir(tmp_path, webhook_entry(hook.url)))) == 1
    assert "error: webhook answered HTTP 503: maintenance (transient)" in capsys.readouterr().err


def test_sends_email(tmp_path: Path, capsys: Any) -> None:
    with SMTPServer() as smtp:
        entry = {
            "id": "desk",
            "type": "email",
            "to": ["desk@example.org"],
            "from": "alerts@example.org",
            "smtp": {"host": smtp.host, "port": smtp.port, "security": "none"},
        }
        assert cli("desk", "--config-dir", str(channels_dir(tmp_path, entry))) == 0
        [received] = smtp.messages
    msg = received.parsed()
    assert msg["Subject"] == "[LOW] Channel test: Watchfloor test alert"
    assert msg["Message-ID"].startswith("<test-")
    assert capsys.readouterr().out == "ok: sent test alert via desk\n"


def test_unknown_channel(tmp_path: Path, capsys: Any) -> None:
    assert cli("nope", "--config-dir", str(channels_dir(tmp_path))) == 1
    assert "error: unknown channel 'nope' (channels.yaml has: console)" in capsys.readouterr().err


def test_invalid_config_names_file_and_line(tmp_path: Path, capsys: Any) -> None:
    config_dir = channels_dir(tmp_path, {"id": "hook", "type": "webhook", "url": "ftp://x"})
    assert cli("hook", "--config-dir", str(config_dir)) == 1
    err = capsys.readouterr().err
    assert "channels.yaml:" in err and "url" in err
    assert err.rstrip().splitlines()[-1].startswith("error: ")
