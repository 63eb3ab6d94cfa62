"""flask-websub's hub (a third-party WebSub implementation from PyPI) on loopback, for the
push tests and bench/freshness.py. Run as a process of its own:

    python -m tests.helpers.websub_hub PORT STORAGE.sqlite3

Its Celery tasks run eagerly, inside the request that starts them: a subscription request
is verified with the subscriber before the hub answers it, and a publish is pushed to every
subscriber before the publisher's request returns.
"""

from __future__ import annotations

import logging
import sys

import waitress
from celery import Celery
from flask import Flask
from flask_websub.hub import Hub, SQLite3HubStorage

LEASE_BOUNDS = {  # the hub's own bounds on what a subscriber asks (seconds)
    "HUB_MIN_LEASE_SECONDS": 60,
    "HUB_DEFAULT_LEASE_SECONDS": 3600,
    "HUB_MAX_LEASE_SECONDS": 30 * 86400,
}


def make_app(storage_path: str) -> Flask:
    app = Flask("websub-hub")
    app.config.update(PUBLISH_SUPPORTED=True, **LEASE_BOUNDS)
    celery = Celery("websub-hub", broker="memory://", backend="cache+memory://")
    celery.conf.update(task_always_eager=True, task_eager_propagates=False)
    hub = Hub(
        SQLite3HubStorage(storage_path),
        celery,
        SIGNATURE_ALGORITHM="sha256",
        REQUEST_TIMEOUT=10,
        MAX_ATTEMPTS=2,
        BACKOFF_BASE=0.1,
        **LEASE_BOUNDS,
    )
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    return app


def main() -> None:
    port, storage = int(sys.argv[1]), sys.argv[2]
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    print(f"hub on http://127.0.0.1:{port}/hub", flush=True)
    waitress.serve(make_app(storage), listen=f"127.0.0.1:{port}", threads=8)


if __name__ == "__main__":
    main()
