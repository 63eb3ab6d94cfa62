"""What every channel is: a config model and one ``send`` method.

A failed send raises ``DeliveryError`` (``ChannelGoneError`` for HTTP 410); both live in
``common.errors``, where the whole exception tree is drawn.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Protocol

from pydantic import BeforeValidator, ConfigDict, Field

from alerts.controls import ChannelControls
from alerts.types import Alert, Digest
from common.durations import parse_duration

# A channel's network timeout: a duration ("10s") up to 5 minutes, held as float seconds.
Seconds = Annotated[
    float, BeforeValidator(lambda v: parse_duration(v).total_seconds()), Field(gt=0, le=300)
]


class ChannelConfig(ChannelControls):
    """Fields shared by every channel entry of ``channels.yaml``: its id and type, plus the
    delivery controls (mode/digest, rate_limit, quiet_hours, retry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: str

    def worst_send_seconds(self) -> float:
        """How long one send may take at worst; a deliver worker sizes its batches by it."""
        return 60.0


class Channel(Protocol):
    config_model: ClassVar[type[ChannelConfig]]

    def send(self, alert: Alert) -> None:
        """Deliver one alert or raise DeliveryError."""

    def send_digest(self, digest: Digest) -> None:
        """Deliver several alerts as one message or raise DeliveryError."""


class ChannelType(Protocol):
    """A channel class, as ``CHANNEL_TYPES`` holds it: its config model and its constructor.

    ``config`` is Any here because each class takes its own config model; ``build_channel``
    checks the entry against ``config_model`` before it calls the class.
    """

    @property
    def config_model(self) -> type[ChannelConfig]: ...

    def __call__(self, config: Any, *, allow_private: bool = ...) -> Channel: ...
