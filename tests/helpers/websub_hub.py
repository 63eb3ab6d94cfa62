"""flask-websub's hub (a third-party WebSub implementation from PyPI) on loopback, for the
push tests and bench/freshness.py: its web process and its own Celery worker, on Redis, as
the library is meant to run. Each runs as a process of its own:

    python -m tests.helpers.websub_hub web PORT STORAGE.sqlite3 BROKER QUEUE
    python -m tests.helpers.websub_hub worker STORAGE.sqlite3 BROKER QUEUE

``start_hub`` starts both. As with a hub on the internet, the hub answers a subscription
request at once (202) and verifies the intent with the subscriber afterwards, from its
worker; a publish is pushed to every subscriber from there too. ``QUEUE`` is the hub's own
queue name, so hubs of tests running at the same time never take each other's tasks.
"""

from __future__ import annotations

import logging
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import waitress
from celery import Celery
from flask import Flask
from flask_websub.hub import Hub, SQLite3HubStorage

from tests.helpers.processes import Service, free_port, wait_until

LEASE_BOUNDS = {  # the hub's own bounds on what a subscriber asks (seconds)
    "HUB_MIN_LEASE_SECONDS": 60,
    "HUB_DEFAULT_LEASE_SECONDS": 3600,
    "HUB_MAX_LEASE_SECONDS": 30 * 86400,
}


def make_hub(storage_path: str, broker: str, queue: str) -> tuple[Celery, Hub]:
    """The hub's Celery app with its tasks registered: the web process sends them and the
    worker runs them, so both build it the same way (the task names must agree)."""
    celery = Celery("websub-hub", broker=broker)
    celery.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    hub = Hub(
        SQLite3HubStorage(storage_path),
        celery,
        SIGNATURE_ALGORITHM="sha256",
        REQUEST_TIMEOUT=10,
        MAX_ATTEMPTS=2,
        BACKOFF_BASE=0.1,
        **LEASE_BOUNDS,
    )
    return celery, hub


def make_app(storage_path: str, broker: str, queue: str) -> Flask:
    app = Flask("websub-hub")
    app.config.update(PUBLISH_SUPPORTED=True, **LEASE_BOUNDS)
    _, hub = make_hub(storage_path, broker, queue)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    return app


@dataclass
class HubProcesses:
    """The hub's two processes and where to reach it."""

    web: Service
    worker: Service
    url: str
    storage: Path

    def stop(self) -> None:
        self.web.stop()
        self.worker.stop()

    def log(self) -> str:
        return self.web.log() + self.worker.log()


def start_hub(tmp: Path, env: dict[str, str], broker: str, port: int | None = None) -> HubProcesses:
    """Start the hub's worker and web process (on ``port``, else a free one); return once
    the web process answers and the worker has connected to the broker."""
    port, storage, queue = port or free_port(), tmp / "hub.sqlite3", f"websub-{uuid.uuid4().hex}"
    module = [sys.executable, "-m", "tests.helpers.websub_hub"]
    worker = Service([*module, "worker", str(storage), broker, queue], env, tmp / "hub-worker.log")
    web = Service([*module, "web", str(port), str(storage), broker, queue], env, tmp / "hub.log")
    url = f"http://127.0.0.1:{port}/hub"

    def up() -> bool:
        try:
            return httpx.post(url, data={}, timeout=2).status_code == 400
        except httpx.HTTPError:
            return False

    hub = HubProcesses(web, worker, url, storage)
    ready = wait_until(lambda: not (web.alive() and worker.alive()) or up(), timeout=90)
    assert ready and web.alive(), hub.log()
    assert wait_until(lambda: not worker.alive() or " ready." in worker.log(), timeout=90)
    assert worker.alive(), hub.log()
    return hub


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    if sys.argv[1] == "worker":
        storage, broker, queue = sys.argv[2:5]
        celery, _ = make_hub(storage, broker, queue)
        # solo: one task at a time, in this process (the hub's SQLite storage is one file)
        celery.worker_main(["worker", "--pool=solo", "--loglevel=INFO", "-Q", queue])
        return
    port, storage, broker, queue = int(sys.argv[2]), *sys.argv[3:6]
    print(f"hub on http://127.0.0.1:{port}/hub", flush=True)
    waitress.serve(make_app(storage, broker, queue), listen=f"127.0.0.1:{port}", threads=8)


if __name__ == "__main__":
    main()
