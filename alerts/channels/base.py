"""What every channel is: a config model and one ``send`` method.

DeliveryError          the send failed; ``permanent`` says whether retrying can help
└── ChannelGoneError   the receiver says the endpoint is gone (HTTP 410): disable the channel
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from pydantic import ConfigDict

from alerts.controls import ChannelControls
from alerts.types import Alert, Digest


class DeliveryError(Exception):
    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class ChannelGoneError(DeliveryError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class ChannelConfig(ChannelControls):
    """Fields shared by every channel entry of ``channels.yaml``: its id and type, plus the
    delivery controls (mode/digest, rate_limit, quiet_hours, retry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: str


class Channel(Protocol):
    config_model: ClassVar[type[ChannelConfig]]

    def send(self, alert: Alert) -> None:
        """Deliver one alert or raise DeliveryError."""

    def send_digest(self, digest: Digest) -> None:
        """Deliver several alerts as one message or raise DeliveryError."""
