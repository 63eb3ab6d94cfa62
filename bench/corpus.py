"""Robustness run of parse + normalize over every file below a directory (no fetching).

    python bench/corpus.py ../shared/corpus [--jobs 2] [--compare]

Fails (exit 1) on any crash (an exception other than ParseError), any file slower than
--max-seconds, any non-str field or any control character in a title. ``--compare`` also
times bare feedparser with its defaults against the options parse.py uses.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/corpus.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import ParseError
from feeds.parse import parse_feed
from feeds.types import FeedItem

MAX_SECONDS = 2.0
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_POSITION = re.compile(r" at line \d+")


@dataclass
class FileResult:
    path: str
    seconds: float
    items: int = 0
    error: str | None = None  # ParseError kind
    problems: list[str] = field(default_factory=list)  # crashes and broken fields


@dataclass
class Report:
    files: int = 0
    items: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")

    def add(self, result: FileResult, max_seconds: float) -> None:
        self.files += 1
        self.items += result.items
        if result.error:
            self.errors[result.error] += 1
        self.problems += [f"{result.path}: {p}" for p in result.problems]
        if result.seconds > max_seconds:
            self.problems.append(f"{result.path}: took {result.seconds:.2f}s")
        self.slowest = max(self.slowest, (result.seconds, result.path))


def item_problems(item: FeedItem) -> list[str]:
    """What is wrong with one item: a non-str field, a control character in the title."""
    problems = []
    for name in ("guid", "title", "url", "summary", "fingerprint", "author"):
        if type(getattr(item, name)) is not str:
            problems.append(f"{name} is {type(getattr(item, name)).__name__}, not str")
    if not all(type(tag) is str for tag in item.tags):
        problems.append("a tag is not a str")
    if _CONTROL.search(item.title):
        problems.append(f"control character in title {item.title[:60]!r}")
    published = item.published_at
    if published is not None and (type(published) is not datetime or published.tzinfo is None):
        problems.append(f"published_at is not an aware datetime: {published!r}")
    return problems


def check_file(path: str) -> FileResult:
    body = Path(path).read_bytes()
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # as the test suite does
            parsed = parse_feed(body, url="https://feeds.example.org/feed", time_limit=30.0)
    except ParseError as exc:
        kind = ":".join(_POSITION.sub("", exc.message).split(":")[:2])[:70]
        return FileResult(path, time.perf_counter() - start, error=kind)
    except Exception as exc:  # the point of the bench is to catch these
        crash = "".join(traceback.format_exception_only(exc)).strip()
        return FileResult(path, time.perf_counter() - start, problems=[f"CRASH {crash}"])
    problems = [p for item in parsed.items for p in item_problems(item)]
    if type(parsed.title) is not str:
        problems.append("feed title is not a str")
    return FileResult(path, time.perf_counter() - start, items=len(parsed.items), problems=problems)


def files_below(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def run(paths: Iterable[str], jobs: int = 1, max_seconds: float = MAX_SECONDS) -> Report:
    report = Report()
    if jobs <= 1:
        results: Iterable[FileResult] = map(check_file, paths)
        for result in results:
            report.add(result, max_seconds)
        return report
    # spawn, not fork: the caller (a test run) may have threads, and fork copies their locks
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for result in pool.map(check_file, paths, chunksize=32):
            report.add(result, max_seconds)
    return report


def compare(paths: list[str]) -> str:
    """Seconds spent in bare feedparser: its defaults vs. the options parse.py uses."""
    import feedparser

    times = []
    for options in ({}, {"sanitize_html": False, "resolve_relative_uris": False}):
        start = time.perf_counter()
        for path in paths:
            feedparser.parse(io.BytesIO(Path(path).read_bytes()), **options)
        times.append(time.perf_counter() - start)
    gain = 100 * (1 - times[1] / times[0]) if times[0] else 0.0
    return (
        f"feedparser defaults {times[0]:.1f}s, parse.py options {times[1]:.1f}s ({gain:.0f}% less)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args(argv)
    paths = files_below(args.directory)
    start = time.perf_counter()
    report = run(paths, args.jobs, args.max_seconds)
    print(f"files {report.files}, items {report.items}, in {time.perf_counter() - start:.1f}s")
    print(f"slowest {report.slowest[1]} ({report.slowest[0]:.3f}s)")
    for kind, count in report.errors.most_common():
        print(f"  ParseError x{count}: {kind}")
    for problem in report.problems:
        print(f"FAIL {problem}")
    if args.compare:
        print(compare(paths))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
