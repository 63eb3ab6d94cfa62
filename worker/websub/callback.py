"""The callback a hub calls: its verification of intent (GET) and its pushes (POST).
Everything here is hostile input until a subscription's secret signs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from common.errors import FetchError
from feeds.fetch import read_pushed
from feeds.websub import signature_problem
from worker import pipeline
from worker.models import PushState
from worker.runtime import Runtime
from worker.store import push as push_store
from worker.websub import plan

log = structlog.get_logger(__name__)
MAX_CHALLENGE = 1024


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    text: str
    delivery_ids: tuple[str, ...] = ()  # to enqueue once committed


def verify_intent(rt: Runtime, token: str, args: Mapping[str, str], now: datetime) -> Answer:
    """Echo the challenge for a (un)subscription we asked for; refuse any other."""
    mode, topic = args.get("hub.mode", ""), args.get("hub.topic", "")
    challenge = args.get("hub.challenge", "")
    with rt.sessions.begin() as session:
        sub = push_store.by_token(session, token)
        if sub is None:
            return Answer(404, "no such subscription")
        if mode == "denied":
            reason = " ".join(args.get("hub.reason", "no reason given")[:200].split())
            errors = sub.error_count + 1
            push_store.failed(
                session, sub.feed_id, f"the hub denied it: {reason}", plan.retry_at(errors, now)
            )
            push_store.poll_now(session, sub.feed_id, now)
            log.warning("websub subscription denied", feed_id=sub.feed_id, reason=reason)
            return Answer(200, "noted")
        if topic != sub.topic_url or not challenge or len(challenge) > MAX_CHALLENGE:
            return Answer(404, "not a request of ours")
        if mode == "subscribe" and sub.state in (PushState.PENDING, PushState.LIVE):
            lease = plan.lease_from(args.get("hub.lease_seconds"), rt.settings.push_lease)
            expires_at, renew_at = plan.after_verified(lease, now)
            seconds = int(lease.total_seconds())
            push_store.verified(session, token, seconds, now, expires_at, renew_at)
            log.info("websub subscription live", feed_id=sub.feed_id, lease_seconds=seconds)
            return Answer(200, challenge)
        if mode == "unsubscribe" and sub.state == PushState.UNSUBSCRIBING:
            push_store.delete(session, sub.feed_id)
            log.info("websub unsubscribed", feed_id=sub.feed_id)
            return Answer(200, challenge)
    return Answer(404, "not a request of ours")


def receive_push(
    rt: Runtime,
    token: str,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime,
) -> Answer:
    """Take in a signed push; acknowledge but drop an unsigned or badly signed one (the
    spec: a subscriber answers 2xx and ignores it locally, so the hub does not retry)."""
    with rt.sessions() as session:
        sub = push_store.by_token(session, token)
    if sub is None or sub.state == PushState.UNSUBSCRIBING:
        return Answer(410, "no such subscription")  # 410 Gone: the hub stops pushing
    problem = signature_problem(headers.get("X-Hub-Signature"), sub.secret, body)
    if problem is None:
        try:
            body = read_pushed(body, headers.get("Content-Encoding", ""), rt.fetch_limits)
        except FetchError as exc:
            problem = exc.message
    if problem is not None:
        with rt.sessions.begin() as session:
            push_store.pushed(session, token, now, refused=problem)
        log.warning("websub push refused", feed_id=sub.feed_id, reason=problem, bytes=len(body))
        return Answer(202, "ignored")
    outcome = pipeline.ingest_push(rt, sub.feed_id, body, headers.get("Content-Type") or None, now)
    with rt.sessions.begin() as session:
        push_store.pushed(session, token, now, refused=outcome.error)
    return Answer(202, "accepted", tuple(outcome.delivery_ids))
