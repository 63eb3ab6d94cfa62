"""Channel types by name, the config union that validates ``channels.yaml``, and a builder."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from alerts.channels.base import Channel, ChannelConfig, ChannelType
from alerts.channels.chat import AppriseChannel, AppriseConfig
from alerts.channels.email import EmailChannel, EmailConfig
from alerts.channels.log import LogChannel, LogConfig
from alerts.channels.webhook import WebhookChannel, WebhookConfig

CHANNEL_TYPES: dict[str, ChannelType] = {
    "email": EmailChannel,
    "webhook": WebhookChannel,
    "log": LogChannel,
    "apprise": AppriseChannel,
}

AnyChannelConfig = Annotated[
    EmailConfig | WebhookConfig | LogConfig | AppriseConfig, Field(discriminator="type")
]


def build_channel(config: ChannelConfig, *, allow_private: bool = False) -> Channel:
    """A ready channel for a validated config entry (an ``AnyChannelConfig`` member)."""
    cls = CHANNEL_TYPES.get(config.type)
    if cls is None:
        raise ValueError(
            f"unknown channel type {config.type!r} (known: {', '.join(CHANNEL_TYPES)})"
        )
    if not isinstance(config, cls.config_model):
        raise TypeError(f"channel {config.id!r}: expected {cls.config_model.__name__}")
    return cls(config, allow_private=allow_private)


def close_channel(channel: Channel) -> None:
    """Close what a channel keeps open between sends (kept-alive HTTP or SMTP sessions), if
    its type keeps anything."""
    if callable(close := getattr(channel, "close", None)):
        close()


__all__ = [
    "CHANNEL_TYPES",
    "AnyChannelConfig",
    "build_channel",
    "close_channel",
]
