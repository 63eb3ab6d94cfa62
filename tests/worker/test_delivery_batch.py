"""Batch delivery (worker/outbox/batch.py) in-process, on SQLite and PostgreSQL, to a real
loopback receiver: what one batch claims, sends, holds and records."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from alerts.types import Hit, Match
from feeds.sources import FeedSource
from feeds.types import FeedItem
from tests.helpers.configdir import write_config
from tests.helpers.http import Reply, WebhookReceiver
from tests.helpers.smtp import SMTPServer
from tests.worker.guarantees import SECRET
from worker.models import ChannelState, Delivery, DeliveryStatus, Story, utcnow
from worker.outbox import store as outbox
from worker.outbox.batch import deliver_batch
from worker.outbox.transitions import Claim, RowState, transition
from worker.planning import Plan
from worker.runtime import Runtime, build_runtime
from worker.settings import load_settings
from worker.store import feeds, items

pytestmark = pytest.mark.timeout(60)
WATCHLIST = {"id": "wl", "title": "Missiles", "query": "missile", "channels": ["hook"]}


@dataclass
class Stack:
    rt: Runtime
    hook: WebhookReceiver
    made: int = 0

    def seed(self, count: int, channel: str = "hook") -> list[str]:
        """``count`` alerts, one story each, one delivery each to ``channel``, oldest first."""
        ids = []
        with self.rt.sessions.begin() as s:
            for _ in range(count):
                self.made += 1
                n, now = self.made, utcnow() + timedelta(microseconds=self.made)
                title = f"Missile test {n}"
                fresh = FeedItem(f"g{n}", title, f"https://n.example/{n}", "s", now, f"{n:064x}")
                [(item_id, _)] = items.insert_new(s, "wire", [fresh], now)
                story = Story(first_seen=now, last_seen=now, title=title, signature="")
                s.add(story)
                s.flush()
                s.execute(
                    sa.text("UPDATE items SET story_id = :s WHERE id = :i"),
                    {"s": story.id, "i": item_id},
                )
                hit = Hit(term="missile", field="title", start=0, end=7, snippet="Missile")
                match = Match(watchlist_id="wl", hits=(hit,), snippet=title)
                match_id = outbox.insert_alert(s, item_id, story.id, "", "high", match, now)
                plans = {channel: Plan(DeliveryStatus.PENDING, now)}
                ids += outbox.insert_deliveries(s, plans, now, match_id=match_id)
        assert len(ids) == count  # each due now
        return ids

    def statuses(self) -> dict[str, str]:
        with self.rt.sessions() as s:
            rows = s.execute(sa.select(Delivery.id, Delivery.status))
            return {str(i): str(status) for i, status in rows}


def make_stack(
    tmp_path: Path,
    db_url: str,
    hook: WebhookReceiver,
    more: Sequence[dict[str, Any]] = (),
    **channel: Any,
) -> Stack:
    entry = {"id": "hook", "type": "webhook", "url": hook.url, "secret": SECRET, **channel}
    config_dir = write_config(
        tmp_path / "config",
        feeds=[{"id": "wire", "url": "http://127.0.0.1:9/feed"}],
        watchlists={"watchlists": [WATCHLIST]},
        channels=[entry, {"id": "console", "type": "log"}, *more],
    )
    settings = replace(
        load_settings(), config_dir=config_dir, database_url=db_url, allow_private_urls=True
    )
    rt = build_runtime(settings)
    with rt.sessions.begin() as s:
        feeds.sync(s, [FeedSource(id="wire", url="http://127.0.0.1:9/feed")], utcnow())
    return Stack(rt, hook)


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(keep_alive=True) as receiver:
        yield receiver


@pytest.fixture
def stack(tmp_path: Path, engine: sa.Engine, db_url: str, hook: WebhookReceiver) -> Iterator[Stack]:
    built = make_stack(tmp_path, db_url, hook)
    yield built
    built.rt.close()


def webhook_ids(hook: WebhookReceiver) -> list[str]:
    return [r.headers["webhook-id"] for r in hook.requests]


def test_a_batch_sends_each_once_over_kept_alive_connections_and_records_all(stack: Stack) -> None:
    ids = stack.seed(40)
    result = deliver_batch(stack.rt, ids)
    assert sorted(o.status for o in result.outcomes) == ["sent"] * 40 and not result.enqueue
    assert sorted(webhook_ids(stack.hook)) == sorted(ids)  # each once, by its own id
    for request in stack.hook.requests:
        Webhook(SECRET).verify(request.body, request.headers)
    assert len({r.peer for r in stack.hook.requests}) <= 4  # concurrency 4: 4 connections
    assert set(stack.statuses().values()) == {"sent"}
    again = deliver_batch(stack.rt, ids)  # a redelivered message: nothing is sent twice
    assert {o.status for o in again.outcomes} <= {"skipped"} and len(stack.hook.requests) == 40
    with stack.rt.sessions() as s:
        state = s.get(ChannelState, "hook")
        assert state is not None and state.error_count == 0 and state.last_success_at


def test_concurrency_one_sends_a_channel_in_creation_order(
    tmp_path: Path, engine: sa.Engine, db_url: str, hook: WebhookReceiver
) -> None:
    stack = make_stack(tmp_path, db_url, hook, concurrency=1)
    ids = stack.seed(15)
    deliver_batch(stack.rt, list(reversed(ids)))  # the message's order does not matter
    assert webhook_ids(hook) == ids
    assert len({r.peer for r in hook.requests}) == 1  # one connection carried all 15
    stack.rt.close()


def test_one_failure_in_a_batch_retries_alone_and_counts_as_the_channel_saw_it(
    stack: Stack,
) -> None:
    stack.hook.script(Reply(200), Reply(500, headers={"Retry-After": "1"}))
    ids = stack.seed(6)
    channel = stack.rt.config.current().channels["hook"]
    assert channel.concurrency == 4
    result = deliver_batch(stack.rt, ids)
    statuses = sorted(o.status for o in result.outcomes)
    assert statuses == ["failed"] + ["sent"] * 5
    [failed] = [o for o in result.outcomes if o.status == "failed"]
    assert failed.retry_in is not None and failed.error and "HTTP 500" in failed.error
    assert stack.statuses()[failed.row_id] == "failed"
    due = utcnow() + failed.retry_in + timedelta(seconds=1)
    retried = deliver_batch(stack.rt, [failed.row_id], due)
    assert [o.status for o in retried.outcomes] == ["sent"]
    assert webhook_ids(stack.hook).count(failed.row_id) == 2  # the same id, twice
    assert len(set(webhook_ids(stack.hook))) == 6


def test_a_rate_limit_sends_what_its_window_allows_and_holds_the_rest_for_one_release(
    tmp_path: Path, engine: sa.Engine, db_url: str, hook: WebhookReceiver
) -> None:
    stack = make_stack(tmp_path, db_url, hook, rate_limit="3/1m")
    ids = stack.seed(10)
    result = deliver_batch(stack.rt, ids)
    assert sorted(o.status for o in result.outcomes) == ["held"] * 7 + ["sent"] * 3
    assert webhook_ids(hook) == ids[:3] or sorted(webhook_ids(hook)) == sorted(ids[:3])
    with stack.rt.sessions() as s:
        held = s.execute(sa.select(Delivery.next_attempt_at).where(Delivery.status == "held"))
        assert len({at for (at,) in held}) == 1  # one release time: one grouped message
    more = stack.seed(2)
    assert sorted(o.status for o in deliver_batch(stack.rt, more).outcomes) == ["held"] * 2
    stack.rt.close()


def test_a_batch_claims_no_more_of_a_channel_than_it_can_send_within_half_the_lease(
    tmp_path: Path, engine: sa.Engine, db_url: str, hook: WebhookReceiver
) -> None:
    stack = make_stack(tmp_path, db_url, hook, concurrency=2, timeout="60s")
    ids = stack.seed(12)  # lease 300 s: 2 lanes x 2 sends of 60 s = 4 per batch
    result = deliver_batch(stack.rt, ids)
    assert [o.status for o in result.outcomes] == ["sent"] * 4
    assert result.enqueue == ids[4:]  # left, oldest first, for the next batch message
    assert sorted(webhook_ids(hook)) == sorted(ids[:4])
    assert list(stack.statuses().values()).count("pending") == 8
    stack.rt.close()


def test_two_workers_on_one_batch_send_each_alert_once(stack: Stack) -> None:
    ids = stack.seed(30)
    other = build_runtime(stack.rt.settings)
    outcomes: list[list[str]] = []

    def run(rt: Runtime) -> None:
        outcomes.append([o.status for o in deliver_batch(rt, ids).outcomes])

    threads = [threading.Thread(target=run, args=(rt,)) for rt in (stack.rt, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(webhook_ids(stack.hook)) == sorted(ids)  # none twice, none lost
    assert sum(statuses.count("sent") for statuses in outcomes) == 30
    assert set(stack.statuses().values()) == {"sent"}
    other.close()


def test_claim_many_is_the_pure_claim_transition_in_sql(stack: Stack) -> None:
    ids = stack.seed(3)
    now, lease = utcnow(), stack.rt.settings.delivery_lease
    with stack.rt.sessions.begin() as s:
        before = {
            row.id: row.state
            for row in (outbox.load(s, outbox.Kind.DELIVERY, i) for i in ids)
            if row
        }
        claimed = outbox.claim_many(s, ids, now, lease)
        assert [row.id for row in claimed] == ids  # oldest first
        for row in claimed:
            expected = transition(before[row.id], Claim(lease), now, outbox.RetryPolicy())
            assert row.state == expected
        assert outbox.claim_many(s, ids, now, lease) == []  # taken: not claimable again
    assert isinstance(before[ids[0]], RowState)


# --- email: kept SMTP sessions (alerts/channels/smtp_pool.py) ------------------------------


def mail_entry(server: SMTPServer, **extra: Any) -> dict[str, Any]:
    # 30 s a step, 60 s a send at worst: a batch takes 3 lanes x 2 sends within half the lease
    smtp = {"host": server.host, "port": server.port, "security": "none", "timeout": "30s"}
    return {"id": "mail", "type": "email", "to": ["desk@example.org"], "from": "w@example.org"} | {
        "smtp": smtp,
        **extra,
    }


def mail_ids(server: SMTPServer) -> list[str]:
    """The delivery id of each message received, from its Message-ID."""
    return [
        m.parsed()["Message-ID"].strip("<>").removesuffix("@watchfloor") for m in server.messages
    ]


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def mail_stack(
    tmp_path: Path, engine: sa.Engine, db_url: str, hook: WebhookReceiver, smtp: SMTPServer
) -> Iterator[Stack]:
    built = make_stack(tmp_path, db_url, hook, more=[mail_entry(smtp, concurrency=3)])
    yield built
    built.rt.close()


def test_batches_of_emails_go_over_at_most_concurrency_sessions_each_once(
    mail_stack: Stack, smtp: SMTPServer
) -> None:
    ids = mail_stack.seed(24, channel="mail")
    left, batches, statuses = ids, 0, []
    while left:  # 6 a batch: 3 lanes x 2 sends of 60 s (2 x the step timeout) in half the lease
        result = deliver_batch(mail_stack.rt, left)
        statuses += [o.status for o in result.outcomes]
        left, batches = result.enqueue, batches + 1
    assert statuses == ["sent"] * 24 and batches == 4
    assert sorted(mail_ids(smtp)) == sorted(ids)  # each once, by its own Message-ID
    assert 1 <= smtp.connections <= 3  # concurrency 3, and later batches reuse the sessions
    assert set(mail_stack.statuses().values()) == {"sent"}


def test_sessions_cut_between_batches_are_replaced_and_each_email_sent_once(
    mail_stack: Stack, smtp: SMTPServer
) -> None:
    first = mail_stack.seed(6, channel="mail")
    assert {o.status for o in deliver_batch(mail_stack.rt, first).outcomes} == {"sent"}
    kept = smtp.connections
    smtp.restart()  # every kept session ends; the channel does not know yet
    second = mail_stack.seed(6, channel="mail")
    assert {o.status for o in deliver_batch(mail_stack.rt, second).outcomes} == {"sent"}
    assert sorted(mail_ids(smtp)) == sorted(first + second)  # none twice, none lost
    assert kept < smtp.connections <= 2 * kept
    with mail_stack.rt.sessions() as s:
        state = s.get(ChannelState, "mail")
        assert state is not None and state.error_count == 0


def test_an_email_whose_answer_was_lost_after_data_fails_and_goes_again_later_with_its_id(
    mail_stack: Stack, smtp: SMTPServer
) -> None:
    [warm] = mail_stack.seed(1, channel="mail")
    deliver_batch(mail_stack.rt, [warm])  # leaves a kept session
    smtp.drop("DATA")  # the server keeps the next message, but hangs up before answering
    [lost] = mail_stack.seed(1, channel="mail")
    [failed] = deliver_batch(mail_stack.rt, [lost]).outcomes
    assert failed.status == "failed" and failed.retry_in is not None
    assert mail_ids(smtp) == [warm, lost]  # not resent on the same send
    due = utcnow() + failed.retry_in + timedelta(seconds=1)
    assert [o.status for o in deliver_batch(mail_stack.rt, [lost], due).outcomes] == ["sent"]
    assert mail_ids(smtp) == [warm, lost, lost]  # the outbox's retry: the same Message-ID
