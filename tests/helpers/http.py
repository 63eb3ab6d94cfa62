"""A real webhook receiver on 127.0.0.1 that records requests and answers as scripted.

    with WebhookReceiver() as hook:
        hook.script(Reply(500), Reply(500))          # two 500s, then the default (200)
        ...POST to hook.url...
        hook.requests[0].body, hook.requests[0].headers["webhook-id"]

    hook.default = Reply(410)                         # answer every later request with 410
    hook.script(Reply(429, headers={"Retry-After": "7"}))
    hook.script(Reply(301, headers={"Location": "http://127.0.0.1:1/elsewhere"}))
    hook.script(Reply(hang=True))                     # never answer (until stop): timeouts
    hook.stop()                                       # later connections are refused

Any method and path are accepted and recorded; header names are lower-cased.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False  # hold the request open without answering until the receiver stops
    delay: float = 0.0  # answer after this many seconds (an in-flight request to stop under)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names; a repeated header keeps its last value
    body: bytes
    at: float = 0.0  # time.monotonic() on arrival, to check backoff between attempts
    peer: tuple[str, int] = ("", 0)  # the client's address: one per connection


class WebhookReceiver:
    host = "127.0.0.1"

    def __init__(self, path: str = "/hook", port: int = 0, *, keep_alive: bool = False) -> None:
        """``keep_alive``: answer in HTTP/1.1 and keep connections open for the next request
        (off by default, so ``stop()`` really ends every connection)."""
        self.path = path
        self.keep_alive = keep_alive
        self.default = Reply()
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self._script: deque[Reply] = deque()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer((self.host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order; then ``default`` answers."""
        with self.lock:
            self._script.extend(replies)

    def fail_times(self, count: int, status: int = 500) -> None:
        self.script(*(Reply(status) for _ in range(count)))

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until ``count`` requests arrived or ``timeout`` passed; returns what is there."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def _record(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.requests.append(request)
            self.arrived.notify_all()
            return self._script.popleft() if self._script else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver.keep_alive else "HTTP/1.0"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = receiver._record(
                    RecordedRequest(
                        self.command,
                        self.path,
                        headers,
                        body,
                        time.monotonic(),
                        self.client_address,
                    )
                )
                if reply.hang:
                    receiver._released.wait()
                    return
                if reply.delay:
                    receiver._released.wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean; the requests are recorded instead

        return Handler

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and close the socket: new connections are refused."""
        self._released.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
