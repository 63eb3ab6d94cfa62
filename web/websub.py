"""The WebSub callback hubs call: public by necessity (a hub has no login), so it reads
nothing but a subscription's own token, and takes a push only under its secret's HMAC."""

from __future__ import annotations

from typing import Any

import structlog
from flask import Blueprint, Response, request

from web.deps import runtime
from worker.models import utcnow
from worker.websub import callback

blueprint = Blueprint("websub", __name__)
log = structlog.get_logger(__name__)


@blueprint.get("/websub/<token>")
def verify(token: str) -> Any:
    answer = callback.verify_intent(runtime(), token, request.args, utcnow())
    return Response(answer.text, answer.status, mimetype="text/plain")


@blueprint.post("/websub/<token>")
def push(token: str) -> Any:
    rt = runtime()
    request.max_content_length = rt.fetch_limits.max_bytes  # a feed, not a form post
    body = request.get_data(cache=False)
    headers = {
        name: request.headers.get(name, "")
        for name in ("X-Hub-Signature", "Content-Type", "Content-Encoding")
    }
    answer = callback.receive_push(rt, token, body, headers, utcnow())
    _enqueue(list(answer.delivery_ids))
    return Response(answer.text, answer.status, mimetype="text/plain")


def _enqueue(delivery_ids: list[str]) -> None:
    """The outbox rows are committed; a broker that is down leaves them to the sweep."""
    if not delivery_ids:
        return
    from worker.tasks import enqueue_deliveries

    try:
        enqueue_deliveries(delivery_ids)
    except Exception as exc:  # the sweep re-enqueues what the broker did not take
        log.warning("websub: deliveries left to the sweep", error=type(exc).__name__)
