"""Smoke run of ``bench/polling.py`` on 20 feeds, so the benchmark cannot rot.

It checks that the one command runs the real poll path and prints every figure, that the
feed farm did what the figures claim (half 200 with new items, half 304), and that the
first-poll baseline really filed one item at a time (a handful of statements per item, where
the batched path runs a few per feed); timing belongs to the bench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,]+(?:\.\d+)?"


@pytest.mark.timeout(120)
def test_small_run_prints_every_figure_for_both_pollers() -> None:
    argv = [sys.executable, str(REPO / "bench" / "polling.py")]
    argv += ["--feeds", "20", "--threads", "4", "--hosts", "3", "--latency", "0.02"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    rows = re.findall(
        rf"^(threads-4|sequential)\s+(\d+)\s+(\d+)(?:\s+{NUMBER}){{4}}\s+{NUMBER}\s+\d+"
        rf"\s+{NUMBER}\s+\d+%$",
        out,
        re.M,
    )
    assert rows == [("threads-4", "4", "20"), ("sequential", "1", "20")]
    assert re.search(r"^  warm-up: polls ok 20; server answered 200 20; new items 400, ", out, re.M)
    for name in ("threads-4", "sequential"):
        assert re.search(
            rf"^  {name}: polls not-modified 10, ok 10; server answered 200 10, 304 10; "
            r"new items 20, matches \d+$",
            out,
            re.M,
        ), out
    assert re.search(r"^ratio threads-4 / sequential: [\d.]+x$", out, re.M)
    assert re.search(r"^target (met   |MISSED) >= 2,000 feeds/min per worker process", out, re.M)
    assert "failures" not in out
    _check_first_poll(out)


def _first_poll(label: str, out: str) -> tuple[float, int, int, float]:
    """(ms per item, items, stories, SQL statements per item) of one first-poll line."""
    found = re.search(
        rf"^{re.escape(label)}: stories ({NUMBER}) ms per new item \(([\d,]+) items, "
        rf"([\d,]+) stories; cpu {NUMBER} ms, ({NUMBER}) SQL statements per item\), "
        rf"whole first poll {NUMBER} ms per new item$",
        out,
        re.M,
    )
    assert found, out
    ms, items, stories, statements = (float(g.replace(",", "")) for g in found.groups())
    return ms, int(items), int(stories), statements


def _check_first_poll(out: str) -> None:
    _, items, stories, statements = _first_poll("first poll", out)
    label = "first poll, one item at a time (baseline, 20 feeds)"
    _, base_items, base_stories, base_statements = _first_poll(label, out)
    assert items == base_items == 400  # the same 20 feeds' first poll, filed both ways
    assert 0 < base_stories <= base_items and 0 < stories <= items
    # one SELECT of candidates, one of band keys and one UPDATE per item at least, against a
    # few statements per feed of 20 items
    assert base_statements >= 3 > 1.5 >= statements
    assert re.search(
        r"^  one-at-a-time: polls ok 20; server answered 200 20; new items 400, ", out, re.M
    )
    assert re.search(
        r"^first poll, batched, its first 400 items \(the baseline's database size\): stories "
        rf"{NUMBER} ms per new item \(cpu {NUMBER} ms, {NUMBER} SQL statements per item\)$",
        out,
        re.M,
    )
    assert re.search(r"^ratio one-at-a-time / batched: [\d.]+x$", out, re.M)
    assert re.search(
        r"^ratio one-at-a-time / batched, same database size \(first 400 items\): [\d.]+x$",
        out,
        re.M,
    )
    assert re.search(
        rf"^target (met   |MISSED) <= 1 ms per new item \(stories, batched: {NUMBER} ms\)$",
        out,
        re.M,
    )
