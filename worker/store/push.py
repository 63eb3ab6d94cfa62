"""Push subscriptions (WebSub): one row per feed a hub pushes, or is asked to."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from worker.models import Feed, PushState, PushSubscription
from worker.store import ERROR_MAX
from worker.websub.plan import PushRecord


def _record(row: PushSubscription) -> PushRecord:
    return PushRecord(
        feed_id=row.feed_id,
        hub_url=row.hub_url,
        topic_url=row.topic_url,
        callback_token=row.callback_token,
        secret=row.secret,
        state=PushState(row.state),
        next_attempt_at=row.next_attempt_at,
        expires_at=row.expires_at,
        lease_seconds=row.lease_seconds,
        error_count=row.error_count,
        last_error=row.last_error,
        pushes=row.pushes,
        refused_pushes=row.refused_pushes,
    )


def every(session: Session) -> dict[str, PushRecord]:
    rows = session.scalars(select(PushSubscription).order_by(PushSubscription.feed_id))
    return {row.feed_id: _record(row) for row in rows}


def of_feed(session: Session, feed_id: str) -> PushRecord | None:
    row = session.get(PushSubscription, feed_id, populate_existing=True)
    return None if row is None else _record(row)


def of_feeds(session: Session, feed_ids: Collection[str]) -> dict[str, PushRecord]:
    """The subscriptions of these feeds, in one read (a poll batch's safety-net check)."""
    if not feed_ids:
        return {}
    query = select(PushSubscription).where(PushSubscription.feed_id.in_(list(feed_ids)))
    return {row.feed_id: _record(row) for row in session.scalars(query)}


def by_token(session: Session, token: str) -> PushRecord | None:
    row = session.scalar(
        select(PushSubscription).where(PushSubscription.callback_token == token[:64])
    )
    return None if row is None else _record(row)


def requested(
    session: Session,
    feed_id: str,
    hub_url: str,
    topic_url: str,
    token: str,
    secret: str,
    state: PushState,
    now: datetime,
    wait_until: datetime,
) -> None:
    """Record a (re)subscription before it is sent: the hub may verify it before its
    answer to the request arrives."""
    row = session.get(PushSubscription, feed_id)
    if row is None:
        row = PushSubscription(feed_id=feed_id, error_count=0, pushes=0, refused_pushes=0)
        session.add(row)
    row.hub_url, row.topic_url = hub_url, topic_url
    row.callback_token, row.secret, row.state = token, secret, state.value
    row.requested_at, row.next_attempt_at = now, wait_until


def verified(
    session: Session,
    token: str,
    lease_seconds: int,
    now: datetime,
    expires_at: datetime,
    renew_at: datetime,
) -> bool:
    """The hub confirmed a subscription: it is live until ``expires_at``."""
    row = session.scalar(select(PushSubscription).where(PushSubscription.callback_token == token))
    if row is None or row.state == PushState.UNSUBSCRIBING:
        return False
    row.state, row.lease_seconds, row.expires_at = PushState.LIVE.value, lease_seconds, expires_at
    row.verified_at, row.next_attempt_at = now, renew_at
    row.error_count, row.last_error = 0, None
    return True


def failed(
    session: Session, feed_id: str, error: str, retry_at: datetime, token: str | None = None
) -> int:
    """A refused, denied or lapsed subscription: polled as usual until the retry. With
    ``token``, only if the row still belongs to that request. Returns the error count."""
    row = session.get(PushSubscription, feed_id)
    if row is None or (token is not None and row.callback_token != token):
        return 0
    if row.state != PushState.UNSUBSCRIBING:
        row.state = PushState.FAILED.value
    row.error_count += 1
    row.last_error, row.next_attempt_at = error[:ERROR_MAX], retry_at
    return row.error_count


def unsubscribing(session: Session, feed_id: str, wait_until: datetime) -> None:
    row = session.get(PushSubscription, feed_id)
    if row is not None:
        row.state, row.next_attempt_at = PushState.UNSUBSCRIBING.value, wait_until


def delete(session: Session, feed_id: str) -> None:
    row = session.get(PushSubscription, feed_id)
    if row is not None:
        session.delete(row)


def pushed(session: Session, token: str, now: datetime, refused: str | None) -> None:
    """Count a push; a refused one also leaves its reason."""
    row = session.scalar(select(PushSubscription).where(PushSubscription.callback_token == token))
    if row is None:
        return
    if refused is None:
        row.pushes += 1
        row.last_push_at = now
    else:
        row.refused_pushes += 1
        row.last_error = f"push refused: {refused}"[:ERROR_MAX]


def poll_now(session: Session, feed_id: str, now: datetime) -> None:
    """Fall back to polling at once: the safety-net interval no longer holds."""
    session.execute(
        update(Feed).where(Feed.id == feed_id, Feed.next_poll_at > now).values(next_poll_at=now)
    )
