"""Open SMTP sessions kept per email channel and process, so a batch's messages to one relay
share a few connections instead of paying connect, EHLO, STARTTLS and AUTH each.

A connection serves one sending thread at a time (checked out, then checked in), so a
channel holds at most as many as it has sends in flight. It goes back only after a send that
left the session clean; after any error it is discarded. One idle for ``IDLE_MAX`` seconds
is not reused but closed at the next checkout (as httpx prunes its pool), since relays drop
idle clients; all are closed when the channel's config entry changes. A forked child never
touches its parent's: they carry the parent's session.

Whether a failed send may go again on a new connection is ``may_resend``'s call: only when
a reused session died before DATA went out, so the relay cannot hold the message.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

IDLE_MAX = 30.0  # seconds; RFC 5321 asks relays to wait 5 minutes, some wait far less
QUIT_TIMEOUT = 1.0  # seconds a polite QUIT may wait for its answer on close


class SmtpConnection(smtplib.SMTP):
    """``smtplib.SMTP`` that notes when the DATA command went out: from then on a lost
    reply may hide a message the relay accepted, so the send must not be repeated."""

    data_sent = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_sent = True
        return super().data(msg)


class SmtpsConnection(SmtpConnection, smtplib.SMTP_SSL):
    """The same over implicit TLS (port 465)."""


def may_resend(client: SmtpConnection, exc: Exception) -> bool:
    """A send that failed on a *reused* connection may go once more on a new one when the
    relay ended the session before DATA: a disconnect, a reset, or 421 (closing). A timeout
    is not retried (a slow relay is not a gone one, and the wait would double); neither is
    any other reply, which the relay gave with the session alive."""
    if client.data_sent:
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    if isinstance(exc.__context__, TimeoutError) or isinstance(exc, TimeoutError):
        return False
    return isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError)


@dataclass(frozen=True, slots=True)
class _Idle:
    client: SmtpConnection
    since: float


class SmtpPool:
    """Idle connections of one channel, newest last (reused first: least likely stale)."""

    def __init__(
        self,
        connect: Callable[[], SmtpConnection],
        *,
        keep: int,
        idle_max: float = IDLE_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._keep = keep
        self._idle_max = idle_max
        self._clock = clock
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[_Idle] = []
        self._closed = False

    def checkout(self) -> tuple[SmtpConnection, bool]:
        """A connection for one send, and whether it is a reused one."""
        with self._lock:
            self._forget_if_forked()
            now = self._clock()
            expired = [i.client for i in self._idle if now - i.since >= self._idle_max]
            self._idle = [i for i in self._idle if now - i.since < self._idle_max]
            reused = self._idle.pop().client if self._idle else None
        for client in expired:
            retire(client)
        if reused is not None:
            reused.data_sent = False
            return reused, True
        return self.connect(), False

    def connect(self) -> SmtpConnection:
        """A new connection, ready to send (greeted, TLS and AUTH done)."""
        return self._connect()

    def checkin(self, client: SmtpConnection) -> None:
        """Keep a connection after a clean send; closed instead if the pool is full or
        closed (the channel was rebuilt meanwhile)."""
        with self._lock:
            self._forget_if_forked()
            if not self._closed and len(self._idle) < self._keep:
                self._idle.append(_Idle(client, self._clock()))
                return
        retire(client)

    def close(self) -> None:
        """QUIT the idle connections; ones still sending are closed when checked in."""
        with self._lock:
            self._forget_if_forked()
            idle, self._idle, self._closed = self._idle, [], True
        for entry in idle:
            retire(entry.client)

    def _forget_if_forked(self) -> None:
        """In a forked child, drop the parent's connections unread and unclosed: a QUIT
        would end the parent's session on the socket both hold."""
        if self._pid != os.getpid():
            self._pid, self._idle = os.getpid(), []


def retire(client: smtplib.SMTP) -> None:
    """End a session politely (QUIT, briefly waited for), then close the socket whatever
    the answer."""
    try:
        if client.sock is not None:
            client.sock.settimeout(QUIT_TIMEOUT)
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def discard(client: smtplib.SMTP) -> None:
    """Close a connection after an error: its session state is unknown, so no QUIT."""
    client.close()


class SendDeadline:
    """All of one send (connect, TLS, AUTH, MAIL to the end of DATA, and a stale session's
    one replacement) within ``seconds``. smtplib's timeout bounds each socket step, and a
    send takes a dozen: a relay answering each just in time would hold a send for minutes,
    past its delivery lease, and another worker would send it again. At the deadline the
    session's socket is shut down, which ends the step blocked on it; the send fails as a
    timeout and the outbox retries it later with the same Message-ID."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> SendDeadline:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()

    def passed(self) -> bool:
        """Whether the send is out of time: the watchdog fired, or a step whose timeout the
        deadline clipped timed out just before it could."""
        return self.expired or time.monotonic() >= self.until

    def step_timeout(self, timeout: float) -> float:
        """A socket step's timeout: the configured one, never past the deadline."""
        return max(min(timeout, self.until - time.monotonic()), 0.001)

    def watch(self, client: smtplib.SMTP) -> None:
        """Shut ``client``'s socket at the deadline (again after STARTTLS: it is new)."""
        sock = client.sock
        if sock is None:
            return
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired, sockets, self._sockets = True, self._sockets, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # closed already, or detached by STARTTLS (its successor is watched too)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
