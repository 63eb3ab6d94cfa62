"""New alerts without a reload: Server-Sent Events from the alerts table.

The stream polls the database (the one truth every web process shares) each second, sends
alerts newer than the last id the browser saw (``Last-Event-ID`` when it reconnects) as
JSON, and ends after a while; EventSource reconnects by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request, stream_with_context

from web.deps import config, runtime
from web.present import stream_event
from worker import archive

blueprint = Blueprint("stream", __name__)
POLL_SECONDS = 1.0
LIFETIME_SECONDS = 55.0  # a thread per stream: let it go, the browser reconnects
RETRY_MS = 1000


@blueprint.get("/alerts/stream")
def alerts() -> Any:
    after = _int(request.headers.get("Last-Event-ID") or request.args.get("after", "0"))
    cfg = config()
    sessions = runtime().sessions

    def events() -> Iterator[str]:
        last, started = after, time.monotonic()
        yield f"retry: {RETRY_MS}\n\n"
        while time.monotonic() - started < LIFETIME_SECONDS:
            with sessions() as session:
                rows = archive.alerts_after(session, last)
            for row in rows:
                last = row.match_id
                payload = json.dumps(stream_event(row, cfg), ensure_ascii=False)
                yield f"id: {last}\nevent: alert\ndata: {payload}\n\n"
            if not rows:
                yield ": idle\n\n"  # keeps proxies from timing the stream out
            time.sleep(POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(events()), mimetype="text/event-stream", headers=headers)


def _int(value: str) -> int:
    return int(value) if value.isdigit() else 0
