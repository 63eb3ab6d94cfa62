"""Smoke run of ``bench/polling.py`` on 20 feeds, so the benchmark cannot rot.

It checks that the one command runs the real poll path and prints every figure, and that
the feed farm did what the figures claim (half 200 with new items, half 304); timing
belongs to the bench.
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
