"""The Celery app: ``celery -A worker.app worker`` / ``celery -A worker.app beat``."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals
from kombu.entity import Exchange, Queue

from worker.logs import configure_logging
from worker.schedule import beat_schedule
from worker.settings import Settings, load_settings


def _transport_options(settings: Settings) -> dict[str, float]:
    """Redis needs a visibility timeout; kombu's SQLAlchemy transport hands options to
    ``create_engine``, which rejects unknown keys, so it gets none."""
    if settings.embedded_broker:
        return {}
    return {"visibility_timeout": settings.visibility_timeout, "polling_interval": 0.5}


def celery_config(settings: Settings) -> dict[str, Any]:
    """The app's configuration, built when Celery first needs it (never at import)."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)  # beat's schedule, the SQLite broker
    return dict(
        broker_url=settings.broker_url,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=180,
        task_soft_time_limit=150,
        task_queues=[
            Queue("poll", Exchange("poll", type="direct"), routing_key="poll"),
            Queue("deliver", Exchange("deliver", type="direct"), routing_key="deliver"),
        ],
        task_default_queue="poll",
        task_default_exchange="poll",
        task_default_routing_key="poll",
        task_routes={
            "watchfloor.deliver": {"queue": "deliver", "routing_key": "deliver"},
            "watchfloor.deliver_batch": {"queue": "deliver", "routing_key": "deliver"},
            "watchfloor.deliver_digest": {"queue": "deliver", "routing_key": "deliver"},
            "watchfloor.sweep": {"queue": "deliver", "routing_key": "deliver"},
            "watchfloor.poll_due_feeds": {"queue": "poll", "routing_key": "poll"},
            "watchfloor.poll_feed": {"queue": "poll", "routing_key": "poll"},
            "watchfloor.poll_due": {"queue": "poll", "routing_key": "poll"},
            "watchfloor.prune": {"queue": "poll", "routing_key": "poll"},
            "watchfloor.websub_maintain": {"queue": "poll", "routing_key": "poll"},
        },
        beat_schedule=beat_schedule(settings),
        beat_schedule_filename=str(settings.var_dir / "celerybeat-schedule"),
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        enable_utc=True,
    )


def create_app(settings: Settings | None = None) -> Celery:
    """The Celery app; with no settings given, they are read from the environment the first
    time the app's configuration is used (``celery -A worker.app`` imports this module)."""
    app = Celery("watchfloor", include=["worker.tasks"])
    app.add_defaults(lambda: celery_config(settings or load_settings()))
    return app


@signals.setup_logging.connect
def _setup_logging(loglevel: str | int | None = None, **_: object) -> None:
    if isinstance(loglevel, int):
        loglevel = logging.getLevelName(loglevel)
    configure_logging(loglevel, load_settings().log_format)


app = create_app()
