"""Precision and recall of the shipped watch-lists over a labelled evaluation set.

``tests/data/eval_watchlists.jsonl`` holds items written as a desk analyst meets them:
positives for each watch-list in English, Korean and Russian, and hard negatives (a free
kick called a "missile", SpaceX launches, fitness exercises, Iranian and South Korean
missile tests, satellite imagery, Bukhansan mountain). Scored by ``worker.backtest.score``,
as ``watchfloor backtest --labels`` scores it. Run with ``pytest -s`` to see the table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.match import Matcher, compile_matcher
from alerts.watchlists import WatchListsFile
from worker.backtest import LabelledItem, Score, load_labels, score

REPO = Path(__file__).resolve().parents[2]
EVAL_SET = REPO / "tests" / "data" / "eval_watchlists.jsonl"
CONFIG = REPO / "config" / "watchlists.yaml"
MIN_SCORE = 0.9


@pytest.fixture(scope="module")
def items() -> list[LabelledItem]:
    return load_labels(EVAL_SET.read_text(encoding="utf-8"), str(EVAL_SET))


@pytest.fixture(scope="module")
def shipped() -> tuple[WatchListsFile, Matcher]:
    parsed = WatchListsFile.model_validate(yaml.safe_load(CONFIG.read_text(encoding="utf-8")))
    return parsed, compile_matcher(parsed.watchlists, parsed.aliases)


def table(scores: dict[str, Score]) -> str:
    rows = ["| watch-list | TP | FP | FN | precision | recall |", "|---|---|---|---|---|---|"]
    for wid, s in scores.items():
        counts = f"{len(s.tp)} | {len(s.fp)} | {len(s.fn)}"
        rows.append(f"| {wid} | {counts} | {s.precision:.2f} | {s.recall:.2f} |")
    return "\n".join(rows)


def test_eval_set_is_broad(items: list[LabelledItem], shipped: Any) -> None:
    ids = {w.id for w in shipped[0].watchlists}
    assert len(items) >= 80
    assert len({item.id for item in items}) == len(items)
    assert all(set(item.labels) <= ids for item in items)
    assert all(item.judged is None for item in items)  # judged for every watch-list
    assert sum(not item.labels for item in items) >= 30  # hard negatives
    scripts = {"ko": re.compile("[가-힣]"), "ru": re.compile("[а-яё]", re.I)}
    for wid in ids:
        positives = [i for i in items if wid in i.labels]
        assert len(positives) >= 10, wid
        for script, pattern in scripts.items():
            assert any(pattern.search(i.title + i.summary) for i in positives), (wid, script)


def test_precision_and_recall_per_watchlist(items: list[LabelledItem], shipped: Any) -> None:
    parsed, matcher = shipped
    scores = score(items, matcher, [w.id for w in parsed.watchlists])
    print(f"\n{len(items)} items, {CONFIG.relative_to(REPO)}\n{table(scores)}")
    for wid, s in scores.items():
        if s.fp or s.fn:
            print(f"  {wid}: false positives {list(s.fp)}, false negatives {list(s.fn)}")
    low = {
        w: (s.precision, s.recall)
        for w, s in scores.items()
        if min(s.precision, s.recall) < MIN_SCORE
    }
    assert not low, f"below {MIN_SCORE}: {low}"
