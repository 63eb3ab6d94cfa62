"""outbox state machine: status CHECKs, ops events, typed story keys, member signatures

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:30:00

- ``deliveries.status`` and ``digests.status`` may hold only a DeliveryStatus value.
- ``ops_events``: a failing feed or channel, told through the outbox like any alert; a
  delivery points at a match or at an ops event, never both.
- ``matches.story_key`` ("story:7", "story:7:official") becomes ``story_id`` and
  ``update_kind``; the unique (watch-list, story, update) keeps one alert per story.
- ``items.signature``: each member's story signature, so a new item meets every member.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worker.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = (
    "pending",
    "digest",
    "held",
    "batched",
    "sending",
    "failed",
    "sent",
    "dead",
    "silenced",
)
STATUS_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"


def upgrade() -> None:
    op.create_table(
        "ops_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=140), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", worker.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column(
            "match_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch_op.add_column(
            sa.Column(
                "ops_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.create_foreign_key(
            "fk_deliveries_ops_event_id",
            "ops_events",
            ["ops_event_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(
            "uq_deliveries_ops_channel", ["ops_event_id", "channel_id"]
        )
        batch_op.create_check_constraint("ck_deliveries_status", STATUS_CHECK)
        batch_op.create_check_constraint(
            "ck_deliveries_one_source", "(match_id IS NULL) <> (ops_event_id IS NULL)"
        )
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.create_check_constraint("ck_digests_status", STATUS_CHECK)

    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("story_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("update_kind", sa.String(length=32), nullable=False, server_default="")
        )
    _split_story_keys()
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_constraint("uq_matches_story", type_="unique")
        batch_op.drop_column("story_key")
        batch_op.alter_column("update_kind", server_default=None)
        batch_op.create_unique_constraint(
            "uq_matches_story", ["watchlist_id", "story_id", "update_kind"]
        )
        batch_op.create_index(batch_op.f("ix_matches_story_id"), ["story_id"], unique=False)

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature", sa.Text(), nullable=True))


def _split_story_keys() -> None:
    """``story:ID[:UPDATE]`` to (ID, UPDATE); an old ``item:ID`` key takes the item's story."""
    conn = op.get_bind()
    matches = sa.table(
        "matches",
        sa.column("id", sa.BigInteger),
        sa.column("item_id", sa.BigInteger),
        sa.column("story_key", sa.String),
        sa.column("story_id", sa.BigInteger),
        sa.column("update_kind", sa.String),
    )
    items = sa.table("items", sa.column("id", sa.BigInteger), sa.column("story_id", sa.BigInteger))
    rows = conn.execute(sa.select(matches.c.id, matches.c.item_id, matches.c.story_key)).all()
    for match_id, item_id, key in rows:
        kind, _, rest = key.partition(":")
        ident, _, update = rest.partition(":")
        if kind == "story" and ident.isdigit():
            story_id: int | None = int(ident)
        else:
            story_id = conn.scalar(sa.select(items.c.story_id).where(items.c.id == item_id))
        conn.execute(
            matches.update()
            .where(matches.c.id == match_id)
            .values(story_id=story_id, update_kind=update)
        )


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("signature")
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matches_story_id"))
        batch_op.drop_constraint("uq_matches_story", type_="unique")
        batch_op.add_column(
            sa.Column("story_key", sa.String(length=64), nullable=False, server_default="")
        )
    op.execute(
        "UPDATE matches SET story_key = 'story:' || CAST(story_id AS VARCHAR)"
        " || CASE WHEN update_kind = '' THEN '' ELSE ':' || update_kind END"
    )
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_column("update_kind")
        batch_op.drop_column("story_id")
        batch_op.create_unique_constraint("uq_matches_story", ["watchlist_id", "story_key"])
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.drop_constraint("ck_digests_status", type_="check")
    op.execute("DELETE FROM deliveries WHERE ops_event_id IS NOT NULL")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("ck_deliveries_one_source", type_="check")
        batch_op.drop_constraint("ck_deliveries_status", type_="check")
        batch_op.drop_constraint("uq_deliveries_ops_channel", type_="unique")
        batch_op.drop_constraint("fk_deliveries_ops_event_id", type_="foreignkey")
        batch_op.drop_column("ops_event_id")
        batch_op.alter_column(
            "match_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
    op.drop_table("ops_events")
