"""One event, one story, in English, Korean and Russian: the labelled cross-lingual set.

``tests/data/xling/`` holds 63 events (213 items) written for these tests in the style of
Yonhap, News1, Newsis, TASS, RIA Novosti, Interfax, Reuters, AP, Kyodo and NK News, each
event in at least two of the three languages, with same-language paraphrases, hard
negatives (another event on the same topic within 48 h) and look-alike events a week
apart. Two writers wrote the halves without seeing ``feeds/concepts.py`` or each other's
half: ``dev.jsonl`` tuned the thresholds, ``holdout.jsonl`` was scored after.

The issue asks for 0.9 pairwise precision and recall. Precision is met; recall is not:
copies that carry different details (one the flight distance, another the altitude) or
name things the lexicon does not know share too little evidence. The floors below pin
what ``same_story`` reaches today so that it cannot regress; see the README's Stories
figures and bench/stories.py.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

from feeds import story
from feeds.story import StorySignature

DATA = Path(__file__).resolve().parent.parent / "data" / "xling"
HALVES = ("dev", "holdout")

# Regression floors, below the 0.9 target for recall (see the module docstring).
MIN_STORY_PRECISION = 0.9
MIN_STORY_RECALL = 0.45
MIN_PAIR_PRECISION = 0.85
MIN_PAIR_RECALL = 0.5

HARD_NEGATIVES = [
    ("fs26-begins-20260309", "nk-srbm-hwangju-20260309"),
    ("nk-srbm-hwangju-20260309", "unsc-meeting-20260310"),
    ("nk-cruise-nampo-20250521", "nk-artillery-20250521"),
    ("kim-munitions-factory-20250812", "nk-hypersonic-irbm-20250813"),
    ("freedom-edge-20250915", "rok-marines-nwi-firing-20250915"),
    ("nk-satellite-fail-20251124", "trilateral-statement-20251125"),
    ("trash-balloons-20260609", "loudspeakers-resume-20260610"),
    ("lavrov-choe-talks-20260710", "kim-receives-lavrov-20260711"),
    ("h-sarmat-test-0505", "h-china-naval-drill-0505"),
    ("h-joint-air-patrol-0722", "h-japan-protest-patrol-0723"),
    ("h-eu-sanctions-pkg-0223", "h-uk-sanctions-0224"),
    ("h-drone-bryansk-0317", "h-drone-tatarstan-0317"),
    ("h-lavrov-araghchi-0413", "h-lavrov-choe-0414"),
    ("h-zapad-drills-0912", "h-zircon-launch-0913"),
    ("h-bulava-test-1104", "h-yars-test-1105"),
    ("h-kamchatka-quake-0814", "h-kamchatka-aftershock-0816"),
]
# Merged today: found on the holdout half and left failing rather than tuned away.
KNOWN_MERGED = {
    ("h-bulava-test-1104", "h-yars-test-1105"): "two Russian missile tests a day apart",
}
WEEK_APART = [
    ("nk-srbm-hwangju-20260309", "nk-srbm-hwangju-20260316"),
    ("nk-cruise-nampo-20250521", "nk-cruise-nampo-20250528"),
    ("trash-balloons-20260602", "trash-balloons-20260609"),
    ("h-sarmat-test-0505", "h-sarmat-test-0519"),
    ("h-shoigu-pyongyang-0604", "h-shoigu-pyongyang-0617"),
]


class Item(NamedTuple):
    id: str
    story: str
    lang: str
    published_at: datetime
    sig: StorySignature


@cache
def labelled(half: str | None = None) -> tuple[Item, ...]:
    items = []
    for name in HALVES if half is None else (half,):
        for line in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            published = datetime.fromisoformat(row["published_at"].replace("Z", "+00:00"))
            sig = story.story_signature(row["title"], row["summary"])
            items.append(Item(row["id"], row["story"], row["lang"], published, sig))
    return tuple(items)


def window_pairs(items: tuple[Item, ...]) -> list[tuple[Item, Item]]:
    pairs = itertools.combinations(items, 2)
    return [(a, b) for a, b in pairs if story.within_window(a.published_at, b.published_at)]


def figures(items: tuple[Item, ...], merged: dict[tuple[str, str], bool]) -> tuple[float, float]:
    tp = fp = fn = 0
    for a, b in window_pairs(items):
        hit, same = merged[a.id, b.id], a.story == b.story
        tp, fp, fn = tp + (hit and same), fp + (hit and not same), fn + (same and not hit)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def filed(items: tuple[Item, ...]) -> dict[str, int]:
    """Story ids as the worker's own loop (StoryFiler, choose_story) gives them."""
    filer = story.StoryFiler()
    ordered = sorted(items, key=lambda i: i.published_at)
    return {item.id: filer.file(item.sig, item.published_at) for item in ordered}


def test_the_set_is_well_formed() -> None:
    items = labelled()
    assert len({i.id for i in items}) == len(items)
    events = {i.story for i in items}
    assert len(events) >= 40
    languages = {s: {i.lang for i in items if i.story == s} for s in events}
    assert all(len(langs) >= 2 for langs in languages.values()), languages
    assert sum(langs == {"en", "ko", "ru"} for langs in languages.values()) >= 40
    for first, second in HARD_NEGATIVES:
        a = [i for i in items if i.story == first]
        b = [i for i in items if i.story == second]
        assert a and b, (first, second)
        assert any(story.within_window(x.published_at, y.published_at) for x in a for y in b)


@pytest.mark.parametrize("half", [*HALVES, None])
def test_story_level_precision_and_recall(half: str | None) -> None:
    items = labelled(half)
    story_of = filed(items)
    merged = {(a.id, b.id): story_of[a.id] == story_of[b.id] for a, b in window_pairs(items)}
    precision, recall = figures(items, merged)
    print(f"\n{half or 'both'}: stories precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= MIN_STORY_PRECISION
    assert recall >= MIN_STORY_RECALL


def test_pairwise_same_story_beats_text_alone() -> None:
    items = labelled()
    pairs = window_pairs(items)
    now = {(a.id, b.id): story.same_story(a.sig, b.sig) for a, b in pairs}
    text = {(a.id, b.id): story.same_text(a.sig, b.sig) for a, b in pairs}
    precision, recall = figures(items, now)
    text_precision, text_recall = figures(items, text)
    print(f"\npairwise: same_story {precision:.3f}/{recall:.3f}, text {text_precision:.3f}/")
    assert precision >= MIN_PAIR_PRECISION
    assert recall >= MIN_PAIR_RECALL
    assert text_recall < 0.1  # shingles cannot meet across scripts
    assert recall >= 5 * text_recall


def test_cross_lingual_pairs_merge_only_by_concepts() -> None:
    items = labelled()
    cross = [(a, b) for a, b in window_pairs(items) if a.lang != b.lang and a.story == b.story]
    assert len(cross) >= 150
    assert not any(story.same_text(a.sig, b.sig) for a, b in cross)
    joined = sum(story.same_event(a.sig, b.sig) for a, b in cross) / len(cross)
    print(f"\ncross-lingual same-story pairs joined by same_event: {joined:.3f}")
    assert joined >= 0.45


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(*pair, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MERGED[pair]))
        if pair in KNOWN_MERGED
        else pair
        for pair in HARD_NEGATIVES
    ],
)
def test_hard_negatives_stay_apart_when_filed(first: str, second: str) -> None:
    """Most items of two same-topic events within 48 h land in different stories."""
    items = tuple(i for i in labelled() if i.story in (first, second))
    story_of = filed(items)
    pairs = [(a, b) for a, b in window_pairs(items) if a.story != b.story]
    wrongly = sum(story_of[a.id] == story_of[b.id] for a, b in pairs)
    assert wrongly <= len(pairs) // 4, (first, second, wrongly, len(pairs))


@pytest.mark.parametrize(("first", "second"), WEEK_APART)
def test_look_alike_events_a_week_apart_are_outside_the_window(first: str, second: str) -> None:
    a = [i for i in labelled() if i.story == first]
    b = [i for i in labelled() if i.story == second]
    assert a and b
    assert not any(story.within_window(x.published_at, y.published_at) for x in a for y in b)
    story_of = filed(tuple(a + b))
    assert {story_of[i.id] for i in a}.isdisjoint(story_of[i.id] for i in b)
