"""One alert per story: near-duplicate signatures for feed items.

The same wire copy reaches many feeds with a new headline, a dateline, a truncated
summary or outlet boilerplate. We cut the normalized title and summary into word
bigrams and weight those that carry a name or a number, because two templated reports
("12 drones over Belgorod" / "five drones over Kursk") differ mostly there. The hashed
set is kept as a bottom-k sketch: exact for ordinary feed items, an unbiased estimate
for longer ones, and free of the sampling noise a 128-value MinHash would add near the
threshold. LSH band keys (MinHash over the sketch) give the worker an indexed equality
lookup for candidates; ``same_story`` then decides on the sketches.

Shingles cannot meet across scripts, and paraphrased copies share few of them. So the
signature also keeps the item's language-independent evidence (``feeds.concepts``: what
it names, what happened, its numbers), and ``same_event`` decides on that: a Korean, a
Russian and an English copy of one launch join one story. ``same_story`` is either test.

Dates are not part of the signature: the worker applies ``STORY_WINDOW``. Hashing uses
blake2b and SHAKE-128 from hashlib, never ``hash()``, so signatures are stable across
processes and releases.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from heapq import nsmallest
from itertools import chain, combinations, compress, pairwise, repeat
from operator import and_, itemgetter, or_

import numpy as np

from feeds import concepts as concept_evidence
from feeds.memo import Memo

SIGNATURE_VERSION = 1
STORY_WINDOW = timedelta(hours=48)

SKETCH_SIZE = 256  # hashes kept per item; feed items rarely have more shingles
TITLE_SKETCH_SIZE = 64
ANCHOR_WEIGHT = 3  # a bigram with a name or number counts as this many shingles
BODY_BANDS, BODY_ROWS = 32, 2  # shared band at Jaccard 0.2: 73 %, at 0.3: 95 %
TITLE_BANDS, TITLE_ROWS = 8, 2  # lets a headline-only item find the copy it repeats

WORDS_SIZE = 512  # word hashes kept for the headline check; longer texts skip it
HEADLINE_SIZE = 32
MAX_CONCEPTS = 128  # concept and number codes kept per item

# A band key shared by more stories than this in the window finds no story: it is dropped.
MAX_STORIES_PER_KEY = 32
MAX_VOTERS = 24  # members of a candidate story compared with a new item, the nearest in time
MAX_CANDIDATES = 16  # stories an item is compared with, those sharing the most band keys
# Tuned on tests/data/stories.jsonl, see bench/stories.py.
MIN_SHARED = 3.0  # fewer shared shingles than this is chance
CERTAIN_JACCARD = 0.5  # this much overlap is one story whatever the headlines say
SAME_JACCARD = 0.25
SAME_CONTAINMENT = 0.35  # a truncated copy shares most of the shorter text
HEADLINE_COVERAGE = 0.6  # names and numbers of a headline the other item must contain

# Concept evidence (same_event), tuned on tests/data/xling/dev.jsonl, see bench/stories.py.
# Weights by kind: a country is named by most items of a topic; a place, a person or a
# big number (600 km) says much more.
EVENT_WEIGHTS = {
    "state": 0.5,
    "who": 1.5,
    "where": 1.5,
    "thing": 1.0,
    "what": 1.0,
    "year": 0.25,
    "small": 0.5,
    "big": 2.0,
}
EVENT_MIN_SHARED = 2.0  # weight the two items must share
EVENT_JACCARD = 0.5
EVENT_CONTAINMENT = 0.8  # of the smaller item's weight: a headline-only copy
CONCEPT_KEYS = 8  # the heaviest concepts whose pairs become band keys
_WEIGHT_OF_KIND = tuple(EVENT_WEIGHTS[kind] for kind in concept_evidence.KINDS)

_PERSON = b"watchfloor-st"
_TOKEN = r"\w+(?:[.,]\d+)*"
_GAP_AND_TOKEN = re.compile(rf"(\W*)({_TOKEN})")  # a token ends where \W begins or \w resumes
_SENTENCE_END = frozenset(".!?…:;\"'«»“”")
# Datelines that wires and their copies put in front of the text.
_DATELINE = re.compile(
    r"^.{0,60}?(?:"
    r"\([^()=]{1,40}\)\s*[-–—=]+"  # SEOUL, March 3 (Reuters) -
    # (서울=연합뉴스) 홍길동 기자 =   [서울=뉴시스]
    r"|[(\[][^()\[\]=]{1,20}=[^()\[\]]{1,20}[)\]](?:\s*\S{1,5}\s+기자\s*=)?"
    r"|/[^/]{1,20}/\."  # МОСКВА, 3 марта. /ТАСС/.
    r"|[-–—]\s*РИА Новости\."
    r"|ИНТЕРФАКС\s*[-–—]"
    r")\s*",
    re.DOTALL,
)
# Outlet boilerplate, each pattern with the strings one of which its every match holds: a
# pattern that cannot start with a literal is tried at every position, so it runs only
# where one is found.
_BOILERPLATE = (
    (re.compile(r"\((?:Reporting|Writing|Additional reporting) by[^)]*\)"), (" by",)),
    (re.compile(r"The post .{1,300}? appeared first on .*$", re.DOTALL), ("The post ",)),
    (re.compile(r"<?(?:저작권자\s*)?[ⓒ©].*$", re.DOTALL), ("ⓒ", "©")),
    (re.compile(r"무단\s*전재.*$", re.DOTALL), ("무단",)),
)
_TITLE_TAG = re.compile(  # [속보], (LEAD), (2nd LD), UPDATE 2-
    r"^(?:\[[^\]]{1,12}\]|\((?:LEAD|URGENT|\w{2,4} LD)[^)]{0,12}\)|UPDATE \d+\s*-)\s*"
)
_ABBREVIATION = re.compile(r"\b(?:[A-ZА-ЯЁ]\.){2,}")  # U.S., U.N. -> US, UN
_ABBREVIATION_HINT = re.compile(r"[A-ZА-ЯЁ]\.[A-ZА-ЯЁ]\.")  # in each match; starts with a class
_OUTLET_SUFFIX = re.compile(r"\s+[-–—|]\s+[A-ZА-ЯЁ][\w.&' ]{1,30}$")  # "... - Reuters"
_ELLIPSIS = ("…", "...")


@dataclass(frozen=True, slots=True)
class StorySignature:
    """Bottom-k sketches of an item's weighted shingles, plus its words for the headline check."""

    size: int  # distinct weighted shingles of title and summary
    hashes: tuple[int, ...]  # the smallest SKETCH_SIZE of their 32-bit hashes, ascending
    title: tuple[int, ...]  # the same for the title alone, TITLE_SKETCH_SIZE at most
    words: tuple[int, ...] = ()  # 16-bit hashes of every distinct word; () past WORDS_SIZE
    headline: tuple[int, ...] = ()  # 16-bit hashes of the names and numbers in the title
    version: int = SIGNATURE_VERSION
    concepts: tuple[int, ...] = ()  # feeds.concepts codes of title and summary, ascending
    title_concepts: tuple[int, ...] = ()  # those of the title alone
    action: int = 0  # the code of the headline's main action, 0 for none
    # sets of the sketches, made once: every comparison with another item needs them
    concept_set: frozenset[int] = field(init=False, repr=False, compare=False)
    weight: float = field(init=False, repr=False, compare=False)
    # the big ones on first use (hash_set, word_set): most new items find no candidate,
    # and a parsed member may never be compared
    _hash_set: frozenset[int] | None = field(default=None, init=False, repr=False, compare=False)
    _word_set: frozenset[int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concept_set", frozenset(self.concepts))
        object.__setattr__(self, "weight", _weight(self.concepts))

    @property
    def hash_set(self) -> frozenset[int]:
        return _made_once(self, "_hash_set", self.hashes)

    @property
    def word_set(self) -> frozenset[int]:
        return _made_once(self, "_word_set", self.words)

    @property
    def complete(self) -> bool:
        """True when the sketch holds every shingle hash, so overlaps are exact."""
        return len(self.hashes) == self.size


def _made_once(sig: StorySignature, slot: str, values: tuple[int, ...]) -> frozenset[int]:
    """The set kept in ``slot`` of a frozen signature, made on the first call."""
    found: frozenset[int] | None = getattr(sig, slot)
    if found is None:
        found = frozenset(values)
        object.__setattr__(sig, slot, found)
    return found


@dataclass(frozen=True, slots=True)
class Overlap:
    """How much two items share, as ``same_story`` sees it."""

    jaccard: float
    shared: float  # shingles in common (estimated for incomplete sketches)
    containment: float  # shared / the smaller item's shingles
    smaller: int  # shingles of the smaller item


def within_window(a: datetime, b: datetime, window: timedelta = STORY_WINDOW) -> bool:
    """Whether two publication times are close enough for one story."""
    return abs(a - b) <= window


def story_signature(title: str, summary: str) -> StorySignature:
    body = _without_dateline(summary)  # the shingles and the concept evidence both read it
    body_words, body_flags = _tokens(_clean_summary(body))
    names = set(compress(body_words, body_flags))
    # A word the body capitalizes is a name in the headline too, wherever it stands.
    title_words, title_flags = _tokens(_clean_title(title))
    title_flags = [a or w in names for w, a in zip(title_words, title_flags, strict=True)]
    names.update(compress(title_words, title_flags))
    title_shingles = _shingles(title_words, title_flags)
    title_hashes = set(_hash32s(title_shingles))
    every = title_hashes.union(_hash32s(_shingles(body_words, body_flags) - title_shingles))
    words = set(title_words).union(body_words)
    headline = {word for word in title_words if word in names}
    word_hash = _hash16s(words if len(words) <= WORDS_SIZE else headline)
    evidence = concept_evidence.extract(title, body)
    return StorySignature(
        size=len(every),
        hashes=tuple(nsmallest(SKETCH_SIZE, every)),
        title=tuple(nsmallest(TITLE_SKETCH_SIZE, title_hashes)),
        words=tuple(sorted(set(word_hash.values()))) if len(words) <= WORDS_SIZE else (),
        headline=tuple(sorted({word_hash[word] for word in headline}))[:HEADLINE_SIZE],
        concepts=tuple(sorted(evidence.codes))[:MAX_CONCEPTS],
        title_concepts=tuple(sorted(evidence.title))[:MAX_CONCEPTS],
        action=evidence.action,
    )


def similarity(a: StorySignature, b: StorySignature) -> float:
    """Estimated Jaccard similarity of the two items' weighted shingle sets."""
    return overlap(a, b).jaccard


def same_story(a: StorySignature, b: StorySignature) -> bool:
    """The tuned decision; the caller has already checked ``within_window``.

    Either the texts are copies of each other (``same_text``) or, in any language, they
    report the same event (``same_event``).
    """
    return same_text(a, b) or same_event(a, b)


def same_text(a: StorySignature, b: StorySignature) -> bool:
    """Whether the shingles say one text is a copy of the other (the MinHash decision).

    Between clear overlap and none, templated reports of different events (two drone
    raids, two CVE advisories) look alike; there the names and numbers of at least one
    headline must appear in the other item.
    """
    o = overlap(a, b)
    if o.shared < MIN_SHARED:
        return False
    if o.jaccard >= CERTAIN_JACCARD:
        return True
    if headline_coverage(a, b) < HEADLINE_COVERAGE:
        return False
    return o.jaccard >= SAME_JACCARD or o.containment >= SAME_CONTAINMENT


@dataclass(frozen=True, slots=True)
class EventOverlap:
    """What two items share of their concept evidence, weighed by kind."""

    shared: float  # weight of the codes both carry
    jaccard: float  # shared / weight of the union
    containment: float  # shared / the lighter item's weight
    same_kind_of_thing: bool  # they share a weapon, system or action, not only names
    anchored: bool  # they share a person, agency, place or number (a year aside)
    place_conflict: bool  # both headlines name places the other item never mentions


def event_overlap(a: StorySignature, b: StorySignature) -> EventOverlap:
    shared_codes = a.concept_set & b.concept_set
    shared = _weight(shared_codes)
    union = a.weight + b.weight - shared
    lighter = min(a.weight, b.weight)
    kinds = {code & 7 for code in shared_codes}  # concept_evidence.kind_of
    return EventOverlap(
        shared=shared,
        jaccard=shared / union if union else 0.0,
        containment=shared / lighter if lighter else 0.0,
        same_kind_of_thing=bool(kinds & _SPECIFIC_KINDS),
        anchored=bool(kinds & _ANCHOR_KINDS) or _headlines_pin(a, b),
        place_conflict=_place_conflict(a, b),
    )


def same_event(a: StorySignature, b: StorySignature) -> bool:
    """Whether two items, in any languages, name enough of the same things to be one event.

    They must share a weapon, system or action, something that pins the event down (a
    person, an agency, a place or a number, not only a year; or a country and a weapon or
    action both headlines name), and enough weight. Long reports that each mention troops,
    sanctions, a launch and a treaty share those words but are different events. When both
    headlines name places, one of them must appear in the other item (drones over
    Belgorod, drones over Kursk).
    """
    if not a.concepts or not b.concepts:
        return False
    if _weight(a.concept_set & b.concept_set) < EVENT_MIN_SHARED:
        return False  # the cheapest of the tests that must all pass, and most pairs fail it
    o = event_overlap(a, b)
    if not (o.same_kind_of_thing and o.anchored) or o.place_conflict:
        return False
    if o.shared < EVENT_MIN_SHARED:
        return False
    return o.jaccard >= EVENT_JACCARD or o.containment >= EVENT_CONTAINMENT


def _headlines_pin(a: StorySignature, b: StorySignature) -> bool:
    """Both headlines name the same country and the same weapon or action ("North Korea
    fires ballistic missile", "북한, 탄도미사일 발사"): the headline says what happened, so
    this pins the event as a shared place or number would."""
    kinds = {code & 7 for code in set(a.title_concepts).intersection(b.title_concepts)}
    return _STATE in kinds and bool(kinds & _SPECIFIC_KINDS)


def _place_conflict(a: StorySignature, b: StorySignature) -> bool:
    """Each headline names places and the other item mentions none of them. A headline's
    place may be who said it ("..., Seoul says"): it must be missing from the other's text,
    not only from its headline."""
    first = [c for c in a.title_concepts if c & 7 == _WHERE]
    if not first:  # most headlines name no place
        return False
    second = [c for c in b.title_concepts if c & 7 == _WHERE]
    return bool(second) and b.concept_set.isdisjoint(first) and a.concept_set.isdisjoint(second)


def _weight(codes: Iterable[int]) -> float:
    """Weights are multiples of 0.25, so the float sum is exact in any order."""
    return sum(map(_WEIGHT_OF_KIND.__getitem__, map(and_, codes, repeat(7))))


_WHAT = concept_evidence.WHAT_CODE
_WHERE = concept_evidence.KIND_CODE["where"]
_SPECIFIC_KINDS = frozenset({_WHAT, concept_evidence.KIND_CODE["thing"]})
_ANCHOR_KINDS = frozenset(concept_evidence.KIND_CODE[k] for k in ("who", "where", "small", "big"))


def joins_story(sig: StorySignature, members: Iterable[StorySignature]) -> bool:
    """Whether an item belongs to a story, given the story's members within the window.

    Half of them must agree. "Any member" chains: one headline-only item that fits two
    stories would pull the second into the first (story-level precision 0.76 against
    0.90 on the labelled set, see bench/stories.py).
    """
    votes = [same_story(sig, member) for member in members]
    return bool(votes) and 2 * sum(votes) >= len(votes)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A story an item may join: its members' signatures with when each was seen."""

    story_id: int
    members: tuple[tuple[StorySignature, datetime], ...]


def choose_story(
    sig: StorySignature,
    seen: datetime,
    candidates: Iterable[Candidate],
    window: timedelta = STORY_WINDOW,
) -> int | None:
    """The story an item seen at ``seen`` joins, or None for a story of its own.

    A candidate qualifies when its members within the window vote the item in
    (``joins_story``); of those, the one with the most similar member wins, the first given
    on a tie (the filer gives them oldest first). The worker, tests/feeds/test_story.py and
    bench/stories.py all file through it (``StoryFiler``).
    """
    best: tuple[float, int] | None = None
    for candidate in candidates:
        near = _voters(candidate.members, seen, window)
        if not near or not joins_story(sig, near):
            continue
        score = max(similarity(sig, member) for member in near)
        if best is None or score > best[0]:  # on a tie the earlier candidate stays
            best = (score, candidate.story_id)
    return None if best is None else best[1]


def _voters(
    members: Iterable[tuple[StorySignature, datetime]], seen: datetime, window: timedelta
) -> list[StorySignature]:
    """The members within the window that vote: the ``MAX_VOTERS`` seen closest to the item.
    A big story (hundreds of copies of one launch) costs each new item a bounded number of
    comparisons, and its nearest copies speak for it."""
    gaps = [(abs(at - seen), n, m) for n, (m, at) in enumerate(members)]
    near = [entry for entry in gaps if entry[0] <= window]  # within_window
    if len(near) > MAX_VOTERS:
        near = sorted(near, key=itemgetter(0, 1))[:MAX_VOTERS]
    return [m for _, _, m in near]


class StoryFiler:
    """Files items into stories one at a time, in the order given: band keys find the
    candidate stories, ``choose_story`` decides. Stories it makes get ids -1, -2, ...

    The worker seeds it with the stories the database holds for a poll's band keys; the
    tests and bench/stories.py start it empty. All three file by this one loop.
    """

    def __init__(
        self,
        members: dict[int, list[tuple[StorySignature, datetime]]] | None = None,
        index: dict[int, set[int]] | None = None,
        window: timedelta = STORY_WINDOW,
    ) -> None:
        self.members = members if members is not None else {}
        self.index = index if index is not None else {}
        self.window = window
        self.made = 0

    def file(self, sig: StorySignature, seen: datetime, keys: Iterable[int] | None = None) -> int:
        """The story the item joins (or a new one's negative id); ``keys`` are its band
        keys when the caller has them already."""
        keys = band_keys(sig) if keys is None else tuple(keys)
        ids = [sid for sid in nearest_candidates(keys, self.index) if sid in self.members]
        candidates = [Candidate(sid, tuple(self.members[sid])) for sid in ids]
        chosen = choose_story(sig, seen, candidates, self.window)
        if chosen is None:
            self.made += 1
            chosen = -self.made
            self.members[chosen] = []
        self.members[chosen].append((sig, seen))
        index = self.index
        for key in keys:
            stories = index.get(key)
            if stories is None:
                index[key] = {chosen}
            else:
                stories.add(chosen)
        return chosen


def nearest_candidates(
    keys: Iterable[int], index: dict[int, set[int]], limit: int = MAX_CANDIDATES
) -> list[int]:
    """The stories an item is compared with: at most ``limit`` of those its band keys point
    at, the ones sharing the most keys first (in LSH, more shared bands means more alike),
    the newest on a tie; returned oldest first, the order ``choose_story`` breaks ties in.
    Chance collisions with many stories then cost a bounded number of comparisons."""
    shared = Counter(chain.from_iterable(map(index.get, keys, repeat(()))))
    if not shared:
        return []
    newest_first = sorted(shared, key=_age, reverse=True)
    best = sorted(newest_first, key=lambda sid: -shared[sid])[:limit]  # a stable sort
    return sorted(best, key=_age)


def informative_keys(
    index: dict[int, set[int]], limit: int = MAX_STORIES_PER_KEY
) -> dict[int, set[int]]:
    """The band keys that still tell stories apart: one shared by more than ``limit``
    different stories in the window is a stock phrase ("officials said on Tuesday"), and
    following it would compare each new item with all of them for nothing."""
    return {key: stories for key, stories in index.items() if len(stories) <= limit}


def _age(story_id: int) -> tuple[bool, int]:
    return story_id < 0, abs(story_id)


def headline_coverage(a: StorySignature, b: StorySignature) -> float:
    """The larger share of one headline's names and numbers found among the other's words.

    1.0 (no evidence) unless both headlines name something and both texts are short
    enough to keep their words: a rewritten headline may add one name the wire lacks.
    """
    if not (a.headline and b.headline and a.words and b.words):
        return 1.0
    return max(
        len(y.word_set.intersection(x.headline)) / len(x.headline) for x, y in ((a, b), (b, a))
    )


def overlap(a: StorySignature, b: StorySignature) -> Overlap:
    """Exact when both sketches are complete, else the bottom-k estimate."""
    _check_versions(a, b)
    if not a.hashes or not b.hashes:
        return Overlap(0.0, 0.0, 0.0, min(a.size, b.size))
    sa, sb = a.hash_set, b.hash_set
    both = sa & sb
    if a.complete and b.complete:  # the union is counted, not built: that took 2/3 of a call
        shared = float(len(both))
        jaccard = shared / (len(sa) + len(sb) - len(both))
    else:  # bottom-k estimator: the k smallest of the union are a uniform sample of it
        union = sorted(sa | sb)[:SKETCH_SIZE]
        jaccard = len(both.intersection(union)) / len(union)
        shared = jaccard * (a.size + b.size) / (1 + jaccard)
    smaller = min(a.size, b.size)
    return Overlap(jaccard, shared, shared / smaller, smaller)


def band_keys(sig: StorySignature) -> tuple[int, ...]:
    """LSH keys as signed 64-bit ints; items of one story share one with high probability.

    Body bands cover every shingle; title bands let a headline-only item find a copy
    that carries the same headline. The band number, the kind and the signature version
    are hashed into each key, so one indexed column holds them all.
    """
    if not sig.hashes:
        return ()
    body = _bands(_minhash(sig.hashes, BODY_BANDS * BODY_ROWS), BODY_ROWS, 0, sig.version)
    title: tuple[int, ...] = ()
    if sig.title:
        minima = _minhash(sig.title, TITLE_BANDS * TITLE_ROWS)
        title = _bands(minima, TITLE_ROWS, 1, sig.version)
    return body + title + concept_keys(sig)


def concept_keys(sig: StorySignature) -> tuple[int, ...]:
    """Keys that let copies in other languages find each other: every pair of the item's
    ``CONCEPT_KEYS`` heaviest concepts and big numbers (countries aside, which a whole topic
    shares) that holds a person, agency, place or number. Copies of one event share their
    heaviest evidence and ``same_event`` needs such an anchor, so they share a pair; pairs of
    common nouns alone (a launch, a satellite) would point at every story of a topic."""
    heavy = sorted(
        (c for c in sig.concepts if c & 7 != _STATE and _WEIGHT_OF_KIND[c & 7] >= 1.0),
        key=lambda c: (-_WEIGHT_OF_KIND[c & 7], c),
    )[:CONCEPT_KEYS]
    keys = []
    for first, second in combinations(sorted(heavy), 2):
        if first & 7 not in _ANCHOR_KINDS and second & 7 not in _ANCHOR_KINDS:
            continue  # same_event needs a shared anchor: a launch and a satellite are not one
        data = struct.pack("<BBII", sig.version, 2, first, second)
        keys.append(int.from_bytes(_digest64(data), "big", signed=True))
    return tuple(keys)


_STATE = concept_evidence.STATE_CODE


def to_json(sig: StorySignature) -> str:
    """Compact JSON for a TEXT column: hashes as big-endian base64, 0.6 kB for a wire item."""
    fields = {
        "v": sig.version,
        "n": sig.size,
        "h": _pack(sig.hashes, "I"),
        "t": _pack(sig.title, "I"),
        "w": _pack(sig.words, "H"),
        "a": _pack(sig.headline, "H"),
        "c": _pack(sig.concepts, "I"),
        "ct": _pack(sig.title_concepts, "I"),
        "ca": sig.action,
    }
    return json.dumps(fields, separators=(",", ":"))


def from_json(text: str) -> StorySignature:
    """Parse a stored signature; raise ValueError for a malformed or older one.

    After a version change the worker recomputes signatures from the stored text.
    """
    try:
        data = json.loads(text)
        sig = StorySignature(
            size=data["n"],
            hashes=_unpack(data["h"], "I"),
            title=_unpack(data["t"], "I"),
            words=_unpack(data["w"], "H"),
            headline=_unpack(data["a"], "H"),
            version=data["v"],
            # signatures stored before concept evidence have none: they match by text only
            concepts=_unpack(data.get("c", ""), "I"),
            title_concepts=_unpack(data.get("ct", ""), "I"),
            action=data.get("ca", 0),
        )
    except (TypeError, KeyError, struct.error, binascii.Error, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed story signature: {exc}") from exc
    if sig.version != SIGNATURE_VERSION:
        raise ValueError(f"story signature version {sig.version}, expected {SIGNATURE_VERSION}")
    if not isinstance(sig.size, int) or not len(sig.hashes) <= sig.size:
        raise ValueError("story signature size is smaller than its sketch")
    limits = (
        (sig.hashes, SKETCH_SIZE),
        (sig.title, TITLE_SKETCH_SIZE),
        (sig.words, WORDS_SIZE),
        (sig.headline, HEADLINE_SIZE),
        (sig.concepts, MAX_CONCEPTS),
        (sig.title_concepts, MAX_CONCEPTS),
    )
    if any(len(values) > limit for values, limit in limits):
        raise ValueError("story signature sketch is too long")
    return sig


def _clean_title(title: str) -> str:
    text = _TITLE_TAG.sub("", unicodedata.normalize("NFKC", title).strip())
    return _undotted(_OUTLET_SUFFIX.sub("", text))


def _without_dateline(summary: str) -> str:
    """The summary without outlet boilerplate and dateline, as the copies have in common."""
    for pattern, needles in _BOILERPLATE:  # before NFKC, which turns "ⓒ" into "c"
        if any(needle in summary for needle in needles):
            summary = pattern.sub(" ", summary)
    return _DATELINE.sub("", unicodedata.normalize("NFKC", summary).strip(), count=1)


def _clean_summary(without_dateline: str) -> str:
    return _undotted(without_dateline).strip()


def _undotted(text: str) -> str:
    if _ABBREVIATION_HINT.search(text) is None:
        return text
    return _ABBREVIATION.sub(_undot, text)


def _undot(match: re.Match[str]) -> str:
    return match.group().replace(".", "")


def _tokens(text: str) -> tuple[list[str], list[bool]]:
    """Casefolded words, and for each whether it is a number or a name mid-sentence.

    In Title Case or ALL CAPS text (three in four words capitalized) capitals say
    nothing, so only numbers are flagged. Two lists rather than pairs: the shingles and
    the name set are built from them by C loops (``map``, ``compress``).
    """
    found = _GAP_AND_TOKEN.findall(text)  # (what precedes the word, the word)
    words = [word for _, word in found]
    # capitalized mid-sentence: no sentence end between the word and the one before
    flags = [word[0].isupper() and _SENTENCE_END.isdisjoint(gap) for gap, word in found]
    if flags:
        flags[0] = False
    trust_case = 4 * sum(flags) < 3 * (len(words) - 1) or len(words) < 4
    if not trust_case:
        flags = [False] * len(words)
    if not "".join(words).isalpha():  # one test for the many texts without a number
        flags = [flag or _has_digit(word) for flag, word in zip(flags, words, strict=True)]
    # casefold maps each character on its own (unlike lower's final sigma) and makes no
    # space, so one call over the joined words does what a call per word would
    words = " ".join(words).casefold().split(" ") if words else []
    if text.endswith(_ELLIPSIS) and words:
        words.pop()  # a truncated summary often ends in half a word
        flags.pop()
    return words, flags


def _has_digit(word: str) -> bool:
    return not word.isalpha() and any(c.isdigit() for c in word)  # most words: isalpha


def _shingles(words: list[str], flags: list[bool]) -> set[str]:
    """Word bigrams (the one word of a one-word text), each ``ANCHOR_WEIGHT`` times when
    it holds a name or a number: ``"word word\\x00copy"``. Every bigram is made with its
    first copy's suffix; the other copies are made for the anchored ones only."""
    if len(words) < 2:
        firsts, anchored = [word + "\x000" for word in words], flags
    else:
        firsts = [f"{first} {second}\x000" for first, second in pairwise(words)]
        anchored = list(map(or_, flags, flags[1:]))
    shingles = set(firsts)
    heavy = [first[:-1] for first in compress(firsts, anchored)]  # "word word\x00"
    for copy in range(1, ANCHOR_WEIGHT):
        shingles.update([f"{gram}{copy}" for gram in heavy])
    return shingles


# Copied rather than made anew: a new one with ``person`` costs more than the hashing.
# (A memo of word and shingle hashes was tried: its lookups in a big dict, once a poll's
# items have filled it, cost as much as hashing again.)
_HASH32 = hashlib.blake2b(digest_size=4, person=_PERSON)
_HASH16 = hashlib.blake2b(digest_size=2, person=_PERSON)


def _hash32s(shingles: Collection[str]) -> tuple[int, ...]:
    """The 32-bit hash of each shingle, read from the joined digests in one unpack."""
    digests = b"".join(map(_digest, repeat(_HASH32), shingles))
    return struct.unpack(f">{len(shingles)}I", digests)


def _hash16s(words: Collection[str]) -> dict[str, int]:
    """Each word's 16-bit hash. Small hashes suffice: a chance hit among ~100 words is 1 in
    650."""
    listed = list(words)
    digests = b"".join(map(_digest, repeat(_HASH16), listed))
    return dict(zip(listed, struct.unpack(f">{len(listed)}H", digests), strict=True))


def _digest(start: hashlib.blake2b, text: str) -> bytes:
    hasher = start.copy()
    hasher.update(text.encode())
    return hasher.digest()


def _bands(minima: bytes, rows: int, kind: int, version: int) -> tuple[int, ...]:
    """One key per band of ``rows`` MinHash values (``minima``: little-endian uint32s), as
    ``struct.pack("<BBH{rows}I", version, kind, band, *values)`` hashed: the values are
    sliced from the packed minima rather than packed again, and the digests are read as
    signed big-endian ints in one ``struct.unpack``."""
    width = 4 * rows
    headers = _band_headers(version, kind, len(minima) // width)
    digests = b"".join(
        map(
            _digest64,
            [head + minima[n * width : (n + 1) * width] for n, head in enumerate(headers)],
        )
    )
    return struct.unpack(f">{len(headers)}q", digests)


@lru_cache(maxsize=16)
def _band_headers(version: int, kind: int, bands: int) -> tuple[bytes, ...]:
    return tuple(struct.pack("<BBH", version, kind, band) for band in range(bands))


_KEY_HASH = hashlib.blake2b(digest_size=8, person=_PERSON)  # copied: faster than a new one


def _digest64(data: bytes) -> bytes:
    hasher = _KEY_HASH.copy()
    hasher.update(data)
    return hasher.digest()


def _minhash(hashes: tuple[int, ...], count: int) -> bytes:
    """``count`` MinHash values of a sketch, packed as little-endian uint32s.

    SHAKE-128 of each shingle hash gives its hash values (little-endian uint32). An XOF's
    shorter output is a prefix of its longer one, so one cached output of ``_COLUMNS``
    values serves the body (64 values) and the title (the first 16) alike. The minima of the
    columns are taken by numpy in one call (64 ``min`` over strided slices cost 0.25 ms)."""
    rows = b"".join(_HASH_VALUES.values(hashes))
    table = np.frombuffer(rows, dtype="<u4").reshape(len(hashes), _COLUMNS)
    minima: np.ndarray[tuple[int], np.dtype[np.uint32]] = table[:, :count].min(axis=0)
    return minima.astype("<u4", copy=False).tobytes()


_COLUMNS = max(BODY_BANDS * BODY_ROWS, TITLE_BANDS * TITLE_ROWS)


def _hash_values(shingle_hashes: list[int]) -> list[bytes]:
    return [hashlib.shake_128(h.to_bytes(4, "big")).digest(4 * _COLUMNS) for h in shingle_hashes]


# The SHAKE output of the bigrams that recur in every item is computed once: 131,072 of
# 256 bytes, about 50 MB when full (a SHAKE call costs ~1 us, a hit ~0.1 us).
_HASH_VALUES = Memo(_hash_values, 1 << 17)


def _check_versions(a: StorySignature, b: StorySignature) -> None:
    if a.version != b.version:
        raise ValueError(f"cannot compare story signatures v{a.version} and v{b.version}")


def _pack(hashes: tuple[int, ...], code: str) -> str:
    return base64.b64encode(struct.pack(f">{len(hashes)}{code}", *hashes)).decode("ascii")


def _unpack(text: str, code: str) -> tuple[int, ...]:
    raw = base64.b64decode(text, validate=True)
    width = struct.calcsize(code)
    if len(raw) % width:
        raise ValueError("story signature sketch is not a whole number of hashes")
    return struct.unpack(f">{len(raw) // width}{code}", raw)
