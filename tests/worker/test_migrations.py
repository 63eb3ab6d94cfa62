"""Alembic migrations bring an empty database to head, and the models match them."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.conftest import REPO
from tests.helpers.processes import service_env
from worker.db import current_revision, head_revision, make_engine, require_current_schema
from worker.models import Base


def test_upgrade_empty_database_to_head_and_models_match(db_url: str) -> None:
    engine = make_engine(db_url)
    result = subprocess.run(
        [sys.executable, "-m", "worker", "db", "upgrade"],
        cwd=REPO,
        env={**service_env(REPO, REPO / "config", db_url, None)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert current_revision(engine) == head_revision()
    require_current_schema(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    engine.dispose()


def test_out_of_date_schema_is_refused_with_the_command_to_run(db_url: str, tmp_path) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE unrelated (id INTEGER)"))
    env = service_env(tmp_path, REPO / "config", db_url, "redis://127.0.0.1:6379/14")
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", "poll"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode != 0
    assert "run 'watchfloor db upgrade'" in worker.stdout + worker.stderr
    engine.dispose()
