"""structlog setup: JSON lines when not on a terminal, readable lines on one."""

from __future__ import annotations

import logging
import sys

import structlog

# Celery's per-task lines ("Task ... received", "... succeeded in 0.01s: {...}") and beat's
# "Sending due task" come several times a second: at INFO they would bury the alerts and
# feed errors an operator reads the log for. They show with WATCHFLOOR_LOG_LEVEL=DEBUG.
CHATTY_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")
_CHATTY_PREFIXES = ("Task ", "Scheduler: Sending due task")


class _TaskChatterFilter(logging.Filter):
    """Drop Celery's INFO chatter unless the log level is DEBUG; keep its warnings and
    errors (a failed task is logged by ``celery.app.trace`` at ERROR)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith(CHATTY_LOGGERS):
            return True
        if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
            return True
        return not str(record.msg).startswith(_CHATTY_PREFIXES)


def configure_logging(level: str | None = None, log_format: str = "") -> None:
    """``log_format``: ``json``, ``console``, or "" for JSON unless stderr is a terminal."""
    level_name = (level or "INFO").upper()
    as_json = log_format == "json" or (log_format != "console" and not sys.stderr.isatty())
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    handler.addFilter(_TaskChatterFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name)
    for noisy in (
        "httpx",
        "httpcore",
        "sqlalchemy.engine",
        "alembic.runtime.migration",
        "alembic.runtime.plugins",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
