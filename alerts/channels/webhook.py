"""Webhook channel: POST the alert (or a digest of alerts) as JSON, signed per Standard Webhooks,
through the SSRF guard.

Answers from the receiver:
    2xx          delivered
    3xx          failure, transient: redirects are never followed (the Location could be a
                 private address); retrying leaves time to fix the URL in channels.yaml
    408, 429     transient, ``retry_after`` from Retry-After
    410          ChannelGoneError: the worker disables the channel
    other 4xx    permanent
    5xx          transient, ``retry_after`` from Retry-After when given
    no answer    (timeout, refused, TLS failure) transient; a blocked address is permanent
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from alerts.channels.base import ChannelConfig, Seconds
from alerts.render import clean_line, slack_payload, webhook_payload
from alerts.render_digest import digest_payload, slack_digest_payload
from alerts.types import Alert, Digest
from common.errors import ChannelGoneError, DeliveryError, FetchError
from common.guard import deadline_scope, guarded_transport, unwrap_blocked
from common.http import parse_retry_after

SECRET_PREFIX = "whsec_"
SECRET_MIN_BYTES = 16
ERROR_BODY_MAX = 4096  # bytes of a failure response kept for the error message
USER_AGENT = "Watchfloor-Webhooks/1"
DRAIN_MAX = 65536  # bytes of a success's body read so its connection can be reused
KEEPALIVE = 30.0  # seconds an idle connection to a receiver stays open for the next send
_NEW_SECRET = (
    "whsec_$(python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')"
)


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(
            f"a webhook secret starts with {SECRET_PREFIX!r}; make one with {_NEW_SECRET}"
        )
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the part after {SECRET_PREFIX!r} is not valid base64") from exc
    if len(key) < SECRET_MIN_BYTES:
        raise ValueError(f"a webhook secret needs at least {SECRET_MIN_BYTES} random bytes")
    return key


def _secrets(value: object) -> object:
    return [value] if isinstance(value, str | SecretStr) else value


class WebhookConfig(ChannelConfig):
    type: Literal["webhook"] = "webhook"
    url: str = Field(pattern=r"^(?i:https?)://[^\s]+$")
    # one secret, or several while rotating: every request carries a signature per secret
    secret: Annotated[tuple[SecretStr, ...], BeforeValidator(_secrets)] = ()
    format: Literal["json", "slack"] = "json"
    timeout: Seconds = 10.0

    def worst_send_seconds(self) -> float:
        return self.timeout

    @field_validator("secret")
    @classmethod
    def _secrets_valid(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for secret in value:
            secret_key(secret.get_secret_value())
        return value

    @model_validator(mode="after")
    def _json_is_signed(self) -> WebhookConfig:
        if self.format == "json" and not self.secret:
            raise ValueError(f"a json webhook must be signed: set secret (e.g. {_NEW_SECRET})")
        return self


def sign(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks ``webhook-signature``: ``v1,<base64>`` per key, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    macs = (hmac.new(key, signed, hashlib.sha256).digest() for key in keys)
    return " ".join(f"v1,{base64.b64encode(mac).decode()}" for mac in macs)


def status_error(status: int, hint: float | None, location: str, body: str) -> DeliveryError:
    """The DeliveryError for a non-2xx answer (see the table at the top)."""
    detail = f"webhook answered HTTP {status}" + (f": {body}" if body else "")
    if status == 410:
        return ChannelGoneError(detail)
    if 300 <= status < 400:
        target = clean_line(location, 200) or "(no Location)"
        return DeliveryError(
            f"webhook answered HTTP {status} to {target}: redirects are not "
            "followed, update the channel url"
        )
    if status in (408, 429) or status >= 500:
        return DeliveryError(detail, retry_after=hint)
    return DeliveryError(detail, permanent=400 <= status < 500)


def _classify(exc: Exception, timeout: float) -> DeliveryError:
    """Map a failure to get any answer to a DeliveryError."""
    if blocked := unwrap_blocked(exc):
        return DeliveryError(f"webhook url refused: {blocked.message}", permanent=True)
    if isinstance(exc, httpx.TimeoutException):
        return DeliveryError(f"webhook timed out after {timeout:g}s")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return DeliveryError(f"webhook url invalid: {exc}", permanent=True)
    return DeliveryError(f"webhook failed: {type(exc).__name__}: {exc}")


def _drain(resp: httpx.Response) -> None:
    """Read a success's body, up to a cap, so its connection can carry the next send (one
    with a longer body is closed instead)."""
    if resp.is_stream_consumed:  # a body given whole (httpx.MockTransport in unit tests)
        return
    read = 0
    for part in resp.iter_raw():
        read += len(part)
        if read > DRAIN_MAX:
            return


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookChannel:
    config_model: ClassVar[type[ChannelConfig]] = WebhookConfig

    def __init__(
        self,
        config: WebhookConfig,
        *,
        allow_private: bool = False,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        **_: Any,
    ) -> None:
        """``transport`` replaces the guarded one in unit tests only (e.g. httpx.MockTransport)."""
        self.config = config
        self.allow_private = allow_private
        self._transport = transport
        self._clock = clock
        self._keys = [secret_key(s.get_secret_value()) for s in config.secret]
        self._lock = threading.Lock()
        self._http: tuple[int, httpx.Client] | None = None  # (pid, client): never across a fork

    def body(self, alert: Alert) -> bytes:
        payload = slack_payload(alert) if self.config.format == "slack" else webhook_payload(alert)
        return _json(payload)

    def digest_body(self, digest: Digest) -> bytes:
        slack = self.config.format == "slack"
        return _json(slack_digest_payload(digest) if slack else digest_payload(digest))

    def headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        """Standard Webhooks headers; ``msg_id`` is the delivery or digest id."""
        timestamp = int(self._clock())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._keys:
            headers["webhook-signature"] = sign(self._keys, msg_id, timestamp, body)
        return headers

    def send(self, alert: Alert) -> None:
        self._send(alert.delivery_id, self.body(alert))

    def send_digest(self, digest: Digest) -> None:
        self._send(digest.digest_id, self.digest_body(digest))

    def _send(self, msg_id: str, body: bytes) -> None:
        try:
            with deadline_scope(self.config.timeout):  # total, not per socket operation
                self._post(body, self.headers(msg_id, body))
        except (httpx.HTTPError, OSError, FetchError) as exc:
            raise _classify(exc, self.config.timeout) from exc

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        with self._client().stream("POST", self.config.url, content=body, headers=headers) as resp:
            if resp.is_success:
                _drain(resp)
                return
            raise self._failure(resp)

    def _client(self) -> httpx.Client:
        """One client per channel and process, shared by its sending threads: connections
        to the receiver are kept alive and reused. Each was checked by the address guard
        when it connected; a forked child opens its own."""
        with self._lock:
            if self._http is None or self._http[0] != os.getpid():
                transport = self._transport or guarded_transport(allow_private=self.allow_private)
                client = httpx.Client(
                    transport=transport,
                    timeout=self.config.timeout,
                    follow_redirects=False,
                    trust_env=False,
                    limits=httpx.Limits(max_connections=None, keepalive_expiry=KEEPALIVE),
                )
                self._http = (os.getpid(), client)
            return self._http[1]

    def close(self) -> None:
        """Close kept-alive connections (the runtime calls it when the channel is rebuilt)."""
        with self._lock:
            if self._http is not None and self._http[0] == os.getpid():
                self._http[1].close()
            self._http = None

    def _failure(self, resp: httpx.Response) -> DeliveryError:
        chunk = b""
        for part in resp.iter_bytes():
            chunk += part
            if len(chunk) >= ERROR_BODY_MAX:
                break
        text = clean_line(chunk[:ERROR_BODY_MAX].decode("utf-8", "replace"), 200)
        now = datetime.fromtimestamp(self._clock(), UTC)
        hint = parse_retry_after(resp.headers.get("retry-after"), now)
        return status_error(resp.status_code, hint, resp.headers.get("location", ""), text)
