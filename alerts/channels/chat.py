"""Chat channels through Apprise (Slack, Microsoft Teams, Telegram, Matrix, Discord,
Mattermost and the rest of its schemes), with the outbox's guarantees like every channel.

    - id: desk-slack
      type: apprise
      url: ${SLACK_APPRISE_URL}      # e.g. slack://T000/B000/XXXX: a secret, from the env
      format: markdown               # markdown (default), html or text

Apprise says only whether a send worked, so every failure is transient: the outbox retries
it with backoff until the schedule runs out, then it is dead (``watchfloor deliveries``).
The URL is a secret (tokens sit in it): it is never logged, and an error names the scheme
only. Schemes that reach an address we name (``json://``, ``form://``, ``xml://`` and their
``s`` forms) go through the SSRF check first, and carry the delivery id as the
``X-Watchfloor-Delivery`` header, the same on every retry; elsewhere the id is the
message's ``ref`` line. The message text is ours (alerts/render_chat.py), with feed text
escaped for the target's markup.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import apprise
from pydantic import SecretStr, field_validator

from alerts.channels.base import ChannelConfig, Seconds
from alerts.render import clean_line
from alerts.render_chat import Markup, chat_body, chat_title, digest_body, digest_title
from alerts.types import Alert, Digest
from common.errors import DeliveryError, FetchError
from common.guard import check_url

ADDRESSED = {"json": "http", "jsons": "https", "form": "http", "forms": "https",
             "xml": "http", "xmls": "https"}  # fmt: skip
ID_HEADER = "X-Watchfloor-Delivery"
_FORMATS = {"markdown": apprise.NotifyFormat.MARKDOWN, "html": apprise.NotifyFormat.HTML,
            "text": apprise.NotifyFormat.TEXT}  # fmt: skip
# Apprise's own lines stay out of our logs (its debug lines quote the URL); its warnings are
# captured per call (``result.logs()``) and become the delivery's error, secrets removed.
_APPRISE_LOG = logging.getLogger("apprise")
_APPRISE_LOG.propagate = False
_APPRISE_LOG.setLevel(logging.WARNING)


def scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


class AppriseConfig(ChannelConfig):
    type: Literal["apprise"] = "apprise"
    url: SecretStr
    format: Literal["markdown", "html", "text"] = "markdown"
    timeout: Seconds = 10.0

    def worst_send_seconds(self) -> float:
        return self.timeout

    @field_validator("url")
    @classmethod
    def _known(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if apprise.Apprise.instantiate(url) is None:  # the message names the scheme only
            raise ValueError(f"not an Apprise URL Apprise knows (scheme {scheme(url)[:20]!r})")
        return value


class AppriseChannel:
    config_model: ClassVar[type[ChannelConfig]] = AppriseConfig

    def __init__(self, config: AppriseConfig, *, allow_private: bool = False, **_: Any) -> None:
        self.config = config
        self.allow_private = allow_private
        self.markup: Markup = config.format

    def send(self, alert: Alert) -> None:
        markup = self.markup
        self._notify(alert.delivery_id, chat_title(alert, markup), chat_body(alert, markup))

    def send_digest(self, digest: Digest) -> None:
        markup = self.markup
        self._notify(digest.digest_id, digest_title(digest, markup), digest_body(digest, markup))

    def target(self, delivery_id: str) -> str:
        """The URL to notify: for an addressed scheme, checked, with the delivery id."""
        url = self.config.url.get_secret_value()
        kind = scheme(url)
        if kind not in ADDRESSED:
            return url
        parts = urlsplit(url)
        try:
            check_url(f"{ADDRESSED[kind]}://{parts.netloc}/", allow_private=self.allow_private)
        except FetchError as exc:  # BlockedURLError among them: refused for good
            message = f"apprise {kind}:// url refused: {exc.message}"
            raise DeliveryError(message, permanent=True) from None
        joiner = "&" if parts.query else "?"
        return f"{url}{joiner}+{ID_HEADER}={delivery_id}"

    def _notify(self, delivery_id: str, title: str, body: str) -> None:
        kind = scheme(self.config.url.get_secret_value())
        notifier = apprise.Apprise()
        if not notifier.add(self.target(delivery_id)):
            raise DeliveryError(f"apprise {kind}:// url not accepted", permanent=True)
        result = notifier.notify(
            body=body,
            title=title,
            body_format=_FORMATS[self.markup],
            timeout=self.config.timeout,
            log_level=logging.WARNING,
        )
        if result:
            return
        raise DeliveryError(f"apprise {kind}:// failed: {self._reason(result)}")

    def _reason(self, result: Any) -> str:
        """What Apprise said, at warning level and up, without the URL or its secrets."""
        secret = self.config.url.get_secret_value()
        lines = [
            entry.message
            for entry in result.logs()
            if entry.level in ("WARNING", "ERROR", "CRITICAL")
        ]
        text = clean_line(" ".join(lines[-3:]) or str(getattr(result.status, "name", "")), 300)
        parts = urlsplit(secret)
        for part in {secret, *parts.netloc.split("@"), *parts.path.split("/")}:
            if len(part) >= 6:
                text = text.replace(part, "***")
        return text or "no reason given"
