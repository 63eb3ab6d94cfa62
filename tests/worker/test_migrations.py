"""Alembic migrations bring an empty database to head, and the models match them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.conftest import REPO
from tests.helpers.processes import service_env
from worker.db import (
    current_revision,
    head_revision,
    include_object,
    make_engine,
    require_current_schema,
)
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
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
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


def test_0003_splits_story_keys_into_typed_columns_and_keeps_deliveries(db_url: str) -> None:
    """Data written by 0002 survives 0003: 'story:7:official' becomes (7, 'official')."""
    from alembic import command

    from worker.db import alembic_config

    engine = make_engine(db_url)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.exec_driver_sql("SELECT 1")
    now = "2026-11-30 10:00:00"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO feeds (id, url, config_url, next_poll_at, error_count, created_at)"
                " VALUES ('wire', 'http://x/', 'http://x/', :now, 0, :now)"
            ),
            {"now": now},
        )
        for item_id, story_id in ((1, 7), (2, 8)):
            conn.execute(
                sa.text(
                    "INSERT INTO items (id, feed_id, guid, canonical_url, title, summary,"
                    " fetched_at, fingerprint, story_id) VALUES (:id, 'wire', :guid, '', 't', 's',"
                    " :now, 'f', :story)"
                ),
                {"id": item_id, "guid": f"g{item_id}", "now": now, "story": story_id},
            )
        for match_id, item_id, key in (
            (1, 1, "story:7"),
            (2, 1, "story:7:official"),
            (3, 2, "item:2"),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO matches (id, item_id, watchlist_id, story_key, severity, hits,"
                    " snippet, created_at) VALUES (:id, :item, 'wl', :key, 'high', '[]', '', :now)"
                ),
                {"id": match_id, "item": item_id, "key": key, "now": now},
            )
        conn.execute(
            sa.text(
                "INSERT INTO deliveries (id, match_id, channel_id, status, attempts,"
                " next_attempt_at, created_at) VALUES ('msg_1', 2, 'hook', 'sent', 1, :now, :now)"
            ),
            {"now": now},
        )
    engine.dispose()
    engine = make_engine(db_url)
    from worker.db import upgrade

    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, story_id, update_kind FROM matches ORDER BY id"))
        assert [tuple(r) for r in rows] == [(1, 7, ""), (2, 7, "official"), (3, 8, "")]
        delivery = conn.execute(sa.text("SELECT match_id, status FROM deliveries")).one()
        assert tuple(delivery) == (2, "sent")
        with pytest.raises(sa.exc.IntegrityError):  # the status CHECK now holds
            conn.execute(sa.text("UPDATE deliveries SET status = 'bogus'"))
    engine.dispose()
