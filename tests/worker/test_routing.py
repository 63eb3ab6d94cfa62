"""Every task has a queue of its own kind, so a slow feed never delays an alert or a digest."""

from __future__ import annotations

import worker.tasks  # noqa: F401 - registers the tasks
from worker.app import app

DELIVERY_TASKS = {
    "watchfloor.deliver",
    "watchfloor.deliver_batch",
    "watchfloor.deliver_digest",
    "watchfloor.sweep",
}


def _queue(task_name: str) -> str:
    route = app.amqp.router.route({}, task_name)
    return route["queue"].name


def test_every_registered_task_is_routed_to_a_named_queue() -> None:
    names = {name for name in app.tasks if name.startswith("watchfloor.")}
    assert names >= DELIVERY_TASKS
    routes = app.conf.task_routes
    assert names <= set(routes), f"tasks without an explicit route: {names - set(routes)}"
    for name in names:
        expected = "deliver" if name in DELIVERY_TASKS else "poll"
        assert _queue(name) == expected, name


def test_beat_entries_name_the_queue_of_their_task() -> None:
    for entry in app.conf.beat_schedule.values():
        assert entry["options"]["queue"] == _queue(entry["task"])
