"""Smoke run of ``bench/freshness.py`` on a few virtual hours, so the benchmark cannot rot (a
missing argument once crashed it before its first figure, and nothing noticed).

It checks that the one command runs every schedule, WebSub through the third-party hub
included, and prints every figure; the targets belong to the full run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROW = r"\s+[\d.]+[smh]\s+[\d.]+[smh]\s+[\d.]+\s+\d+\s+\d+$"


@pytest.mark.timeout(300)
def test_a_short_run_prints_every_schedule_and_both_verdicts() -> None:
    argv = [sys.executable, str(REPO / "bench" / "freshness.py"), "--days", "0.2"]
    argv += ["--push-events", "6"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: a target missed
    out = done.stdout
    for schedule in ("fixed 5m", r"fixed 60m \(Miniflux\)", r"adaptive \(5m, 1m-1h\)"):
        assert re.search(rf"^{schedule}{ROW}", out, re.M), out
    assert re.search(rf"^websub \(push\){ROW}", out, re.M), out
    assert re.search(r"^adaptive p50 / fixed-5m p50 = [\d.]+ \(target <= 0.33\)", out, re.M), out
    assert re.search(r"^websub p95 = [\d.]+s \(target <= 5s\), 0 of 6 missed$", out, re.M), out
