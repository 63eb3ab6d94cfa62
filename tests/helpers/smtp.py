"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it accepts.

    with SMTPServer() as smtp:                      # plain, any port
        ...send to smtp.host, smtp.port...
        msg = smtp.messages[0].parsed()              # EmailMessage, default policy

    with SMTPServer(tls="starttls", auth=("user", "pw")) as smtp:
        ...trust smtp.ca_file (a PEM file made for this server at start)...

    smtp.fail("RCPT", "550 5.1.1 No such user")      # answer this at a stage from now on
    smtp.fail("DATA", "451 4.3.0 Try later", times=2)  # twice, then accept again
    smtp.drop("DATA")             # keep the next message but hang up instead of answering
    smtp.connections              # client connections that said EHLO/HELO so far
    smtp.restart()                # stop and listen again on the same port: sessions end

    SMTPServer(idle_timeout=0.3)  # hang up on a client silent that long (aiosmtpd's timeout)

Certificates come from ``trustme``: a throwaway CA, and a leaf for 127.0.0.1 and localhost.
"""

from __future__ import annotations

import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Literal

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

Stage = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the raw bytes as sent, and the SMTP envelope."""

    raw: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]
    authenticated_as: str | None = None
    peer: tuple[str, int] | None = None  # the client's address: one per connection

    def parsed(self) -> EmailMessage:
        msg = message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class _Failure:
    reply: str | None  # None: hang up without answering
    times: int | None  # None: until cleared


@dataclass
class _Handler:
    server: SMTPServer
    failures: dict[str, _Failure] = field(default_factory=dict)

    def _scripted(self, stage: Stage) -> _Failure | None:
        with self.server.lock:
            failure = self.failures.get(stage)
            if failure is None:
                return None
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self.failures[stage]
            return failure

    def _answer(self, server: Any, failure: _Failure) -> str:
        """The scripted reply, or a hang-up (what is returned then never reaches the client)."""
        if failure.reply is None:
            server.transport.close()
            return "421 4.4.2 hung up"
        return failure.reply

    def _greeted(self, session: Any) -> None:
        with self.server.lock:
            self.server.peers.add(session.peer)

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        self._greeted(session)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self._greeted(session)
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if failure := self._scripted("MAIL"):
            return self._answer(server, failure)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if failure := self._scripted("RCPT"):
            return self._answer(server, failure)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        failure = self._scripted("DATA")
        if failure and failure.reply is not None:
            return failure.reply
        user = session.auth_data.login.decode() if session.authenticated else None
        received = ReceivedMessage(
            raw=envelope.original_content or envelope.content,
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            authenticated_as=user,
            peer=session.peer,
        )
        with self.server.lock:
            self.server.messages.append(received)
            self.server.received.notify_all()
        if failure:  # kept, but the client never hears so: it cannot tell it went through
            return self._answer(server, failure)
        return "250 Message accepted"


class _AnyPortController(Controller):
    """Controller that may bind port 0 and then knows the port the OS picked."""

    def _create_server(self) -> Any:
        create = super()._create_server()

        async def bound() -> Any:
            server = await create
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bound()


class SMTPServer:
    """Real SMTP on 127.0.0.1. ``tls``: None (plain), "starttls" or "implicit" (SMTPS).

    ``auth=(user, password)`` requires AUTH (offered only after TLS, as real servers do).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        tls: Literal["starttls", "implicit"] | None = None,
        auth: tuple[str, str] | None = None,
        port: int = 0,
        idle_timeout: float | None = None,
    ) -> None:
        if auth and not tls:
            raise ValueError("AUTH needs TLS on this test server (as on a real one)")
        self.tls = tls
        self.auth = auth
        self.idle_timeout = idle_timeout
        self.messages: list[ReceivedMessage] = []
        self.peers: set[tuple[str, int]] = set()
        self.auth_failures = 0
        self.lock = threading.Lock()
        self.received = threading.Condition(self.lock)
        self._handler = _Handler(self)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file: Path | None = None
        self._controller = self._make_controller(port)
        self._running = False

    def _make_controller(self, port: int) -> Controller:
        kwargs: dict[str, Any] = {"hostname": self.host, "port": port}
        if self.tls:
            context = self._server_tls()
            kwargs["ssl_context" if self.tls == "implicit" else "tls_context"] = context
            kwargs["server_hostname"] = "localhost"
        if self.auth:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        if self.idle_timeout is not None:
            kwargs["timeout"] = self.idle_timeout
        return _AnyPortController(self._handler, **kwargs)

    def _server_tls(self) -> ssl.SSLContext:
        ca = trustme.CA()
        self._tmp = tempfile.TemporaryDirectory(prefix="wf-smtp-")
        self.ca_file = Path(self._tmp.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.auth
        )
        if not ok:
            with self.lock:
                self.auth_failures += 1
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    @property
    def port(self) -> int:
        return self._controller.port

    def fail(self, stage: Stage, reply: str, *, times: int | None = None) -> None:
        """Answer ``reply`` (e.g. "451 4.3.0 Try later") at ``stage``; ``times`` then accept."""
        with self.lock:
            self._handler.failures[stage] = _Failure(reply, times)

    def drop(self, stage: Stage, *, times: int = 1) -> None:
        """Hang up at ``stage`` instead of answering; at DATA the message is kept first."""
        with self.lock:
            self._handler.failures[stage] = _Failure(None, times)

    @property
    def connections(self) -> int:
        """Client connections so far (each greets once with EHLO or HELO, twice with
        STARTTLS, from one address)."""
        with self.lock:
            return len(self.peers)

    def clear_failures(self) -> None:
        with self.lock:
            self._handler.failures.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until ``count`` messages arrived or ``timeout`` passed; returns what is there."""
        with self.received:
            self.received.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def start(self) -> SMTPServer:
        self._controller.start()
        self._running = True
        return self

    def restart(self) -> None:
        """Stop, then listen again on the same port: every open session is cut (plain
        servers only: a TLS one would come back with a new CA)."""
        assert self.tls is None and self._running
        port = self.port
        self._controller.stop()
        self._controller = self._make_controller(port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening: later connections are refused. Idempotent."""
        if self._running:
            self._controller.stop()
            self._running = False
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
