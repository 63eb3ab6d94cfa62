"""A loopback web site for page-source tests: pages set per path, every request logged
with when it arrived, so a test can read the politeness the fetcher kept."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Page:
    body: bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class Site:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.pages: dict[str, Page] = {}
        self.log: list[tuple[str, float]] = []  # (path, time.monotonic() on arrival)
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def put(self, path: str, body: str | bytes, **kw: object) -> None:
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.pages[path] = Page(data, **kw)  # type: ignore[arg-type]

    def requests(self, prefix: str = "") -> list[tuple[str, float]]:
        with self.lock:
            return [(p, t) for p, t in self.log if p.startswith(prefix)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with site.lock:
                    site.log.append((self.path, time.monotonic()))
                    page = site.pages.get(self.path)
                if page is None:
                    page = Page(b"not found", status=404, content_type="text/plain")
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(page.body)))
                for name, value in page.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> Site:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
