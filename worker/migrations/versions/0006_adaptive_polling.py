"""feeds: the interval adaptive polling chose, and window overflows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worker.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("poll_interval_s", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("window_overflows", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("last_overflow_at", worker.models.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_column("last_overflow_at")
        batch_op.drop_column("window_overflows")
        batch_op.drop_column("poll_interval_s")
