"""Batched polling: which feeds the config holds, and the items a feed's last poll carried

``feeds.active`` is false for a feed the config no longer holds (or disables): poll workers
claim due feeds by ``next_poll_at`` in batches, without the configured id list. ``feeds.
item_digests`` holds the digests of the item elements of the feed's last document
(``feeds.parse``): the next poll skips those before parsing. ``ix_story_bands_key_seen``
goes: the primary key (key, story_id) serves the candidate lookup by key as well, and every
new story writes some 45 band rows, each of which cost one more B-tree insert for it (2.3x
the insert time on SQLite, measured).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("item_digests", sa.Text(), nullable=True))
    op.drop_index("ix_story_bands_key_seen", table_name="story_bands")


def downgrade() -> None:
    op.create_index("ix_story_bands_key_seen", "story_bands", ["key", "seen_at"])
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("item_digests")
        batch.drop_column("active")
