"""A real RSS server on loopback whose items a test can change while it runs."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


@dataclass
class FeedEntry:
    guid: str
    title: str
    summary: str = ""
    link: str = ""
    published: datetime = field(default_factory=lambda: datetime.now(UTC))


def rss(entries: list[FeedEntry], title: str = "Test wire") -> bytes:
    parts = [
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{title}</title>"
    ]
    for e in entries:
        parts.append(
            f"<item><guid>{escape(e.guid)}</guid><title>{escape(e.title)}</title>"
            f"<link>{escape(e.link or 'https://news.example.org/' + e.guid)}</link>"
            f"<description>{escape(e.summary)}</description>"
            f"<pubDate>{format_datetime(e.published)}</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


class FeedServer:
    """Serves ``/<name>.xml`` feeds with ETag/304 support; records every request."""

    def __init__(self) -> None:
        self.feeds: dict[str, list[FeedEntry]] = {}
        self.requests: list[tuple[str, int]] = []  # (path, status)
        self.times: dict[str, list[float]] = {}  # path -> time.monotonic() of each request
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}.xml"

    def publish(self, name: str, *entries: FeedEntry) -> None:
        with self.lock:
            self.feeds.setdefault(name, []).extend(entries)

    def statuses(self, name: str) -> list[int]:
        with self.lock:
            return [status for path, status in self.requests if path == f"/{name}.xml"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/").removesuffix(".xml")
                with server.lock:
                    entries = server.feeds.get(name)
                    body = rss(list(entries)) if entries is not None else b""
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if entries is None:
                    status = 404
                elif self.headers.get("If-None-Match") == etag:
                    status = 304
                else:
                    status = 200
                with server.lock:
                    server.requests.append((self.path, status))
                    server.times.setdefault(self.path, []).append(time.monotonic())
                self.send_response(status)
                self.send_header("ETag", etag)
                if status == 200:
                    self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
