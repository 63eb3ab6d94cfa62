"""console: users, API tokens, triage, missed items, full-text search

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:00:00

Search is dialect-specific and kept out of the models (see ``SEARCH_OBJECTS``):
- SQLite: ``items_fts``, an FTS5 external-content table over ``items.search_text``, kept in
  step by triggers;
- PostgreSQL: ``items.search_vector``, a generated ``tsvector`` with a GIN index.
Both index the tokens ``alerts.search.index_text`` writes; existing items are backfilled.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worker.models
from alerts.search import index_text, language

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE items_fts USING fts5(search_text, content='items',"
    " content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN"
    " INSERT INTO items_fts (rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN"
    " INSERT INTO items_fts (items_fts, rowid, search_text)"
    " VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF search_text ON items BEGIN"
    " INSERT INTO items_fts (items_fts, rowid, search_text)"
    " VALUES ('delete', old.id, old.search_text);"
    " INSERT INTO items_fts (rowid, search_text) VALUES (new.id, new.search_text); END",
]
POSTGRES_FTS = [
    "ALTER TABLE items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS"
    " (to_tsvector('simple'::regconfig, coalesce(search_text, ''))) STORED",
    "CREATE INDEX ix_items_search_vector ON items USING gin (search_vector)",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("auth_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", worker.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'analyst', 'admin')", name="ck_users_role"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", worker.models.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", worker.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", worker.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "triage",
        sa.Column("match_id", ID, nullable=False),
        sa.Column("acknowledged_at", worker.models.UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", ID, nullable=True),
        sa.Column("assignee_id", ID, nullable=True),
        sa.Column("false_positive", sa.Boolean(), nullable=False),
        sa.Column("false_positive_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", worker.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["match_id"], ["matches.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"], ["users.id"], name="fk_triage_acknowledged_by", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name="fk_triage_assignee_id", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("match_id"),
    )
    op.create_index("ix_triage_assignee_id", "triage", ["assignee_id"])
    op.create_table(
        "triage_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("match_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", worker.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["match_id"], ["matches.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_triage_events_match", "triage_events", ["match_id", "created_at"])
    op.create_table(
        "missed_items",
        sa.Column("id", ID, nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("watchlist_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", worker.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "watchlist_id", name="uq_missed_items"),
    )
    op.create_index("ix_matches_newest", "matches", ["created_at", "id"])
    op.create_index("ix_matches_watchlist_newest", "matches", ["watchlist_id", "created_at", "id"])
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch_op.create_index(batch_op.f("ix_items_language"), ["language"], unique=False)
    _backfill_search_text()
    for statement in SQLITE_FTS if _sqlite() else POSTGRES_FTS:
        op.execute(statement)
    if _sqlite():  # the external-content index learns the rows that were there before it
        op.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _backfill_search_text(batch: int = 2000) -> None:
    conn = op.get_bind()
    items = sa.table(
        "items",
        sa.column("id", sa.BigInteger),
        sa.column("title", sa.Text),
        sa.column("summary", sa.Text),
        sa.column("search_text", sa.Text),
        sa.column("language", sa.String),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(items.c.id, items.c.title, items.c.summary)
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        for item_id, title, summary in rows:
            values = {
                "search_text": index_text(title, summary),
                "language": language(title, summary),
            }
            conn.execute(items.update().where(items.c.id == item_id).values(**values))
        last = rows[-1][0]


def downgrade() -> None:
    if _sqlite():
        for name in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS items_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_items_search_vector")
        op.execute("ALTER TABLE items DROP COLUMN IF EXISTS search_vector")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_language"))
        batch_op.drop_column("language")
        batch_op.drop_column("search_text")
    op.drop_index("ix_matches_watchlist_newest", table_name="matches")
    op.drop_index("ix_matches_newest", table_name="matches")
    for table in ("missed_items", "triage_events", "triage", "api_tokens", "users"):
        op.drop_table(table)
