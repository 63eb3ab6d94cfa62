"""Email channel: one multipart message per alert, or per digest, over SMTP (``smtplib``, sync,
with a timeout).

The SMTP host is not run through the SSRF guard: it is the admin's own relay, often on
localhost, and no feed can change it.

Reply handling: 4xx is transient, 5xx permanent, an auth failure permanent; a dropped
connection, a timeout or a TLS failure is transient, so a fix to the config (the worker
rebuilds a channel whose entry changed) can still deliver the alert on a later attempt.

Sessions are kept and reused across sends (``smtp_pool``): a reused one the relay dropped
before DATA is replaced once by a new one; after DATA went out a failure is never resent
here, since the relay may hold the message (the outbox retries later, same Message-ID).
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import structlog
from jinja2 import TemplateError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from alerts.channels.base import ChannelConfig, Seconds
from alerts.channels.smtp_pool import (
    SendDeadline,
    SmtpConnection,
    SmtpPool,
    SmtpsConnection,
    discard,
    may_resend,
)
from alerts.render import clean_line, render_email
from alerts.render_digest import render_digest_email
from alerts.types import Alert, Digest
from common.errors import DeliveryError

log = structlog.get_logger(__name__)
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


def addr_spec(mailbox: str) -> str:
    """``alerts@example.org`` out of ``Watchfloor <alerts@example.org>``."""
    address: Address = default_policy.header_factory("to", mailbox).addresses[0]
    return address.addr_spec


def _mailbox(value: str) -> str:
    """Exactly one ``addr@domain`` (display name allowed), parsed by the email package."""
    header = default_policy.header_factory("to", value)
    found = header.addresses
    if header.defects or len(found) != 1 or not (found[0].username and found[0].domain):
        raise ValueError(f"not one valid email address: {value!r}")
    return value.strip()


Mailbox = Annotated[str, BeforeValidator(lambda v: _mailbox(v) if isinstance(v, str) else v)]


class SmtpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)  # default by security: 25/587/465
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    timeout: Seconds = 30.0
    tls_verify: bool = True
    ca_file: str | None = None  # PEM bundle to trust instead of the system store

    @field_validator("username", "password", "ca_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """``${SMTP_USER:-}`` in YAML yields "": treat it as not set."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _credentials_need_tls(self) -> SmtpConfig:
        if self.username and self.security == "none":
            raise ValueError(
                "refusing to send SMTP credentials without TLS: set security to starttls or tls"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise ValueError(f"ca_file not found: {self.ca_file}")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


class EmailConfig(ChannelConfig):
    type: Literal["email"] = "email"
    to: tuple[Mailbox, ...] = Field(min_length=1)
    from_: Mailbox = Field(alias="from")
    smtp: SmtpConfig
    templates_dir: str | None = None
    subject_prefix: str = Field(default="", max_length=50)

    def worst_send_seconds(self) -> float:
        """The whole of one send, at most (``SendDeadline``): twice the per-step timeout,
        room for a fresh session after a stale one."""
        return 2 * self.smtp.timeout

    @field_validator("templates_dir")
    @classmethod
    def _templates_dir_exists(cls, value: str | None) -> str | None:
        if value and not Path(value).is_dir():
            raise ValueError(f"templates_dir is not a directory: {value}")
        return value


def _tls_context(smtp: SmtpConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=smtp.ca_file)
    if not smtp.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reply_text(text: bytes | str) -> str:
    """An SMTP reply as one clean line (smtplib gives bytes; typeshed allows str)."""
    return clean_line(text.decode("utf-8", "replace") if isinstance(text, bytes) else text, 200)


def _reply_error(what: str, code: int, text: bytes | str) -> DeliveryError:
    message = f"SMTP {what} refused: {code} {_reply_text(text)}"
    return DeliveryError(message, permanent=500 <= code < 600)


def _classify(exc: Exception) -> DeliveryError:
    """Map an smtplib/socket exception to a DeliveryError."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = _reply_text(exc.smtp_error)
        return DeliveryError(f"SMTP authentication failed: {exc.smtp_code} {reply}", permanent=True)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        permanent = all(500 <= code < 600 for code, _ in replies)
        return DeliveryError(str(_reply_error("recipients", *replies[0])), permanent=permanent)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_error("server", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"SMTP server lacks a needed extension: {exc}", permanent=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"SMTP TLS certificate not trusted: {exc.verify_message}")
    return DeliveryError(f"SMTP connection failed: {type(exc).__name__}: {exc}")


class EmailChannel:
    config_model: ClassVar[type[ChannelConfig]] = EmailConfig

    def __init__(self, config: EmailConfig, *, allow_private: bool = False, **_: Any) -> None:
        self.config = config
        self._pool = SmtpPool(self._connect, keep=config.concurrency)
        self._deadline = threading.local()  # the send under way on this thread

    def render(self, alert: Alert) -> EmailMessage:
        return self._render(render_email, alert)

    def render_digest(self, digest: Digest) -> EmailMessage:
        return self._render(render_digest_email, digest)

    def send(self, alert: Alert) -> None:
        self._send(self.render(alert))

    def send_digest(self, digest: Digest) -> None:
        self._send(self.render_digest(digest))

    def _render(self, renderer: Callable[..., EmailMessage], value: Alert | Digest) -> EmailMessage:
        try:
            return renderer(
                value,
                sender=self.config.from_,
                to=self.config.to,
                templates_dir=self.config.templates_dir,
                subject_prefix=self.config.subject_prefix,
            )
        except TemplateError as exc:
            raise DeliveryError(f"email template error: {exc}", permanent=True) from exc

    def _send(self, message: EmailMessage) -> None:
        try:
            refused = self._deliver(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from exc
        if refused:  # some recipients got it: retrying would send them a duplicate
            log.warning("smtp refused some recipients", channel=self.config.id, refused=refused)

    def _deliver(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Send on a pooled session; one that went stale while idle is replaced once; all of
        it within the channel's worst send time (``SendDeadline``)."""
        with SendDeadline(self.config.worst_send_seconds()) as deadline:
            self._deadline.current = deadline
            try:
                return self._deliver_by(message, deadline)
            except (smtplib.SMTPException, OSError) as exc:
                if deadline.passed():
                    raise TimeoutError(f"send took longer than {deadline.seconds:g}s") from exc
                raise
            finally:
                self._deadline.current = None

    def _deliver_by(
        self, message: EmailMessage, deadline: SendDeadline
    ) -> dict[str, tuple[int, bytes]]:
        client, reused = self._pool.checkout()
        self._bind(client, deadline)
        try:
            return self._transact(client, message)
        except (smtplib.SMTPException, OSError) as exc:
            if deadline.passed() or not (reused and may_resend(client, exc)):
                raise
            log.info("smtp session gone stale, resending", channel=self.config.id, error=str(exc))
        client = self._pool.connect()
        self._bind(client, deadline)
        return self._transact(client, message)

    def _bind(self, client: SmtpConnection, deadline: SendDeadline) -> None:
        """This send's deadline on a session (a reused one kept an earlier send's)."""
        deadline.watch(client)
        if client.sock is not None:
            client.sock.settimeout(deadline.step_timeout(self.config.smtp.timeout))

    def _transact(
        self, client: SmtpConnection, message: EmailMessage
    ) -> dict[str, tuple[int, bytes]]:
        """One message with an explicit envelope: recipients come from config, never from
        headers. The session goes back to the pool only when the send raised nothing."""
        try:
            refused = client.send_message(
                message,
                from_addr=addr_spec(self.config.from_),
                to_addrs=[addr_spec(a) for a in self.config.to],
            )
        except BaseException:
            discard(client)
            raise
        self._pool.checkin(client)
        return refused

    def close(self) -> None:
        """End the kept sessions (the runtime calls it when the channel is rebuilt)."""
        self._pool.close()

    def _connect(self) -> SmtpConnection:
        """A session ready for MAIL: greeted, STARTTLS and AUTH done as configured, within
        the deadline of the send that opens it."""
        smtp = self.config.smtp
        deadline: SendDeadline | None = getattr(self._deadline, "current", None)
        host, port, timeout = smtp.host, smtp.effective_port, smtp.timeout
        if deadline is not None:
            timeout = deadline.step_timeout(timeout)
        client: SmtpConnection
        if smtp.security == "tls":
            client = SmtpsConnection(host, port, timeout=timeout, context=_tls_context(smtp))
        else:
            client = SmtpConnection(host, port, timeout=timeout)
        try:
            if deadline is not None:
                deadline.watch(client)
            if smtp.security == "starttls":
                client.starttls(context=_tls_context(smtp))
                if deadline is not None:
                    deadline.watch(client)  # the TLS socket replaced the plain one
            client.ehlo_or_helo_if_needed()
            if smtp.username and smtp.password:
                client.login(smtp.username, smtp.password.get_secret_value())
        except BaseException:
            discard(client)
            raise
        return client
