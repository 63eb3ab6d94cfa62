"""search: finer planner statistics for items.search_vector on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:10:00

With the default statistics target (100) PostgreSQL keeps about 1,000 common lexemes of the
search vector and guesses every other word at about 0.2% of items; for a rare word (0.01%
of a million items) that guess makes it walk the primary key backwards through most of the
table for 50 newest hits (450 ms in ``bench/console.py``) instead of reading the GIN index
(1 ms). A target of 1000 keeps ten times the lexemes and brings the guess close enough that
the planner chooses right for rare and common words alike. SQLite has no such statistics.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATISTICS_TARGET = 1000


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE items ALTER COLUMN search_vector SET STATISTICS {STATISTICS_TARGET}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE items ALTER COLUMN search_vector SET STATISTICS -1")
