"""The Celery app: ``celery -A worker.app worker`` / ``celery -A worker.app beat``."""

from __future__ import annotations

import logging
import os

from celery import Celery, signals
from kombu import Queue

from worker.logs import configure_logging
from worker.schedule import beat_schedule
from worker.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("watchfloor", broker=settings.broker_url, include=["worker.tasks"])
    visibility = float(os.environ.get("WATCHFLOOR_VISIBILITY_TIMEOUT", "3600"))
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=180,
        task_soft_time_limit=150,
        task_queues=[Queue("poll"), Queue("deliver")],
        task_default_queue="poll",
        task_routes={
            "watchfloor.deliver": {"queue": "deliver"},
            "watchfloor.sweep": {"queue": "deliver"},
        },
        beat_schedule=beat_schedule(settings),
        beat_schedule_filename=str(settings.var_dir / "celerybeat-schedule"),
        broker_transport_options={"visibility_timeout": visibility, "polling_interval": 0.5},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        enable_utc=True,
    )
    return app


@signals.setup_logging.connect
def _setup_logging(loglevel: str | int | None = None, **_: object) -> None:
    if isinstance(loglevel, int):
        loglevel = logging.getLevelName(loglevel)
    configure_logging(loglevel)


app = create_app()
