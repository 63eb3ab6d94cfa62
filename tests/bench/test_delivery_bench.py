"""Smoke run of ``bench/delivery.py`` at tiny sizes, so the benchmark cannot rot.

Real worker processes, PostgreSQL, Redis and the loopback receiver, end to end; it checks that
every run finishes, every delivery is received once and recorded as sent, and every figure is
printed. Timing belongs to the bench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_BASE

REPO = Path(__file__).resolve().parents[2]
NUM = r"([\d.]+)"
ROW = re.compile(
    rf"^(\w[\w ,./-]*?)\s+(\d+)\s+{NUM}\s+{NUM}"
    rf"\s+({NUM}|-)\s+({NUM}|-)\s+{NUM}\s+(\d+)%$",
    re.M,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.mark.timeout(240)
def test_quick_run_delivers_everything_once_and_prints_all_figures(redis_url: str) -> None:
    argv = [sys.executable, str(REPO / "bench" / "delivery.py"), "--quick"]
    done = subprocess.run(
        [*argv, "--redis", redis_url, "--pg", PG_BASE],
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    rows = {m[0].strip(): m for m in ROW.findall(out)}
    assert list(rows) == [
        "one-task-per-delivery burst",
        "batched burst",
        "batched, preseeded",
        next(name for name in rows if name.startswith("paced ")),
        "in-process sequential",
        "in-process batches",
        "1 process",
        "2 processes",
    ], out
    assert [int(r[1]) for r in rows.values()] == [50, 50, 50, 10, 20, 20, 40, 40]
    assert all(float(r[3]) > 0 for r in rows.values()), out  # deliveries/s
    for name in ("one-task-per-delivery burst", "batched burst", "in-process sequential"):
        p50, p95 = float(rows[name][5]), float(rows[name][7])
        assert 0 < p50 <= p95, out
    assert re.search(r"^receiver: 100 POSTs.*: [\d,]+/s .* [\d,]+ us/POST", out, re.M), out
    ratio = r"^ratio batched / one-task-per-delivery burst: [\d.]+x; p95 [\d.]+ s vs [\d.]+ s$"
    assert re.search(ratio, out, re.M), out
    assert re.search(r"^ratio in-process batches / sequential: [\d.]+x$", out, re.M), out
    assert re.search(r"^one batched process, preseeded .*: [\d,]+ deliveries/s", out, re.M), out
    assert re.search(r"^scale-out ratio 2 / 1 worker processes: [\d.]+x$", out, re.M), out
    outbox = re.search(r"^outbox at the end: (.*); webhook-ids received twice: (\d+)$", out, re.M)
    assert outbox and outbox[2] == "0", out
    [(status, sent)] = re.findall(r"'(\w+)': (\d+)", outbox[1])
    assert status == "sent" and int(sent) >= 3 * 50 + 10 + 20 + 20 + 40 + 40, out  # + warm-ups
