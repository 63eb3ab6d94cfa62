"""Bounded time for parsing hostile bodies, in any thread.

A feed or page parse is pure Python over input an attacker shapes, so it runs under a
deadline. In the main thread (a Celery prefork child, the CLI) SIGALRM interrupts it and any
outer timer is kept. Signals reach the main thread only, and pushed bodies are parsed in the
web server's threads (waitress) and polls in ``celery -P threads``: there a watchdog timer
raises the same exception in the parsing thread (``PyThreadState_SetAsyncExc``). Both land
between two bytecodes, so a parse is cut at the next Python step after its deadline; a C
call that never returns to Python (none of ours does on bounded input) is not.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ParseTimeout(BaseException):
    """The deadline passed; a BaseException so no ``except Exception`` in a parser eats it."""


@contextmanager
def bounded_time(seconds: float) -> Iterator[None]:
    """Raise ``ParseTimeout`` in the block once ``seconds`` have passed."""
    if seconds <= 0:
        yield
    elif threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _alarm(seconds):
            yield
    else:
        with _watchdog(seconds):
            yield


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    outer_handler = signal.getsignal(signal.SIGALRM)
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_delay or seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(
            signal.SIGALRM, outer_handler if outer_handler is not None else signal.SIG_DFL
        )
        if outer_delay:
            left = max(outer_delay - (time.monotonic() - start), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _on_alarm(signum: int, frame: Any) -> None:
    raise ParseTimeout


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    """A timer thread that raises ``ParseTimeout`` in this thread while the block runs.

    The lock makes the timer's shot and the block's edges exclusive. The timer shoots only
    once the block is armed, after ``timer.start()`` has returned: an exception raised inside
    ``threading``'s own code (``start`` waits on an Event) would leave its locks broken. A
    deadline that passed before arming is raised here instead. A timeout the timer scheduled
    but the thread had not yet raised when the block ended is withdrawn, so it can never
    surface after the block."""
    target = ctypes.c_ulong(threading.get_ident())
    lock, state = threading.Lock(), {"armed": False, "done": False, "fired": False}
    deadline = time.monotonic() + seconds

    def fire() -> None:
        with lock:
            if state["armed"] and not state["done"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(ParseTimeout))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    with lock:
        state["armed"] = True
    try:
        if time.monotonic() >= deadline:  # the timer may have run before the block was armed
            raise ParseTimeout
        yield
    finally:
        with lock:
            state["done"] = True
            if state["fired"]:  # withdraw it if it is still pending (a no-op once raised)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)
        timer.cancel()  # after "done": no timeout can land inside threading's code
