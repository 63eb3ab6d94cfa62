"""Smoke run of ``bench/parse_skip.py`` at a tiny size, so the benchmark cannot rot.

It checks that the one command runs, finds the skip read exactly the new items (the bench
fails otherwise) and prints every figure; timing belongs to the bench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MS = r"[\d.]+ ms cpu per feed"


@pytest.mark.timeout(120)
def test_small_run_prints_every_figure() -> None:
    argv = [sys.executable, str(REPO / "bench" / "parse_skip.py"), "--feeds", "3", "--repeat", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"^feeds 3, 20 items each \(\d+ KB\), 2 new per change$", out, re.M), out
    assert re.search(rf"^full parse: {MS} \([\d.]+ ms per item\)$", out, re.M), out
    assert re.search(rf"^with skip: {MS} \(2 new items read\)$", out, re.M), out
    assert re.search(rf"^all seen: {MS} \(no item read\)$", out, re.M), out
    assert re.search(r"^ratio full / skip: [\d.]+x$", out, re.M), out
