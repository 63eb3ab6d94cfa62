"""Smoke run of ``bench/polling.py`` on 20 feeds, so the benchmark cannot rot.

It checks that the one command runs the real poll path in worker processes and prints every
figure, that the feed farm did what the figures claim (half 200 with new items, half 304),
and that the first-poll baseline really filed one item at a time (a handful of statements
per item, where the batched path runs a few per batch); timing belongs to the bench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,]+(?:\.\d+)?"


@pytest.mark.timeout(180)
def test_small_run_prints_every_figure_for_every_poller() -> None:
    argv = [sys.executable, str(REPO / "bench" / "polling.py"), "--feeds", "20", "--hosts", "3"]
    argv += ["--latency", "0.02", "--baseline-feeds", "0", "--first-poll-baseline-feeds", "10"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=170, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    rows = re.findall(
        rf"^(batched|sequential)\s+(\d+)\s+(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$",
        out,
        re.M,
    )
    assert rows == [("batched", "1", "20"), ("batched", "2", "20"), ("sequential", "1", "20")]
    assert re.search(
        r"^  warm-up x2: polls ok 20; server answered 200 20; new items 400, ", out, re.M
    )
    for name in ("batched x1", "batched x2", "sequential x1"):
        assert re.search(
            rf"^  {name}: polls not-modified 10, ok 10; server answered 200 10, 304 10; "
            r"new items 20, matches \d+$",
            out,
            re.M,
        ), out
    assert re.search(r"^ratio batched x1 / sequential: [\d.]+x$", out, re.M)
    assert re.search(r"^ratio batched x2 / batched x1: [\d.]+x$", out, re.M)
    assert re.search(r"^target (met   |MISSED) >= 20,000 feeds/min per poll process", out, re.M)
    assert re.search(r"^target (met   |MISSED) >= 1.6x with two processes$", out, re.M)
    assert "failures" not in out
    _check_first_poll(out)


def _first_poll(label: str, out: str) -> tuple[int, int, float]:
    """(items, stories, SQL statements per item) of one first-poll line."""
    found = re.search(
        rf"^{re.escape(label)}: stories {NUMBER} ms per new item \(([\d,]+) items, "
        rf"([\d,]+) stories; cpu {NUMBER} ms, ({NUMBER}) SQL statements per item\), "
        rf"whole first poll {NUMBER} ms per new item$",
        out,
        re.M,
    )
    assert found, out
    items, stories, statements = (float(g.replace(",", "")) for g in found.groups())
    return int(items), int(stories), statements


def _check_first_poll(out: str) -> None:
    base_items, base_stories, base_statements = _first_poll(
        "first poll, 10 feeds, one item at a time (baseline)", out
    )
    items, stories, statements = _first_poll(
        "first poll, 10 feeds, batched (same feeds, fresh database)", out
    )
    assert items == base_items == 200  # the same 10 feeds' first poll, filed both ways
    assert 0 < base_stories <= base_items and 0 < stories <= items
    # one SELECT of candidates, one of band keys and one UPDATE per item at least, against a
    # few statements per batch of 200 items
    assert base_statements >= 3 > 1 >= statements
    all_items, _, _ = _first_poll("first poll", out)
    assert all_items == 400
    assert re.search(r"^ratio one-at-a-time / batched \(same feeds\): [\d.]+x$", out, re.M)
    assert re.search(
        rf"^target (met   |MISSED) <= 1 ms per new item on a first poll of 20 feeds \(stories, "
        rf"batched: {NUMBER} ms\)$",
        out,
        re.M,
    )
