"""Smoke run of ``bench/matching.py`` at tiny sizes, so the benchmark cannot rot.

It checks that the one command runs and prints every figure; timing belongs to the bench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_quick_run_prints_all_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "matching.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    rows = re.findall(
        r"^\s+(\d+)\s+(\d+)\s+([\d,]+)\s+([\d,]+)\s+(\d+)x\s+([\d.]+)\s+([\d,]+)\s+([\d,]+)$",
        out,
        re.M,
    )
    assert [(terms, lists) for terms, lists, *_ in rows] == [("20", "2"), ("200", "20")]
    assert all(
        int(row[2].replace(",", "")) > 0
        and int(row[3].replace(",", "")) > 0
        and int(row[6].replace(",", "")) > 0  # the same lists with russian_forms
        and int(row[7].replace(",", "")) > 0  # and with ~ on their Cyrillic names
        for row in rows
    )
    assert float(rows[-1][5]) > 0  # planted items do match
    assert re.search(r"^slowdown from 20 to 200 terms: [\d.]+x$", out, re.M)
    assert re.search(r"^rebuild at 200 terms: compile_matcher [\d.]+ ms", out, re.M)
    assert re.search(r"of which automaton \+ presearch tables [\d.]+ ms$", out, re.M)
    assert re.search(r"^russian_forms at 200 terms: [\d.]+x the time", out, re.M)
    assert re.search(r"^~ markers at 200 terms: [\d.]+x the time", out, re.M)
    assert len(re.findall(r"^target (met   |MISSED) ", out, re.M)) == 7
