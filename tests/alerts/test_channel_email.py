from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.channels.email import EmailChannel, EmailConfig
from common.errors import DeliveryError
from tests.helpers.alerts import make_alert
from tests.helpers.smtp import SMTPServer

HOSTILE = "Missile\r\nBcc: x@y <script>alert(1)</script>"
pytestmark = pytest.mark.timeout(30)


def config(server: SMTPServer | None = None, **smtp: Any) -> EmailConfig:
    smtp_block: dict[str, Any] = {"host": "127.0.0.1", "security": "none", "timeout": "5s"}
    if server is not None:
        smtp_block["port"] = server.port
    smtp_block.update(smtp)
    return EmailConfig.model_validate(
        {
            "id": "desk-email",
            "type": "email",
            "to": ["desk@example.org", "Duty Officer <duty@example.org>"],
            "from": "Watchfloor <alerts@example.org>",
            "smtp": smtp_block,
        }
    )


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def send(cfg: EmailConfig, **alert: Any) -> None:
    EmailChannel(cfg).send(make_alert(**alert))


def test_delivers_multipart_message_with_envelope_from_config(smtp: SMTPServer) -> None:
    send(config(smtp))
    [received] = smtp.messages
    assert received.mail_from == "alerts@example.org"
    assert received.rcpt_tos == ("desk@example.org", "duty@example.org")
    msg = received.parsed()
    assert msg["Message-ID"] == "<dlv_0f3c2a@watchfloor>"
    assert msg["Subject"] == "[HIGH] Missile tests: Pyongyang fires ballistic missile into the sea"
    assert {p.get_content_type() for p in msg.iter_parts()} == {"text/plain", "text/html"}


def test_hostile_title_injects_no_header_or_recipient(smtp: SMTPServer) -> None:
    send(config(smtp), title=HOSTILE)
    [received] = smtp.messages
    msg = received.parsed()
    assert msg["Bcc"] is None
    assert "x@y" not in received.rcpt_tos
    assert received.rcpt_tos == ("desk@example.org", "duty@example.org")
    assert msg["Subject"] == "[HIGH] Missile tests: Missile Bcc: x@y <script>alert(1)</script>"
    html = msg.get_body(("html",))
    assert html is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.get_content()
    assert "<script>" not in html.get_content()


def test_retry_reuses_message_id(smtp: SMTPServer) -> None:
    channel = EmailChannel(config(smtp))
    channel.send(make_alert())
    channel.send(make_alert())
    ids = {m.parsed()["Message-ID"] for m in smtp.messages}
    assert len(smtp.messages) == 2 and ids == {"<dlv_0f3c2a@watchfloor>"}


def test_starttls_with_auth_and_trusted_ca() -> None:
    with SMTPServer(tls="starttls", auth=("alice", "s3cret")) as server:
        cfg = config(
            server,
            security="starttls",
            username="alice",
            password="s3cret",
            ca_file=str(server.ca_file),
        )
        send(cfg)
        [received] = server.messages
    assert received.authenticated_as == "alice"
    assert received.parsed()["X-Watchfloor-Alert-Id"] == "alr_1"


def test_implicit_tls() -> None:
    with SMTPServer(tls="implicit") as server:
        send(config(server, security="tls", ca_file=str(server.ca_file)))
        assert len(server.messages) == 1


def test_untrusted_certificate_is_refused_as_transient() -> None:
    with SMTPServer(tls="starttls") as server:
        with pytest.raises(DeliveryError) as info:
            send(config(server, security="starttls"))
        assert server.messages == []
    assert not info.value.permanent
    assert "certificate" in info.value.message


def test_tls_verify_false_accepts_any_certificate() -> None:
    with SMTPServer(tls="starttls") as server:
        send(config(server, security="starttls", tls_verify=False))
        assert len(server.messages) == 1


def test_wrong_password_is_permanent() -> None:
    with SMTPServer(tls="starttls", auth=("alice", "s3cret")) as server:
        cfg = config(
            server,
            security="starttls",
            username="alice",
            password="nope",
            ca_file=str(server.ca_file),
        )
        with pytest.raises(DeliveryError) as info:
            send(cfg)
        assert server.messages == [] and server.auth_failures >= 1
    assert info.value.permanent
    assert "authentication failed: 535" in info.value.message


def test_starttls_required_but_not_offered_is_permanent(smtp: SMTPServer) -> None:
    with pytest.raises(DeliveryError) as info:
        send(config(smtp, security="starttls"))
    assert info.value.permanent and smtp.messages == []


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("451 4.3.0 Try again later", False), ("554 5.7.1 Rejected", True)],
)
def test_server_replies_map_to_transient_or_permanent(
    smtp: SMTPServer, stage: Any, reply: str, permanent: bool
) -> None:
    smtp.fail(stage, reply)
    with pytest.raises(DeliveryError) as info:
        send(config(smtp))
    assert info.value.permanent is permanent
    assert reply.split()[0] in info.value.message
    assert smtp.messages == []


def test_transient_failure_then_success(smtp: SMTPServer) -> None:
    smtp.fail("DATA", "452 4.3.1 Insufficient storage", times=1)
    channel = EmailChannel(config(smtp))
    with pytest.raises(DeliveryError):
        channel.send(make_alert())
    channel.send(make_alert())
    assert len(smtp.messages) == 1


def test_connection_refused_is_transient() -> None:
    server = SMTPServer().start()
    server.stop()
    with pytest.raises(DeliveryError) as info:
        send(config(server))
    assert not info.value.permanent
    assert "connection failed" in info.value.message


def test_silent_server_times_out_as_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts TCP, never greets
        port = listener.getsockname()[1]
        with pytest.raises(DeliveryError) as info:
            send(config(port=port, timeout="200ms"))
    assert not info.value.permanent
    assert "timed out" in info.value.message


def test_broken_template_is_permanent(smtp: SMTPServer, tmp_path: Path) -> None:
    (tmp_path / "email.txt").write_text("{{ no_such_variable }}")
    cfg = config(smtp).model_copy(update={"templates_dir": str(tmp_path)})
    with pytest.raises(DeliveryError) as info:
        send(cfg)
    assert info.value.permanent and "template" in info.value.message
    assert smtp.messages == []


def test_config_refuses_credentials_without_tls() -> None:
    with pytest.raises(ValidationError, match="without TLS"):
        config(username="alice", password="pw")


@pytest.mark.parametrize(
    "bad",
    [
        {"to": ["not-an-address"]},
        {"to": ["a@example.org, b@example.org"]},
        {"to": ["a@example.org\r\nBcc: x@y"]},
        {"to": []},
        {"from": "nobody"},
        {"smtp": {"host": "127.0.0.1", "security": "plain"}},
        {"smtp": {"host": "127.0.0.1", "username": "alice"}},
        {"smtp": {"host": "127.0.0.1", "ca_file": "/no/such/ca.pem"}},
        {"templates_dir": "/no/such/dir"},
        {"from_": "alerts@example.org"},
    ],
)
def test_config_rejects(bad: dict[str, Any]) -> None:
    entry = {"id": "e", "type": "email", "to": ["a@example.org"], "from": "w@example.org"}
    entry["smtp"] = {"host": "127.0.0.1"}
    with pytest.raises(ValidationError):
        EmailConfig.model_validate({**entry, **bad})


def test_config_defaults_and_empty_env_values() -> None:
    cfg = EmailConfig.model_validate(
        {
            "id": "e",
            "type": "email",
            "to": ["a@example.org"],
            "from": "w@example.org",
            "smtp": {"host": "mail.example.org", "username": "", "password": "", "timeout": 10},
        }
    )
    assert cfg.from_ == "w@example.org"
    assert cfg.smtp.security == "starttls" and cfg.smtp.effective_port == 587
    assert cfg.smtp.username is None and cfg.smtp.password is None
    assert cfg.smtp.tls_verify is True and cfg.smtp.timeout == 10.0
    secret = config(security="starttls", username="alice", password="s3cret")
    assert "s3cret" not in repr(secret)
