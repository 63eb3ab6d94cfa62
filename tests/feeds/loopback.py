"""A real HTTP server on a loopback address whose routes a test writes as plain functions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 64  # many concurrent clients: a backlog of 5 would drop connections

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-body are what the limits tests are about


class LoopbackServer:
    """Serves ``routes[path](handler)``; records every request as (path, headers)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._server = _QuietServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with server.lock:
                    server.requests.append((self.path, dict(self.headers.items())))
                route = server.routes.get(self.path.split("?")[0])
                try:
                    if route is None:
                        send(self, 404, b"no such route")
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up, as the limits tests want it to

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


RSS = (
    b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Wire</title>"
    b"<item><guid>a1</guid><title>First</title><link>https://news.example.org/a1</link>"
    b"<description>Body</description></item></channel></rss>"
)
