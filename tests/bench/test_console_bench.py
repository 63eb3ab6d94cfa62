"""Smoke run of ``bench/console.py --quick`` on each database, so the benchmark cannot rot.

It checks that the one command seeds, times every operation of the read model and of the
app, runs the naive baseline beside ours, and prints every figure and the verdict; timing
belongs to the bench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,]+\.\d"
OURS = [
    "alerts, first page",
    "alerts, page 5 (cursor | OFFSET)",
    "alerts, page 9 (cursor | OFFSET)",
    "alerts, watch-02 + since 7d",
    "alerts, q=북한 (index | LIKE)",
    "search missile (1.00% of items; index | LIKE)",
    "search 북한 (1.00% of items; index | LIKE)",
    "search ракет (1.00% of items; index | LIKE)",
    "search hwasong (0.01% of items; index | LIKE)",
    "story page",
    "web GET / (alerts page)",
    "web GET /?cursor= (page 5)",
    "web GET /search?q=북한",
    "web GET /stories/<id>",
]
WITH_NAIVE = {name for name in OURS if "|" in name}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_quick_run_prints_every_figure(db: str) -> None:
    argv = [sys.executable, str(REPO / "bench" / "console.py"), "--quick", "--db", db]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=290, check=False, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(rf"^plan: phrases, stories and item times in {NUMBER} s", out, re.M), out
    assert re.search(
        rf"^{db}: 5,000 items, 500 stories, 500 alerts, 200 feeds; seeded in {NUMBER} s ",
        out,
        re.M,
    ), out
    rows = dict(re.findall(r"^  (\S.*?)\s{2,}(\d.*)$", out, re.M))
    names = [next((r for r in rows if r.startswith(name)), name) for name in OURS]
    assert all(name in rows for name in names), out
    for name in names:
        figures = rows[name].split()
        if any(name.startswith(n) for n in WITH_NAIVE):
            assert len(figures) == 5 and figures[4].endswith("x"), (name, figures)
        else:
            assert figures[2:] == ["-", "-", "-"], (name, figures)
        assert all(re.fullmatch(NUMBER + "x?", f) for f in figures if f != "-"), (name, figures)
    assert re.search(rf"^target (met   |MISSED) p95 <= 200 ms on {db}: ", out, re.M), out
