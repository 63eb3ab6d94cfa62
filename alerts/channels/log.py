"""Log channel: one structured log line per alert, the default that needs no setup."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import structlog

from alerts.channels.base import ChannelConfig
from alerts.render import log_fields
from alerts.types import Alert


class LogConfig(ChannelConfig):
    type: Literal["log"] = "log"


class LogChannel:
    """Emits event ``alert.created`` with the fields of ``render.log_fields`` as key/values.

    Key/values rather than the ``log_line`` string, so that a JSON log renderer keeps them
    as separate fields; the console renderer prints the same one line.
    """

    config_model: ClassVar[type[ChannelConfig]] = LogConfig

    def __init__(
        self,
        config: LogConfig,
        *,
        allow_private: bool = False,
        logger: Any = None,
        **_: Any,
    ) -> None:
        self.config = config
        self._log = logger

    def send(self, alert: Alert) -> None:
        logger = self._log or structlog.get_logger("watchfloor.alerts")
        logger.info("alert.created", channel=self.config.id, **log_fields(alert))
