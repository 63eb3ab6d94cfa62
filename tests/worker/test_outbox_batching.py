"""The pure decisions of a delivery batch (worker/outbox/batching.py), without a database."""

from __future__ import annotations

from datetime import timedelta

from worker.outbox.batching import (
    FailedAt,
    Succeeded,
    allowed_now,
    channel_cap,
    channel_steps,
    may_start,
    pick,
)

LEASE = timedelta(minutes=5)


def test_a_channel_cap_fits_half_the_lease_when_every_send_times_out() -> None:
    assert channel_cap(4, 10.0, LEASE) == 60  # 15 sends of 10 s per lane, 4 lanes: 150 s
    assert channel_cap(1, 30.0, LEASE) == 5
    assert channel_cap(2, 600.0, LEASE) == 2  # a send longer than the lease: one per lane


def test_pick_takes_each_channel_up_to_its_cap_in_order_and_leaves_the_rest() -> None:
    candidates = [("a1", "a"), ("b1", "b"), ("a2", "a"), ("a3", "a"), ("b2", "b")]
    assert pick(candidates, {"a": 2, "b": 5}) == (["a1", "b1", "a2", "b2"], ["a3"])
    assert pick([], {"a": 1}) == ([], [])


def test_pick_takes_no_more_channels_than_there_are_sending_lanes() -> None:
    candidates = [("a1", "a"), ("b1", "b"), ("c1", "c"), ("a2", "a"), ("d1", "d")]
    caps, widths = {"a": 5, "b": 5, "c": 5, "d": 5}, {"a": 2, "b": 1, "c": 2, "d": 1}
    # 4 lanes: a (2) and b (1) fit, c (2) does not, d (1) still does
    assert pick(candidates, caps, widths, 4) == (["a1", "b1", "a2", "d1"], ["c1"])
    assert pick([("a1", "a")], caps, {"a": 8}, 4) == (["a1"], [])  # the first always goes
    assert pick(candidates, caps) == ([c[0] for c in candidates], [])


def test_a_send_may_start_only_while_it_can_end_within_half_the_lease() -> None:
    assert may_start(0.0, 10.0, LEASE) and may_start(140.0, 10.0, LEASE)
    assert not may_start(141.0, 10.0, LEASE)  # 141 + 10 s > 150 s
    # a timeout over half the lease: sends start only in the lease's first tenth
    assert may_start(30.0, 600.0, LEASE) and not may_start(31.0, 600.0, LEASE)


def test_allowed_now_counts_the_window_and_never_goes_negative() -> None:
    assert allowed_now(5, 0, 3) == 3
    assert allowed_now(5, 3, 10) == 2
    assert allowed_now(5, 7, 10) == 0


def test_channel_steps_fold_runs_of_successes_before_each_failure() -> None:
    results = [("a", True), ("a", True), ("b", False), ("a", False), ("a", True), ("b", True)]
    assert channel_steps(results) == [
        FailedAt("b", 2),
        Succeeded("a"),  # the two first successes, one write, before a's failure
        FailedAt("a", 3),
        Succeeded("a"),
        Succeeded("b"),
    ]


def test_channel_steps_of_all_successes_is_one_write_per_channel() -> None:
    assert channel_steps([("a", True)] * 50 + [("b", True)]) == [Succeeded("a"), Succeeded("b")]
    assert channel_steps([("a", False), ("a", False)]) == [FailedAt("a", 0), FailedAt("a", 1)]
