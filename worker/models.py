"""SQLAlchemy 2.0 typed models: the database is the truth, the broker only a doorbell."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryStatus(StrEnum):
    """Where an outbox row (a delivery or a digest) stands; see worker/outbox/transitions.py.

    pending ─claim─▶ sending ─sent─▶ sent
       ▲               │ └─failed─▶ failed ─(due)─claim─▶ sending ...   (or dead, when spent)
       │               └─over the rate limit─▶ held ─batch─▶ batched ─(its digest)─▶ sent|dead
    digest ─batch─▶ batched          silenced (never sent)      dead ─requeue─▶ pending
    """

    PENDING = "pending"  # due at next_attempt_at (quiet hours set it later)
    DIGEST = "digest"  # waits for its digest window to close (next_attempt_at)
    HELD = "held"  # over the channel's rate limit: goes out grouped at next_attempt_at
    BATCHED = "batched"  # joined a digest row, which is sent in its place
    SENDING = "sending"  # claimed by a worker at claimed_at
    FAILED = "failed"  # an attempt failed; the next is due at next_attempt_at
    SENT = "sent"
    DEAD = "dead"  # no attempt left; `watchfloor deliveries retry` sends it again
    SILENCED = "silenced"  # recorded, never sent


def status_check(table: str) -> CheckConstraint:
    values = ", ".join(f"'{s.value}'" for s in DeliveryStatus)
    return CheckConstraint(f"status IN ({values})", name=f"ck_{table}_status")


class StatusType(TypeDecorator[DeliveryStatus]):
    """A status column: plain text in the database, a DeliveryStatus in Python."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else DeliveryStatus(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> DeliveryStatus | None:
        return None if value is None else DeliveryStatus(value)


class Base(DeclarativeBase):
    pass


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)  # current URL (301/308 update it)
    config_url: Mapped[str] = mapped_column(Text)  # URL as written in feeds.yaml
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # adaptive polling (worker/planning.py): the interval the last poll chose, in seconds,
    # and how often the feed's window overflowed (items may have been missed)
    poll_interval_s: Mapped[int | None] = mapped_column(Integer)
    window_overflows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_overflow_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # WebSub (worker/websub/): the hub and topic the feed's last full fetch named, if any
    hub_url: Mapped[str | None] = mapped_column(Text)
    topic_url: Mapped[str | None] = mapped_column(Text)
    # batched polling (migration 0009): false once the config no longer holds the feed or
    # disables it, so claims skip it; the digests of the last document's items, which the
    # next poll skips before parsing (feeds.parse), space-separated
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    item_digests: Mapped[str | None] = mapped_column(Text)


class PushState(StrEnum):
    """A WebSub subscription's state (worker/websub/plan.py decides each step).

    (no row: none) ─subscribe─▶ pending ─hub verifies─▶ live ─lease nears its end─▶ renewed
        pending|live ─refused, denied, lapsed─▶ failed ─backoff─▶ pending ...
        feed left the config ─▶ unsubscribing ─hub verifies─▶ (row deleted)
    """

    PENDING = "pending"  # asked the hub; waiting for its verification of intent
    LIVE = "live"  # verified: the hub pushes, polling is a slow safety net
    FAILED = "failed"  # refused, denied or lapsed: polled as usual, retried with backoff
    UNSUBSCRIBING = "unsubscribing"  # the feed left the config; the hub is being told


class PushSubscription(Base):
    __tablename__ = "push_subscriptions"
    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s.value}'" for s in PushState) + ")",
            name="ck_push_subscriptions_state",
        ),
        Index("ix_push_subscriptions_next_attempt_at", "next_attempt_at"),
    )

    feed_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hub_url: Mapped[str] = mapped_column(Text)
    topic_url: Mapped[str] = mapped_column(Text)
    # the callback's path segment: unguessable, new on every (re)subscription
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    # the HMAC key the hub signs pushes with; it must be kept in clear to check them
    secret: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_push_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pushes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refused_pushes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("feed_id", "guid", name="uq_items_feed_guid"),
        Index("ix_items_feed_url", "feed_id", "canonical_url"),
        Index("ix_items_fetched_at", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    guid: Mapped[str] = mapped_column(Text)
    canonical_url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fingerprint: Mapped[str] = mapped_column(String(64))
    story_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # feeds.story.to_json of this item: a new item is compared with every member of a story
    signature: Mapped[str | None] = mapped_column(Text)
    # alerts.search.index_text: what the console's full-text index holds (FTS5 / tsvector)
    search_text: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8), index=True)  # alerts.search.language


class MatchRow(Base):
    """One alert: unique per (watch-list, story, update), so a story alerts once per
    watch-list, and each of its update alerts (``alerts.updates``) at most once more."""

    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("watchlist_id", "story_id", "update_kind", name="uq_matches_story"),
        Index("ix_matches_newest", "created_at", "id"),  # the console's keyset pagination
        Index("ix_matches_watchlist_newest", "watchlist_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    watchlist_id: Mapped[str] = mapped_column(String(64))
    story_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # "" for the story's first alert, else the update: "official", "sources-5"
    update_kind: Mapped[str] = mapped_column(String(32), default="")
    severity: Mapped[str] = mapped_column(String(16))
    hits: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    snippet: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxColumns:
    """The row protocol every outbox table shares (deliveries, digests): its id is the
    idempotency key; its status moves only by worker/outbox/transitions.py."""

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[DeliveryStatus] = mapped_column(StatusType, default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(OutboxColumns, Base):
    """One alert to one channel: of a match, or of an ops event (a failing feed or channel)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("match_id", "channel_id", name="uq_deliveries_match_channel"),
        UniqueConstraint("ops_event_id", "channel_id", name="uq_deliveries_ops_channel"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        status_check("deliveries"),
        CheckConstraint(
            "(match_id IS NULL) <> (ops_event_id IS NULL)", name="ck_deliveries_one_source"
        ),
    )

    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"))
    ops_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("ops_events.id", ondelete="CASCADE", name="fk_deliveries_ops_event_id")
    )
    digest_id: Mapped[str | None] = mapped_column(
        ForeignKey("digests.id", name="fk_deliveries_digest_id"), index=True
    )


class DigestRow(OutboxColumns, Base):
    """Several deliveries of one channel sent as one message; its id is the idempotency key.

    Deliveries join a digest in the same UPDATE that creates it, so each is in exactly one.
    """

    __tablename__ = "digests"
    __table_args__ = (Index("ix_digests_due", "status", "next_attempt_at"), status_check("digests"))

    reason: Mapped[str] = mapped_column(String(16))  # "digest" or "rate-limit"
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)


class OpsEvent(Base):
    """Something an operator must hear of (a feed failing for hours, a channel failing),
    written in the transaction that records the error; its deliveries go out as alerts.
    ``key`` names the episode, so one failure is told once."""

    __tablename__ = "ops_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(140))  # "feed wire", "channel hook"
    title: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Silence(Base):
    """While active, matches of a watch-list (on one channel, or all) are recorded, not sent."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    watchlist_id: Mapped[str] = mapped_column(String(64), index=True)
    channel_id: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelState(Base):
    __tablename__ = "channel_state"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)


class Heartbeat(Base):
    """Timestamps written by singleton roles (beat) so health checks can see them."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Story(Base):
    """Near-duplicate items across feeds within a window: one story, one alert per watch-list."""

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    title: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)  # feeds.story.to_json


class StoryBand(Base):
    """LSH band keys of a story's signature: an indexed equality lookup (the primary key,
    which leads with ``key``) finds candidates."""

    __tablename__ = "story_bands"
    __table_args__ = (
        Index("ix_story_bands_seen_at", "seen_at"),  # pruning (migration 0008)
    )

    key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    story_id: Mapped[int] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True
    )
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


ROLES = ("viewer", "analyst", "admin")


class User(Base):
    """A console login. ``auth_epoch`` grows when the password changes: older sessions end."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'analyst', 'admin')", name="ck_users_role"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, never the password
    auth_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for the API and Atom feeds; only its SHA-256 is kept (it is random)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Triage(Base):
    """An alert's current triage state; its history is in ``triage_events``."""

    __tablename__ = "triage"

    match_id: Mapped[int] = mapped_column(
        ForeignKey("matches.id", ondelete="CASCADE"), primary_key=True
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_triage_acknowledged_by")
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_triage_assignee_id"), index=True
    )
    false_positive: Mapped[bool] = mapped_column(default=False)
    false_positive_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TriageEvent(Base):
    """Who did what to an alert, and when: acknowledge, assign, false positive, comment."""

    __tablename__ = "triage_events"
    __table_args__ = (Index("ix_triage_events_match", "match_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MissedItem(Base):
    """An item an analyst flagged as one a watch-list should have alerted on."""

    __tablename__ = "missed_items"
    __table_args__ = (UniqueConstraint("item_id", "watchlist_id", name="uq_missed_items"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    watchlist_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
