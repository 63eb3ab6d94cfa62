"""Start Watchfloor processes the way users do, and wait for outcomes (never for time)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on loopback now (a server started next binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, every: float = 0.2) -> bool:
    """Poll ``predicate`` until true; ``timeout`` bounds a hung test, it is no performance claim."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


def tracebacks(log: str) -> list[str]:
    """Log lines that carry a traceback: a plain one, or a JSON event with exception info
    (structlog's JSON renderer puts it in ``exc_info`` or ``exception``)."""
    marks = ("Traceback (most recent call last)", '"exc_info"', '"exception"')
    return [line for line in log.splitlines() if any(mark in line for mark in marks)]


def service_env(
    tmp_path: Path, config_dir: Path, database_url: str, broker_url: str | None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
    env.update(
        WATCHFLOOR_CONFIG_DIR=str(config_dir),
        WATCHFLOOR_DATABASE_URL=database_url,
        WATCHFLOOR_VAR_DIR=str(tmp_path / "var"),
        WATCHFLOOR_ALLOW_PRIVATE_URLS="1",
        WATCHFLOOR_BEAT_INTERVAL="1",
        WATCHFLOOR_SWEEP_INTERVAL="2",
        WATCHFLOOR_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    if broker_url:
        env["WATCHFLOOR_BROKER_URL"] = broker_url
    env.update(extra)
    return env


class Service:
    """A child process in its own process group, its output kept in a log file."""

    started: ClassVar[list[Service]] = []  # stopped after each test (tests/conftest.py)

    def __init__(
        self, argv: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path = REPO
    ) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        Service.started.append(self)

    @classmethod
    def stop_all(cls) -> None:
        """A failed assertion must not leave a worker behind to steal the next test's tasks."""
        while cls.started:
            cls.started.pop().stop(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)  # to the main process only, as docker stop does
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):  # leftovers of the group (pool children)
            os.killpg(self.proc.pid, signal.SIGKILL)
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def celery_worker(env: dict[str, str], log_path: Path, *extra: str, beat: bool = True) -> Service:
    argv = [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", "poll,deliver"]
    argv += ["--concurrency=2", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
    argv += [*(["--beat"] if beat else []), *extra]
    return Service(argv, env, log_path)


def watchfloor(env: dict[str, str], log_path: Path, *args: str) -> Service:
    return Service([sys.executable, "-m", "worker", *args], env, log_path)
