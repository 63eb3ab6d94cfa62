"""The corpus robustness run over ../shared/corpus: no crash and clean fields.

How long files take is the benchmark's to report (``bench/corpus.py``), not a test's to
assert: a test run shares two cores with other workers.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path

import pytest

from bench.corpus import files_below, item_problems, main, run
from feeds.types import FeedItem

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")
@pytest.mark.timeout(240)
def test_whole_corpus_parses_without_crash_or_dirty_field() -> None:
    paths = files_below(CORPUS)
    report = run(paths, jobs=min(2, os.cpu_count() or 1), max_seconds=math.inf)
    assert report.files == len(paths) > 2000
    assert report.problems == []
    assert report.items > 10_000
    assert sum(report.errors.values()) < report.files // 4  # most files are feeds


def test_main_reports_counts_and_fails_on_a_slow_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.xml").write_bytes(
        b"<rss version='2.0'><channel><item><title>A</title></item></channel></rss>"
    )
    (tmp_path / "not-a-feed.txt").write_bytes(b"hello")
    (tmp_path / "sub").mkdir()
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "files 2, items 1" in out and "ParseError x1: not a feed" in out
    assert main([str(tmp_path), "--max-seconds", "0"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_item_problems_catches_non_str_fields_and_control_characters() -> None:
    good = FeedItem("g", "Title", "https://e.org/", "s", None, "f" * 64)
    assert item_problems(good) == []
    bad = FeedItem(b"g", "Ti\x1btle", "u", None, datetime(2026, 1, 1), "f", tags=(1,))  # type: ignore[arg-type]
    problems = " | ".join(item_problems(bad))
    for needle in ("guid is bytes", "summary is NoneType", "tag", "control character", "aware"):
        assert needle in problems
