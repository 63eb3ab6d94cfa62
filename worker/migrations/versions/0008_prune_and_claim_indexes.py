"""Indexes for pruning story bands and for claiming due feeds at scale

``story_bands`` is pruned by ``seen_at`` alone: the (key, seen_at) index can only be read
whole for that. ``feeds`` are claimed by ``next_poll_at``: with 100,000 sources, the due
ones are found by range, not by the configured id list.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_story_bands_seen_at", "story_bands", ["seen_at"])
    op.create_index("ix_feeds_next_poll_at", "feeds", ["next_poll_at"])


def downgrade() -> None:
    op.drop_index("ix_feeds_next_poll_at", table_name="feeds")
    op.drop_index("ix_story_bands_seen_at", table_name="story_bands")
