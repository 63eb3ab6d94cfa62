"""Smoke run of ``bench/story_cost.py`` at a tiny size, so the benchmark cannot rot.

It checks that the one command runs and prints every figure; timing belongs to the bench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURE = r"\s+[\d.]+ us"


@pytest.mark.timeout(120)
def test_quick_run_prints_every_figure() -> None:
    argv = [sys.executable, str(REPO / "bench" / "story_cost.py"), "--quick"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.findall(r"^(\w[\w ]+): (\d+) items, \d+ characters of summary$", out, re.M) == [
        ("bench items", "100"),
        ("labelled items", "320"),
    ]
    for name in ("story_signature", "band_keys"):
        lines = re.findall(rf"^  {name}{FIGURE} first pass,{FIGURE} warm$", out, re.M)
        assert len(lines) == 2, name
    assert (
        len(re.findall(rf"^  minhash step{FIGURE} \(numpy\),{FIGURE} pure Python: ", out, re.M))
        == 2
    )
    for name in ("to_json", "from_json"):
        assert len(re.findall(rf"^  {name}{FIGURE}$", out, re.M)) == 2, name
    assert len(re.findall(rf"^  same_story{FIGURE} per comparison$", out, re.M)) == 2
    assert len(re.findall(rf"^  filing{FIGURE} per new item \(first poll", out, re.M)) == 2
