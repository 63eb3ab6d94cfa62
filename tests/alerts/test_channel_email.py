from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.channels.email import EmailChannel, EmailConfig
from alerts.channels.smtp_pool import IDLE_MAX, SmtpPool
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


def starttls_login(server: SMTPServer, password: str = "s3cret") -> EmailConfig:
    """STARTTLS with the test server's CA, logging in as alice."""
    return config(
        server,
        security="starttls",
        username="alice",
        password=password,
        ca_file=str(server.ca_file),
    )


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def send(cfg: EmailConfig, **alert: Any) -> None:
    with closing(EmailChannel(cfg)) as channel:
        channel.send(make_alert(**alert))


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
    with closing(EmailChannel(config(smtp))) as channel:
        channel.send(make_alert())
        channel.send(make_alert())
    ids = {m.parsed()["Message-ID"] for m in smtp.messages}
    assert len(smtp.messages) == 2 and ids == {"<dlv_0f3c2a@watchfloor>"}


def test_starttls_with_auth_and_trusted_ca() -> None:
    with SMTPServer(tls="starttls", auth=("alice", "s3cret")) as server:
        cfg = starttls_login(server)
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
        cfg = starttls_login(server, password="nope")
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
    with closing(EmailChannel(config(smtp))) as channel:
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


# --- kept sessions (alerts/channels/smtp_pool.py) ------------------------------------------


def message_ids(server: SMTPServer) -> list[str]:
    return [m.parsed()["Message-ID"] for m in server.messages]


def test_sends_share_one_session_until_the_channel_is_closed(smtp: SMTPServer) -> None:
    channel = EmailChannel(config(smtp))
    for n in range(3):
        channel.send(make_alert(delivery_id=f"dlv_{n}"))
    assert smtp.connections == 1 and len({m.peer for m in smtp.messages}) == 1
    channel.close()  # as the runtime does when the channel's entry changes
    with closing(channel):
        channel.send(make_alert(delivery_id="dlv_3"))
    assert smtp.connections == 2  # a closed channel's session is not reused
    assert message_ids(smtp) == [f"<dlv_{n}@watchfloor>" for n in range(4)]


def test_concurrent_sends_use_at_most_one_session_each(smtp: SMTPServer) -> None:
    ids = [f"dlv_{n}" for n in range(24)]
    with closing(EmailChannel(config(smtp, timeout="5s"))) as channel:
        assert channel.config.concurrency == 4
        with ThreadPoolExecutor(4) as threads:
            list(threads.map(lambda i: channel.send(make_alert(delivery_id=i)), ids))
    assert sorted(message_ids(smtp)) == sorted(f"<{i}@watchfloor>" for i in ids)  # each once
    assert 1 <= smtp.connections <= 4


def test_a_session_the_server_dropped_while_idle_is_replaced_and_the_message_sent_once() -> None:
    with SMTPServer(idle_timeout=0.3) as server, closing(EmailChannel(config(server))) as channel:
        channel.send(make_alert(delivery_id="dlv_a"))
        time.sleep(0.8)  # the server hangs up on the idle session; the channel still holds it
        channel.send(make_alert(delivery_id="dlv_b"))
    assert message_ids(server) == ["<dlv_a@watchfloor>", "<dlv_b@watchfloor>"]
    assert server.connections == 2


def test_a_hang_up_at_mail_on_a_kept_session_is_resent_once_on_a_new_one(smtp: SMTPServer) -> None:
    with closing(EmailChannel(config(smtp))) as channel:
        channel.send(make_alert(delivery_id="dlv_a"))
        smtp.drop("MAIL")
        channel.send(make_alert(delivery_id="dlv_b"))
        assert message_ids(smtp) == ["<dlv_a@watchfloor>", "<dlv_b@watchfloor>"]
        assert smtp.connections == 2
        smtp.drop("MAIL", times=2)  # the new session fails too: no third try
        with pytest.raises(DeliveryError) as info:
            channel.send(make_alert(delivery_id="dlv_c"))
    assert not info.value.permanent and "connection failed" in info.value.message
    assert smtp.connections == 3 and len(smtp.messages) == 2  # the kept one and one new


def test_a_hang_up_after_data_is_never_resent_by_the_same_send(smtp: SMTPServer) -> None:
    with closing(EmailChannel(config(smtp))) as channel:
        channel.send(make_alert(delivery_id="dlv_a"))
        smtp.drop("DATA")  # the server keeps dlv_b, but its answer never arrives
        with pytest.raises(DeliveryError) as info:
            channel.send(make_alert(delivery_id="dlv_b"))
        assert not info.value.permanent  # the outbox retries it later
        assert message_ids(smtp) == ["<dlv_a@watchfloor>", "<dlv_b@watchfloor>"]
        assert smtp.connections == 1  # no second session for a resend
        channel.send(make_alert(delivery_id="dlv_b"))  # the outbox's retry: the same id
    assert message_ids(smtp).count("<dlv_b@watchfloor>") == 2


def test_a_refusal_on_a_kept_session_is_not_resent(smtp: SMTPServer) -> None:
    with closing(EmailChannel(config(smtp))) as channel:
        channel.send(make_alert(delivery_id="dlv_a"))
        smtp.fail("MAIL", "451 4.3.0 Try again later", times=1)
        with pytest.raises(DeliveryError):
            channel.send(make_alert(delivery_id="dlv_b"))
        channel.send(make_alert(delivery_id="dlv_c"))
    assert message_ids(smtp) == ["<dlv_a@watchfloor>", "<dlv_c@watchfloor>"]
    assert smtp.connections == 2  # the refused session was discarded, not reused


def test_a_forked_child_opens_its_own_session(smtp: SMTPServer) -> None:
    with closing(EmailChannel(config(smtp))) as channel:
        channel.send(make_alert(delivery_id="dlv_parent"))
        child = os.fork()
        if child == 0:  # never share the parent's session, never QUIT it
            try:
                channel.send(make_alert(delivery_id="dlv_child"))
            finally:
                os._exit(0)
        assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
        channel.send(make_alert(delivery_id="dlv_parent_again"))  # its own session still works
    by_id = {m.parsed()["Message-ID"]: m.peer for m in smtp.messages}
    assert by_id["<dlv_parent@watchfloor>"] == by_id["<dlv_parent_again@watchfloor>"]
    assert by_id["<dlv_child@watchfloor>"] != by_id["<dlv_parent@watchfloor>"]


def test_idle_sessions_are_closed_after_idle_max(smtp: SMTPServer) -> None:
    now = [0.0]
    channel = EmailChannel(config(smtp))
    pool = SmtpPool(channel._connect, keep=2, clock=lambda: now[0])
    first, reused = pool.checkout()
    assert not reused
    pool.checkin(first)
    now[0] += IDLE_MAX - 1
    again, reused = pool.checkout()
    assert reused and again is first
    pool.checkin(again)
    now[0] += IDLE_MAX
    fresh, reused = pool.checkout()
    assert not reused and fresh is not first and first.sock is None  # QUIT and closed
    pool.checkin(fresh)
    pool.close()
    assert fresh.sock is None and smtp.connections == 2


def test_a_421_at_mail_on_a_kept_session_is_resent_once_on_a_new_one(smtp: SMTPServer) -> None:
    with closing(EmailChannel(config(smtp))) as channel:
        channel.send(make_alert(delivery_id="dlv_a"))
        smtp.fail("MAIL", "421 4.4.2 Idle too long, closing", times=1)
        channel.send(make_alert(delivery_id="dlv_b"))
    assert message_ids(smtp) == ["<dlv_a@watchfloor>", "<dlv_b@watchfloor>"]
    assert smtp.connections == 2


def test_one_starttls_and_login_serve_several_sends() -> None:
    with SMTPServer(tls="starttls", auth=("alice", "s3cret")) as server:
        cfg = starttls_login(server)
        with closing(EmailChannel(cfg)) as channel:
            for n in range(3):
                channel.send(make_alert(delivery_id=f"dlv_{n}"))
        assert [m.authenticated_as for m in server.messages] == ["alice"] * 3
        assert server.connections == 1


class SlowRelay:
    """A live relay that answers every command just inside the client's per-step timeout
    (a tarpit, an overloaded relay): no step times out, yet each takes ``delay``."""

    def __init__(self, delay: float) -> None:
        import threading

        self.delay, self.messages = delay, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        self.sock.close()
        stream = conn.makefile("rb")

        def reply(line: str) -> None:
            time.sleep(self.delay)
            conn.sendall(line.encode() + b"\r\n")

        try:
            reply("220 slow ESMTP")
            in_data = False
            for raw in stream:
                line = raw.decode().rstrip("\r\n")
                if in_data:
                    if line == ".":
                        in_data, self.messages = False, self.messages + 1
                        reply("250 queued")
                    continue
                verb = line.split(" ")[0].upper()
                reply({"EHLO": "250 slow", "DATA": "354 go", "QUIT": "221 bye"}.get(verb, "250 ok"))
                in_data = verb == "DATA"
        except OSError:
            pass  # the client gave up
        finally:
            stream.close()
            conn.close()


def test_one_send_has_a_total_deadline_not_only_one_per_step() -> None:
    """smtplib's timeout bounds each socket step; a send takes a dozen. A relay answering
    each step in half of a 1 s timeout would hold one send for ~3.5 s (with the defaults,
    30 s steps: past the 300 s delivery lease, so another worker sent it again). The send
    now ends at twice the step timeout, as a transient failure the outbox retries. (Half
    the timeout, not just under it: a loaded machine must not make a step time out first.)"""
    relay = SlowRelay(0.5)
    slow = config(port=relay.port, timeout="1s")
    assert slow.worst_send_seconds() == 2.0  # what a deliver batch plans a send for
    with closing(EmailChannel(slow)) as channel, pytest.raises(DeliveryError) as err:
        channel.send(make_alert())
    assert not err.value.permanent and "send took longer than 2s" in err.value.message
    assert relay.messages == 0  # the relay needs 7 steps (3.5 s) to take a message


@pytest.mark.xfail(
    strict=True,
    reason="known bug (commit 00088e4): a recipient refused for now at RCPT, beside one that "
    "took the message, is not retried; the fix needs the owed recipients kept with the delivery",
)
def test_a_recipient_refused_for_now_gets_the_alert_later() -> None:
    """A temporary 4xx at RCPT for one recipient while another takes the message: today the
    send counts as done (a warning is logged) and the refused recipient never gets it."""
    with SMTPServer() as smtp:
        smtp.fail("RCPT", "450 4.2.1 Mailbox busy, try later", times=1)
        with closing(EmailChannel(config(smtp))) as channel:
            try:
                channel.send(make_alert())
            except DeliveryError:
                channel.send(make_alert())  # the outbox's retry, same Message-ID
        got = {r for m in smtp.messages for r in m.rcpt_tos}
        assert got == {"desk@example.org", "duty@example.org"}, got
