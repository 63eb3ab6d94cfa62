"""The beat schedule. Every entry is safe to run twice (two beats, or a restart)."""

from __future__ import annotations

from typing import Any

from worker.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "poll-due-feeds": {
            "task": "watchfloor.poll_due_feeds",
            "schedule": settings.beat_interval,
            "options": {"queue": "poll", "expires": settings.beat_interval * 4},
        },
        "sweep-outbox": {
            "task": "watchfloor.sweep",
            "schedule": settings.sweep_interval,
            "options": {"queue": "deliver", "expires": settings.sweep_interval * 4},
        },
        "websub-subscriptions": {  # subscribe, renew, lapse, unsubscribe (worker/websub/)
            "task": "watchfloor.websub_maintain",
            "schedule": 30.0,
            "options": {"queue": "poll", "expires": 120},
        },
        "prune-old-items": {
            "task": "watchfloor.prune",
            "schedule": 6 * 3600.0,
            "options": {"queue": "poll", "expires": 3600},
        },
    }
