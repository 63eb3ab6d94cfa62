"""WebSub: the hub a feed names, and one push subscription per feed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worker.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATES = "'pending', 'live', 'failed', 'unsubscribing'"


def upgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hub_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("topic_url", sa.Text(), nullable=True))
    op.create_table(
        "push_subscriptions",
        sa.Column("feed_id", sa.String(length=64), nullable=False),
        sa.Column("hub_url", sa.Text(), nullable=False),
        sa.Column("topic_url", sa.Text(), nullable=False),
        sa.Column("callback_token", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lease_seconds", sa.Integer(), nullable=True),
        sa.Column("expires_at", worker.models.UTCDateTime(), nullable=True),
        sa.Column("requested_at", worker.models.UTCDateTime(), nullable=False),
        sa.Column("verified_at", worker.models.UTCDateTime(), nullable=True),
        sa.Column("next_attempt_at", worker.models.UTCDateTime(), nullable=False),
        sa.Column("last_push_at", worker.models.UTCDateTime(), nullable=True),
        sa.Column("pushes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refused_pushes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(f"state IN ({STATES})", name="ck_push_subscriptions_state"),
        sa.PrimaryKeyConstraint("feed_id"),
        sa.UniqueConstraint("callback_token"),
    )
    op.create_index(
        "ix_push_subscriptions_next_attempt_at", "push_subscriptions", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_push_subscriptions_next_attempt_at", table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_column("topic_url")
        batch_op.drop_column("hub_url")
