"""Shared fixtures: real databases (SQLite file, PostgreSQL schema) and a real Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from hypothesis import settings

from tests.helpers.configdir import write_config
from tests.helpers.processes import Service
from worker.db import make_engine, upgrade

PG_BASE = os.environ.get("WATCHFLOOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("WATCHFLOOR_TEST_REDIS", "redis://127.0.0.1:6379")
REPO = Path(__file__).resolve().parents[1]

# No timed assertion in a test: Hypothesis's per-example deadline would fail a correct test on
# a loaded machine, so it is off for the whole suite.
settings.register_profile("watchfloor", deadline=None)
settings.load_profile("watchfloor")


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never go through a proxy: everything they reach is on loopback."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _stop_leftover_services() -> Iterator[None]:
    yield
    Service.stop_all()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'watchfloor.db'}"


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema on 127.0.0.1:5432/test as a URL, dropped afterwards."""
    schema = f"wf_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def redis_db() -> int:
    """One Redis database per xdist worker (1..11; 12-14 are fixed ones some tests use), so
    parallel tests never share queues; outside xdist, one picked by pid."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        return 1 + int(worker.removeprefix("gw")) % 11
    return 1 + (os.getpid() + int(uuid.uuid4().int % 7)) % 11


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own, flushed before and after."""
    url = f"{REDIS_BASE}/{redis_db()}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A minimal valid config dir; tests rewrite files with ``write_config``."""
    path = tmp_path / "config"
    write_config(path)
    return path
