"""The WebSub plan as pure functions: no database, no hub."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from feeds.websub import HubLink
from worker.models import PushState
from worker.websub import plan
from worker.websub.plan import Action, PushRecord
from worker.websub.subscriptions import push_enabled

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
HUB = HubLink("https://hub.example/", "https://wire.example/feed")
LIVE = PushRecord(
    feed_id="wire",
    hub_url=HUB.hub,
    topic_url=HUB.topic,
    callback_token="t",
    secret="s",
    state=PushState.LIVE,
    next_attempt_at=NOW + timedelta(days=5),
    expires_at=NOW + timedelta(days=6),
    lease_seconds=7 * 86400,
)


def test_a_feed_that_names_a_hub_is_subscribed() -> None:
    assert plan.next_action(None, HUB, True, NOW) == Action.SUBSCRIBE
    assert plan.next_action(None, None, True, NOW) is None
    assert plan.next_action(None, HUB, False, NOW) is None  # no public URL, or not wanted


def test_a_live_subscription_is_renewed_at_80_percent_and_lapses_at_its_end() -> None:
    assert plan.next_action(LIVE, HUB, True, NOW) is None
    assert plan.next_action(LIVE, HUB, True, LIVE.next_attempt_at) == Action.SUBSCRIBE
    assert plan.renewal(LIVE, HUB)
    assert plan.next_action(LIVE, HUB, True, LIVE.expires_at) == Action.LAPSE  # type: ignore[arg-type]
    expires, renew = plan.after_verified(timedelta(days=10), NOW)
    assert (expires, renew) == (NOW + timedelta(days=10), NOW + timedelta(days=8))


def test_a_pending_subscription_the_hub_never_verified_lapses() -> None:
    pending = replace(LIVE, state=PushState.PENDING, next_attempt_at=NOW + plan.VERIFY_TIMEOUT)
    assert plan.next_action(pending, HUB, True, NOW) is None
    assert plan.next_action(pending, HUB, True, NOW + plan.VERIFY_TIMEOUT) == Action.LAPSE


def test_a_failed_one_is_retried_with_backoff() -> None:
    failed = replace(LIVE, state=PushState.FAILED, next_attempt_at=plan.retry_at(1, NOW))
    assert plan.next_action(failed, HUB, True, NOW) is None
    assert plan.next_action(failed, HUB, True, NOW + timedelta(minutes=1)) == Action.SUBSCRIBE
    waits = [plan.retry_at(n, NOW) - NOW for n in (1, 2, 3, 4, 5, 6, 50)]
    assert waits == sorted(waits) and waits[-1] == waits[-2] == timedelta(hours=6)
    assert not plan.renewal(failed, HUB)  # a new callback and secret, not a renewal


def test_a_moved_hub_is_a_new_subscription() -> None:
    moved = HubLink("https://new-hub.example/", HUB.topic)
    assert plan.next_action(LIVE, moved, True, NOW) == Action.SUBSCRIBE
    assert not plan.renewal(LIVE, moved)


def test_a_feed_that_leaves_is_unsubscribed_once_then_retried_when_due() -> None:
    assert plan.next_action(LIVE, HUB, False, NOW) == Action.UNSUBSCRIBE
    assert plan.next_action(LIVE, None, True, NOW) == Action.UNSUBSCRIBE  # names no hub now
    leaving = replace(LIVE, state=PushState.UNSUBSCRIBING, next_attempt_at=NOW + timedelta(1))
    assert plan.next_action(leaving, HUB, False, NOW) is None
    assert plan.next_action(leaving, HUB, False, NOW + timedelta(1)) == Action.UNSUBSCRIBE
    assert plan.next_action(leaving, HUB, True, NOW + timedelta(1)) == Action.SUBSCRIBE  # back


def test_polling_is_a_safety_net_only_while_live() -> None:
    hour, ten = timedelta(hours=1), timedelta(minutes=10)
    assert plan.poll_interval(ten, plan.is_live(LIVE, NOW), hour) == hour
    assert plan.poll_interval(timedelta(hours=3), True, hour) == timedelta(hours=3)
    lapsed = NOW + timedelta(days=7)
    assert plan.poll_interval(ten, plan.is_live(LIVE, lapsed), hour) == ten
    assert not plan.is_live(replace(LIVE, state=PushState.FAILED), NOW)
    assert not plan.is_live(None, NOW)


@pytest.mark.parametrize(
    ("value", "lease"),
    [("3600", 3600), (None, 604800), ("-5", 604800), ("soon", 604800), ("9" * 20, 604800)],
)
def test_the_lease_the_hub_grants(value: str | None, lease: int) -> None:
    asked = timedelta(days=7)
    assert plan.lease_from(value, asked) == timedelta(seconds=lease)


def test_hubs_are_asked_only_where_they_can_call_back() -> None:
    assert not push_enabled("", allow_private=True)
    assert push_enabled("https://watch.example.org", allow_private=False)
    assert not push_enabled("http://127.0.0.1:8080", allow_private=False)
    assert not push_enabled("http://localhost:8080", allow_private=False)
    assert push_enabled("http://127.0.0.1:8080", allow_private=True)
