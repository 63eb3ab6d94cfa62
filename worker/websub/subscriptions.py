"""Keep every feed's WebSub subscription as the plan says: subscribe, renew, lapse back to
polling, unsubscribe when the feed leaves the config. Run by beat (``websub_maintain``);
the hub's answers arrive at the callback (worker/websub/callback.py)."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import structlog

from common.errors import FetchError
from common.guard import check_url, guarded_transport, unwrap_blocked
from feeds.websub import HubLink
from worker.models import PushState
from worker.runtime import Runtime
from worker.store import feeds as feeds_store
from worker.store import push as push_store
from worker.websub import plan
from worker.websub.plan import Action, PushRecord

log = structlog.get_logger(__name__)
HUB_TIMEOUT = 10.0  # seconds for a hub to take a (un)subscription request
CALLBACK_PATH = "/websub/"


@dataclass(frozen=True, slots=True)
class Step:
    feed_id: str
    action: Action
    error: str | None = None


def callback_url(public_url: str, token: str) -> str:
    return f"{public_url}{CALLBACK_PATH}{token}"


def push_enabled(public_url: str, allow_private: bool) -> bool:
    """Hubs can call us back only at a public URL (or anywhere, where private is allowed)."""
    if not public_url:
        return False
    if allow_private:
        return True
    host = urlsplit(public_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True  # a name: the hub resolves it


def maintain(rt: Runtime, now: datetime) -> list[Step]:
    """One pass over every feed a hub names and every subscription held."""
    settings = rt.settings
    on = push_enabled(settings.public_url, settings.allow_private_urls)
    config = rt.config.current()
    wanted = {f.id for f in config.feeds if on and f.enabled and f.type == "rss"}
    with rt.sessions() as session:
        subs, hubs = push_store.every(session), feeds_store.hubs(session)
    steps = []
    for feed_id in sorted(set(subs) | (set(hubs) & wanted)):
        sub, hub = subs.get(feed_id), hubs.get(feed_id)
        action = plan.next_action(sub, hub, feed_id in wanted, now)
        if action is Action.SUBSCRIBE and hub is not None:
            steps.append(Step(feed_id, action, _subscribe(rt, feed_id, sub, hub, now)))
        elif action is Action.UNSUBSCRIBE and sub is not None:
            steps.append(Step(feed_id, action, _unsubscribe(rt, sub, now)))
        elif action is Action.LAPSE and sub is not None:
            why = "the hub did not verify in time" if sub.state == PushState.PENDING else ""
            _fail(rt, sub, why or "the lease ran out before a renewal was verified", now)
            steps.append(Step(feed_id, action))
    return steps


def _subscribe(
    rt: Runtime, feed_id: str, sub: PushRecord | None, hub: HubLink, now: datetime
) -> str | None:
    """Record the request, then send it: the hub may verify before it answers."""
    if plan.renewal(sub, hub) and sub is not None:
        token, secret, state = sub.callback_token, sub.secret, PushState.LIVE
    else:
        token, secret, state = (
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(32),
            PushState.PENDING,
        )
    with rt.sessions.begin() as session:
        push_store.requested(
            session,
            feed_id,
            hub.hub,
            hub.topic,
            token,
            secret,
            state,
            now,
            now + plan.VERIFY_TIMEOUT,
        )
    form = {
        "hub.mode": "subscribe",
        "hub.topic": hub.topic,
        "hub.callback": callback_url(rt.settings.public_url, token),
        "hub.secret": secret,
        "hub.lease_seconds": str(int(rt.settings.push_lease.total_seconds())),
    }
    error = _ask_hub(rt, hub.hub, form)
    if error is None:
        log.info(
            "websub subscription requested",
            feed_id=feed_id,
            hub=hub.hub,
            renewal=state == PushState.LIVE,
        )
        return None
    with rt.sessions.begin() as session:
        current = push_store.of_feed(session, feed_id)
        count = (current.error_count if current else 0) + 1
        push_store.failed(session, feed_id, error, plan.retry_at(count, now), token=token)
        push_store.poll_now(session, feed_id, now)
    log.warning("websub subscription failed", feed_id=feed_id, hub=hub.hub, error=error)
    return error


def _unsubscribe(rt: Runtime, sub: PushRecord, now: datetime) -> str | None:
    with rt.sessions.begin() as session:
        push_store.unsubscribing(session, sub.feed_id, now + plan.VERIFY_TIMEOUT)
    form = {
        "hub.mode": "unsubscribe",
        "hub.topic": sub.topic_url,
        "hub.callback": callback_url(rt.settings.public_url, sub.callback_token),
    }
    error = _ask_hub(rt, sub.hub_url, form) if rt.settings.public_url else "no public URL"
    if error is None:
        log.info("websub unsubscription requested", feed_id=sub.feed_id, hub=sub.hub_url)
        return None
    with rt.sessions.begin() as session:
        errors = push_store.failed(
            session, sub.feed_id, error, plan.retry_at(sub.error_count + 1, now)
        )
        if errors >= plan.UNSUBSCRIBE_ATTEMPTS:
            push_store.delete(session, sub.feed_id)  # its lease will end it at the hub
    log.warning("websub unsubscription failed", feed_id=sub.feed_id, error=error, attempts=errors)
    return error


def _fail(rt: Runtime, sub: PushRecord, error: str, now: datetime) -> None:
    with rt.sessions.begin() as session:
        push_store.failed(session, sub.feed_id, error, plan.retry_at(sub.error_count + 1, now))
        push_store.poll_now(session, sub.feed_id, now)
    log.warning("websub subscription lapsed: polling again", feed_id=sub.feed_id, error=error)


def _ask_hub(rt: Runtime, hub_url: str, form: dict[str, str]) -> str | None:
    """POST a request to a hub (hostile: the feed named it). None when it was accepted."""
    allow_private = rt.settings.allow_private_urls
    try:
        check_url(hub_url, allow_private=allow_private)
        with httpx.Client(
            transport=guarded_transport(allow_private=allow_private),
            timeout=HUB_TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": rt.fetch_limits.user_agent},
        ) as client:
            response = client.post(hub_url, data=form)
    except FetchError as exc:  # BlockedURLError among them
        return f"hub refused: {exc.message}"
    except httpx.HTTPError as exc:
        blocked = unwrap_blocked(exc)
        if blocked is not None:
            return f"hub refused: {blocked}"
        return f"cannot reach the hub: {type(exc).__name__}"
    if 200 <= response.status_code < 300:
        return None
    text = " ".join(response.text[:200].split())
    return f"the hub answered HTTP {response.status_code}: {text}"[:300]
