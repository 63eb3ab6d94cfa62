"""Log channel: one structured log line per alert, the default that needs no setup."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import structlog

from alerts.channels.base import ChannelConfig
from alerts.render import log_fields
from alerts.render_digest import digest_log_fields
from alerts.types import Alert, Digest


class LogConfig(ChannelConfig):
    type: Literal["log"] = "log"


class LogChannel:
    """Emits event ``alert.created`` with the fields of ``render.log_fields`` as key/values
    (a digest: ``alert.digest`` first, see ``send_digest``).

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
        self._logger().info("alert.created", channel=self.config.id, **log_fields(alert))

    def send_digest(self, digest: Digest) -> None:
        """One ``alert.digest`` event, then each alert as its usual ``alert.created`` event
        tagged with the digest id: every alert is one ``alert.created`` line, digest or not."""
        logger = self._logger()
        fields = digest_log_fields(digest)
        logger.info("alert.digest", channel=self.config.id, **fields)
        for alert in digest.alerts:
            logger.info(
                "alert.created",
                channel=self.config.id,
                digest_id=fields["digest_id"],
                **log_fields(alert),
            )

    def _logger(self) -> Any:
        return self._log or structlog.get_logger("watchfloor.alerts")
