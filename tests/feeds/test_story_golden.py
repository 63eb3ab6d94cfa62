"""Golden digests of the story core: faster code must file items exactly as before.

Signatures and band keys are stored in the database and compared with those of new items,
so a change in any hash, sketch, key or decision splits stories (or joins wrong ones)
without a ``SIGNATURE_VERSION`` bump. ``tests/data/story_golden.json`` holds, for every
item of ``tests/data/stories.jsonl``, ``tests/data/xling/*.jsonl``, the bench-like items of
``tests/data/story_golden_items.jsonl`` (``bench/_loopback.render_item`` through
``feeds.parse``) and the hostile inputs made below, a digest of its signature, JSON and
band keys, and per group a digest of every pairwise decision and of the filer's choices.

The digests are the first 128 bits of a sha256, in two parts: ``text`` (shingle sketches,
words, body and title band keys, JSON) and ``concepts`` (``feeds.concepts`` evidence and
concept keys), so a failure says which side moved.

They were generated with the code of commit 97305a1 (before the story core was made
faster), on a checkout of that commit with this file and the items file copied in::

    git archive 97305a1 | tar -x -C /tmp/orig
    cp tests/feeds/test_story_golden.py /tmp/orig/tests/feeds/
    cp tests/data/story_golden_items.jsonl /tmp/orig/tests/data/
    (cd /tmp/orig && python -m tests.feeds.test_story_golden --write)
    cp /tmp/orig/tests/data/story_golden.json tests/data/

Regenerating (``python -m tests.feeds.test_story_golden --write``, from this checkout) is
legitimate only together with a ``SIGNATURE_VERSION`` bump, which makes stored signatures
unreadable and so frees the hashes. One other change moves digests on purpose: an edit of
the concept lexicon changes what items name. Then only ``concepts`` digests and the
``event``/``story``/``filer`` matrices may differ: check that no ``text`` digest did
before writing. Adding inputs means generating with the code before your change, as above.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import struct
from base64 import b64encode
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from feeds import concepts, story
from feeds.story import StorySignature

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = DATA / "story_golden.json"
GROUPS = {
    "stories": DATA / "stories.jsonl",
    "xling-dev": DATA / "xling" / "dev.jsonl",
    "xling-holdout": DATA / "xling" / "holdout.jsonl",
    "bench": DATA / "story_golden_items.jsonl",
}
START = datetime.fromisoformat("2026-03-03T00:00:00+00:00")
Row = tuple[str, str, datetime]  # title, summary, published


def test_the_story_core_reproduces_the_golden_digests() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden["version"] == story.SIGNATURE_VERSION, "regenerate after a version bump"
    now = digests()
    moved = [k for k in sorted(golden["items"]) if golden["items"][k] != now["items"].get(k)]
    assert not moved, f"{len(moved)} item digests moved, the first: {moved[:5]}"
    assert now["items"].keys() == golden["items"].keys()
    for group, expected in golden["groups"].items():
        assert now["groups"][group] == expected, group
    assert now["from_json"] == golden["from_json"]


def test_a_signature_survives_its_json() -> None:
    for title, summary, _ in [*hostile(), *_rows(GROUPS["stories"])]:
        try:
            sig = story.story_signature(title, summary)
        except UnicodeEncodeError:
            continue
        text = story.to_json(sig)
        assert story.from_json(text) == sig
        assert story.to_json(story.from_json(text)) == text


def digests() -> dict[str, Any]:
    items: dict[str, list[str]] = {}
    groups: dict[str, dict[str, str]] = {}
    sources = {name: _rows(path) for name, path in GROUPS.items()}
    sources["hostile"] = hostile()
    for name, rows in sources.items():
        sigs: list[tuple[StorySignature, datetime]] = []
        for n, (title, summary, published) in enumerate(rows):
            parts, sig = _item(title, summary)
            items[f"{name}/{n}"] = parts
            if sig is not None:
                sigs.append((sig, published))
        if name == "hostile":
            sigs += [(sig, START) for sig in crafted()]
        groups[name] = _group(sigs)
    return {
        "version": story.SIGNATURE_VERSION,
        "items": items,
        "groups": groups,
        "from_json": _digest(_parse(text) for text in malformed()),
    }


def _item(title: str, summary: str) -> tuple[list[str], StorySignature | None]:
    try:
        sig = story.story_signature(title, summary)
    except Exception as exc:  # recorded: the new code must fail alike
        return [_digest([type(exc).__name__]), _digest([type(exc).__name__])], None
    concept = story.concept_keys(sig)
    keys = story.band_keys(sig)
    text = [sig.size, sig.hashes, sig.title, sig.words, sig.headline, sig.version]
    text += [keys[: len(keys) - len(concept)], story.to_json(sig)]
    evidence = concepts.extract(title, summary)
    found = [sig.concepts, sig.title_concepts, sig.action, concept]
    found += [sorted(evidence.codes), sorted(evidence.title), evidence.action]
    found += [sorted(concepts.numbers(title)), sorted(concepts.numbers(summary))]
    return [_digest([text]), _digest([found])], sig


def _group(sigs: list[tuple[StorySignature, datetime]]) -> dict[str, str]:
    """Every decision for every pair (each pair once, each item with itself too), and the
    filer's choices filing the items in time order."""
    pairs = list(itertools.combinations_with_replacement([s for s, _ in sigs], 2))
    filer = story.StoryFiler()
    order = sorted(range(len(sigs)), key=lambda n: sigs[n][1])
    return {
        "text": _digest(_guarded(_text, a, b) for a, b in pairs),
        "event": _digest(_guarded(_event, a, b) for a, b in pairs),
        "story": _digest(_guarded(story.same_story, a, b) for a, b in pairs),
        "filer": _digest(filer.file(*sigs[n]) for n in order),
        "json": _digest(story.to_json(s) for s, _ in sigs),
    }


def _text(a: StorySignature, b: StorySignature) -> list[object]:
    o = story.overlap(a, b)
    fields = [o.jaccard, o.shared, o.containment, o.smaller]
    return [*map(repr, fields), story.same_text(a, b), repr(story.headline_coverage(a, b))]


def _event(a: StorySignature, b: StorySignature) -> list[object]:
    e = story.event_overlap(a, b)
    fields = [e.shared, e.jaccard, e.containment]
    flags = [e.same_kind_of_thing, e.anchored, e.place_conflict]
    return [*map(repr, fields), *flags, story.same_event(a, b)]


def _guarded(decide: Callable[[StorySignature, StorySignature], object], *sigs: object) -> object:
    try:
        return decide(*sigs)  # type: ignore[arg-type]
    except Exception as exc:
        return f"raises {type(exc).__name__}"


def _parse(text: str) -> str:
    try:
        return repr(story.from_json(text))
    except Exception as exc:
        return f"{type(exc).__name__} {str(exc).split(':')[0]}"


def _digest(values: Iterator[object] | list[object]) -> str:
    h = hashlib.sha256()
    for value in values:
        h.update(json.dumps(value, ensure_ascii=False, default=repr).encode("utf-8", "replace"))
        h.update(b"\n")
    return h.hexdigest()[:32]


def _rows(path: Path) -> list[Row]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        row = json.loads(line)
        at = row.get("published_at")
        published = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else _at(n)
        rows.append((row["title"], row["summary"], published))
    return rows


def _at(n: int) -> datetime:
    return START + timedelta(minutes=n)


def _pieces(text: str) -> list[str]:
    return text.split(" ")


SOUP = _pieces(
    "the of said on North Korea fired missile launch Seoul JCS U.S. U.N. N. S. Korea "
    "Россия ракета запустила МОСКВА ТАСС РИА Новости ИНТЕРФАКС Путин Курск Белгород "
    "북한 탄도미사일 발사 합참 동해 서울 연합뉴스 기자 규탄 한미일 北 美 "
    "600 km 1,200 1 000 000 3,5 млн 14조6천억 1천200 120만 5 million 2.5 Billion 2026 "
    "31 32 007 0.50 1.000,5 марта March 3 three пять ninth ﬁre １２３ ① Ⅻ ǅ ß İ ı ſ K "
    "Σίγμα مرحبا ١٢٣ สวัสดี 中国 导弹 🚀 _under_score O'Neil co-op e.g. ... … — – - "
    "( ) [ ] « » “ ” ! ? ; : ' \" , . ⓒ © \u00a0 \u202f \t \n"
)


def hostile() -> list[Row]:
    """Edge cases of every rule in feeds.story and feeds.concepts, then seeded soups of
    their pieces, each soup followed by an edited copy so that some pairs match."""
    rng = random.Random("watchfloor story golden")
    huge = " ".join(rng.choice(SOUP[:40]) for _ in range(30_000))
    cases = [
        ("", ""),
        ("", "x"),
        ("Title only", ""),
        ("   ", " \n\t "),
        ("7" * 50_000, "1" * 50_000),
        ("Digits", " ".join(["1" * 50_000, "2" * 3, "1 000", "1,000,000"])),
        ("x" * 10_000, "a" * 100_000),
        ("Huge", huge),
        ("Huge copy", huge[:60_000] + " plus an ending of its own"),
        ("Huge words", " ".join(f"Word{n} w{n}" for n in range(2000))),
        ("北 미사일 발사 — Россия запустила ракету 600 km; U.S. says ٣٤٥ 🚀", "中国 导弹 Σίγμα"),
        ("North Korea fires ballistic missile", "SEOUL, March 3 (Reuters) - North Korea fired."),
        ("[속보] 북한 탄도미사일 발사", "(서울=연합뉴스) 홍길동 기자 = 북한이 14조6천억 원 ..."),
        ("(LEAD) N. Korea fires missile", "[서울=뉴시스] 북한이 동해상으로 1천200 발사했다"),
        ("(2nd LD) U.S., U.N. condemn launch", "МОСКВА, 3 марта. /ТАСС/. Россия 3,5 млн"),
        ("UPDATE 2-Fed holds rates - Reuters", "ВАШИНГТОН - РИА Новости. ФРС сохранила ставку."),
        ("Fed holds rates | Bloomberg", "ИНТЕРФАКС - Банк России 1 000 000 рублей"),
        ("ALL CAPS HEADLINE ABOUT THE FED", "(Reporting by Ann Lee; Editing by Bo Li) Text."),
        ("Title Case Headline About The Fed", "Text. The post Foo Bar appeared first on Baz."),
        ("저작권자 © 연합뉴스", "본문 ⓒ 연합뉴스 무단 전재 및 재배포 금지"),
        ("Truncated", "The missile flew about 600 km before landing in the sea and …"),
        ("Truncated dots", "The missile flew about 600 km before landi..."),
        ("Spaced", "1\u00a0000 and 1\u202f000 and 10 000 km and 5 million and 2.5 Billion"),
        ("NUL\x00in title", "a\x00b c\x00d 0\x000"),
        ("ﬁre Ⅻ ① １２３", "ǅ ß İ ı ſ K ﬁre"),
        ("Surrogate \ud800", "text"),
        ("text", "Surrogate \udfff"),
    ]
    rows = [(t, s, _at(n)) for n, (t, s) in enumerate(cases)]
    for _ in range(60):
        title = " ".join(rng.choice(SOUP) for _ in range(rng.randint(0, 14)))
        summary = "".join(rng.choice(SOUP) + rng.choice(" ..,") for _ in range(rng.randint(0, 90)))
        rows.append((title, summary, _at(len(rows))))
        words = summary.split(" ")
        for _ in range(rng.randint(0, 6)):
            words[rng.randrange(len(words))] = rng.choice(SOUP)
        rows.append((rng.choice([title, title.upper(), ""]), " ".join(words), _at(len(rows))))
    return rows


def _packed(values: list[int], code: str) -> str:
    return b64encode(struct.pack(f">{len(values)}{code}", *values)).decode()


def crafted() -> list[StorySignature]:
    """Stored signatures that story_signature never makes but from_json accepts: unsorted
    and repeated hashes, incomplete sketches of small items, concepts of every kind."""
    rng = random.Random("watchfloor crafted")
    sigs = []
    for n in range(12):
        hashes = [rng.getrandbits(32) for _ in range(rng.randint(1, 256))]
        if n % 3 == 0:
            hashes += hashes[: n + 1]  # repeated
        hashes = hashes[:256]
        codes = [rng.getrandbits(32) for _ in range(rng.randint(0, 20))]
        data = {
            "v": story.SIGNATURE_VERSION,
            "n": len(hashes) + (n % 4) * 50,
            "h": _packed(hashes if n % 2 else sorted(hashes), "I"),
            "t": _packed(hashes[: n * 5], "I"),
            "w": _packed([rng.getrandbits(16) for _ in range(n * 9)], "H"),
            "a": _packed([rng.getrandbits(16) for _ in range(n % 5)], "H"),
            "c": _packed(codes, "I"),
            "ct": _packed(codes[: n % 7], "I"),
            "ca": codes[0] if codes else 0,
        }
        sigs.append(story.from_json(json.dumps(data)))
    return sigs


def malformed() -> list[str]:
    good = json.loads(story.to_json(story.story_signature("A b", "C d e f.")))
    texts = ["", "{}", "[]", "null", "1", '{"v": 1}', "{" * 10_000, story.to_json(crafted()[0])]
    for key, value in [
        ("v", 2),
        ("v", True),
        ("n", True),
        ("n", "5"),
        ("n", 0),
        ("n", None),
        ("h", 5),
        ("h", "!!!!"),
        ("h", "AAA="),
        ("h", _packed(list(range(257)), "I")),
        ("w", _packed(list(range(513)), "H")),
        ("a", _packed(list(range(33)), "H")),
        ("c", _packed(list(range(129)), "I")),
        ("ct", "AAAA"),
        ("ca", "x"),
    ]:
        texts.append(json.dumps({**good, key: value}))
    for key in good:
        texts.append(json.dumps({k: v for k, v in good.items() if k != key}))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {GOLDEN.name}")
    args = parser.parse_args()
    found = digests()
    if args.write:
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(found["groups"], indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
