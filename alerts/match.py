"""Compile every watch-list into one automaton and match items against it.

All terms of all watch-lists become keys of one Aho-Corasick automaton (daachorse's
double array) over folded text (see :mod:`alerts.textnorm`), padded with a space so word
boundaries are part of the key: ``" icbm "`` for a word, ``" missile"`` for ``missile*``
and for Korean terms, which take particles on the right. One pass finds every term
occurrence; only the watch-lists whose requirement sets (see
``alerts.query.requirements``) all have a found term are evaluated: the presearcher idea
of Lucene Monitor. That is sound because queries that could be true with none of their
terms present are refused at compile time, and it keeps the cost per item nearly flat as
watch-lists grow. Queries are compiled to closures on first use. Positions are byte
offsets into the folded UTF-8 text until a match is built, when they are mapped back to
the original.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, product
from operator import itemgetter

import daachorse

from alerts.morphology import russian_forms
from alerts.query import (
    Alias,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    parse_query,
    require_positive,
    requirements,
    terms,
)
from alerts.textnorm import Folded, fold, snippet
from alerts.types import Hit, Match
from alerts.watchlists import WatchList

_SPACE_MARKS = bytes(32 if byte == 32 else 120 for byte in range(256))  # " " or "x"
_PATTERN = itemgetter(2)  # of an automaton hit (start, end, pattern)
_ALL_FIELDS = frozenset({"title", "summary"})
_MAX_SPANS = 256  # per NEAR operand, bounds the pairwise check on pathological items
SNIPPET_WIDTH = 200


class WatchListError(ValueError):
    """One invalid query or exclude of one watch-list."""

    def __init__(self, watchlist_id: str, field: str, message: str, column: int) -> None:
        super().__init__(f"watch-list {watchlist_id!r}, {field}, column {column}: {message}")
        self.watchlist_id = watchlist_id
        self.field = field  # "query" or "exclude"
        self.message = message
        self.column = column


class WatchListErrors(ValueError):
    """Every error found while compiling, so ``watchfloor check`` can print them all."""

    def __init__(self, errors: Sequence[WatchListError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = list(errors)


# A hit: (field, start, end), byte offsets of the term in the padded folded text of the
# field. A span: (field, first word, last word, hits), a run of words that satisfied a
# NEAR operand. Plain tuples: items are matched by the thousand and tuples are cheap.
_Hit = tuple[str, int, int]
_Span = tuple[str, int, int, tuple[_Hit, ...]]
_Evaluator = Callable[["_Item"], list[_Hit] | None]


@dataclass(slots=True)
class _Compiled:
    watchlist: WatchList
    query: Node
    exclude: Node | None
    feeds: frozenset[str]
    tags: frozenset[str]
    languages: frozenset[str] = frozenset()
    _evaluate: _Evaluator | None = None

    def hits(self, item: _Item) -> list[_Hit] | None:
        """The hits that make the watch-list fire on ``item``, or None.

        The evaluator is compiled on first use: most watch-lists are candidates for few
        items, and a rebuild stays fast. Two threads may both compile it; either wins.
        """
        if self._evaluate is None:
            self._evaluate = _list_evaluator(self.query, self.exclude)
        return self._evaluate(item)

    def allows(self, feed_id: str | None, tags: frozenset[str], language: str | None) -> bool:
        if self.languages and language is not None and language not in self.languages:
            return False
        if not self.feeds and not self.tags:
            return True
        return feed_id in self.feeds or not self.tags.isdisjoint(tags)


@dataclass(slots=True)
class _Text:
    original: str
    folded: Folded
    padded: bytes  # b" " + folded.data + b" ", so boundaries at the ends are spaces too
    _marks: bytes | None = None
    _decoded: tuple[int, int] = (0, 0)  # a byte offset of folded.data and its char index

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original char span of the padded byte span ``[start, end)``."""
        return self.folded.span(self._char_index(start - 1), self._char_index(end - 1))

    def _char_index(self, offset: int) -> int:
        """The char index of a byte offset of folded.data (at a char boundary).

        Hits come in order, so each call decodes only the bytes since the last one.
        """
        if self.folded.ascii:
            return offset
        at, index = self._decoded
        if offset < at:
            at, index = 0, 0
        index += len(self.folded.data[at:offset].decode())
        self._decoded = (offset, index)
        return index

    def words(self, start: int, end: int) -> tuple[int, int]:
        """Indexes of the first and last word of the bytes ``[start, end)`` (for NEAR)."""
        if self._marks is None:  # word starts are " x": counting them is C speed
            self._marks = self.padded.translate(_SPACE_MARKS)
        first = self._marks.count(b" x", 0, start + 1) - 1
        return first, first + self._marks.count(b" x", start + 1, end)


@dataclass(slots=True)
class _Item:
    texts: dict[str, _Text]
    raw: dict[str, list[tuple[int, int, int]]]  # field -> (start, end, pattern) found
    keys: Sequence[str]  # automaton pattern -> term key
    _found: dict[str, list[tuple[str, int, int]]] | None = None

    @property
    def found(self) -> dict[str, list[tuple[str, int, int]]]:
        """Key -> (field, start, end) of each occurrence; built only for evaluation."""
        if self._found is None:
            found: defaultdict[str, list[tuple[str, int, int]]] = defaultdict(list)
            keys = self.keys
            for name, hits in self.raw.items():
                for start, end, pattern in hits:
                    found[keys[pattern]].append((name, start, end))
            self._found = found
        return self._found


def compile_matcher(
    watchlists: Sequence[WatchList], aliases: Mapping[str, Sequence[str]]
) -> Matcher:
    """Build a matcher for the enabled watch-lists; raise WatchListErrors listing every error.

    Disabled watch-lists are checked too, so they can be switched on safely.
    """
    errors: list[WatchListError] = []
    compiled: list[_Compiled] = []
    seen: set[str] = set()
    for watchlist in watchlists:
        if watchlist.id in seen:
            errors.append(WatchListError(watchlist.id, "query", "duplicate watch-list id", 1))
        seen.add(watchlist.id)
        entry = _compile_one(watchlist, aliases, errors)
        if entry is not None and watchlist.enabled:
            compiled.append(entry)
    if errors:
        raise WatchListErrors(errors)
    return Matcher(compiled)


def _compile_one(
    watchlist: WatchList, aliases: Mapping[str, Sequence[str]], errors: list[WatchListError]
) -> _Compiled | None:
    query = _parse(watchlist, "query", watchlist.query, aliases, errors)
    exclude = None
    if watchlist.exclude is not None:
        exclude = _parse(watchlist, "exclude", watchlist.exclude, aliases, errors)
    if query is None or (watchlist.exclude is not None and exclude is None):
        return None
    feeds = frozenset(s for s in watchlist.sources if not s.startswith("tag:"))
    tags = frozenset(s[4:] for s in watchlist.sources if s.startswith("tag:"))
    return _Compiled(watchlist, query, exclude, feeds, tags, frozenset(watchlist.languages))


def _parse(
    watchlist: WatchList,
    field_name: str,
    text: str,
    aliases: Mapping[str, Sequence[str]],
    errors: list[WatchListError],
) -> Node | None:
    try:
        forms = russian_forms if watchlist.russian_forms else None
        node = parse_query(text, aliases, forms)
        if field_name == "query":
            require_positive(node)
    except QueryError as exc:
        errors.append(WatchListError(watchlist.id, field_name, exc.message, exc.column))
        return None
    return node


class Matcher:
    """Thread-safe once built; swap a new one in on config change."""

    def __init__(self, compiled: Sequence[_Compiled]) -> None:
        self._lists = tuple(compiled)
        self.watchlist_ids = frozenset(c.watchlist.id for c in compiled)
        keys, triggers, checks = _presearch_tables(self._lists)
        pattern_keys, self._automaton = _automaton(keys)
        self._pattern_names = [keys[i] for i in pattern_keys]
        # the presearch works on automaton pattern numbers, saving a lookup per hit
        self._triggers = [triggers[key] for key in pattern_keys]
        patterns_of: dict[int, list[int]] = defaultdict(list)
        for pattern, key in enumerate(pattern_keys):
            patterns_of[key].append(pattern)
        self._checks = [
            tuple(frozenset(p for key in group for p in patterns_of[key]) for group in groups)
            for groups in checks
        ]

    def match(
        self,
        title: str,
        summary: str,
        *,
        feed_id: str | None = None,
        feed_tags: Iterable[str] = (),
        language: str | None = None,
    ) -> list[Match]:
        """Matches of the enabled watch-lists whose sources allow this feed and whose
        ``languages`` allow this item's (None: unknown, allowed), in config order."""
        item = self._scan({"title": title, "summary": summary})
        candidates = self._candidates(item)
        if not candidates:  # most items
            return []
        tags = frozenset(feed_tags)
        matches = (
            _match_one(self._lists[i], item)
            for i in candidates
            if self._lists[i].allows(feed_id, tags, language)
        )
        return [match for match in matches if match is not None]

    def _candidates(self, item: _Item) -> list[int]:
        """The presearch: lists triggered by a found key whose other requirements all hold."""
        found = set(map(_PATTERN, chain.from_iterable(item.raw.values())))  # loops at C speed
        triggered = set(chain.from_iterable(map(self._triggers.__getitem__, found)))
        checks, missing = self._checks, found.isdisjoint
        return sorted(index for index in triggered if not any(map(missing, checks[index])))

    def _scan(self, fields: Mapping[str, str]) -> _Item:
        item = _Item({}, {}, self._pattern_names)
        texts, raw, automaton = item.texts, item.raw, self._automaton
        for name, original in fields.items():
            folded = fold(original)
            texts[name] = text = _Text(original, folded, b"".join((b" ", folded.data, b" ")))
            if automaton is not None:
                raw[name] = automaton.find_overlapping(text.padded)
        return item


def _presearch_tables(
    lists: Sequence[_Compiled],
) -> tuple[list[str], list[tuple[int, ...]], list[tuple[frozenset[int], ...]]]:
    """Every key; per key the lists it triggers; per list the other sets it needs.

    A list is triggered by the keys of its smallest requirement set.
    """
    groups = [sorted(set(requirements(c.query)), key=len) for c in lists]
    triggers: dict[str, list[int]] = {}
    for index, entry in enumerate(lists):
        # terms under NOT and in excludes are no requirement but must be found too
        for term, _ in (*terms(entry.query), *terms(entry.exclude)):
            triggers.setdefault(term.key, [])
        for key in groups[index][0]:
            triggers[key].append(index)
    number = {key: i for i, key in enumerate(triggers)}
    checks = [tuple(frozenset(number[k] for k in g) for g in gs[1:]) for gs in groups]
    return list(triggers), [tuple(t) for t in triggers.values()], checks


def _automaton(
    keys: Sequence[str],
) -> tuple[list[int], daachorse.DoubleArrayAhoCorasick | None]:
    """The automaton over every pattern of every key, and the key number of each pattern.

    daachorse, not ahocorasick_rs: its double array with a prefilter scanned the
    benchmark's items at 10,000 terms in 12.5 us against 20 us (and builds in 28 ms).
    """
    if not keys:
        return [], None
    variants = [(i, pattern) for i, key in enumerate(keys) for pattern in _variants(key)]
    automaton = daachorse.DoubleArrayAhoCorasick([p for _, p in variants])
    return [i for i, _ in variants], automaton


def _match_one(entry: _Compiled, item: _Item) -> Match | None:
    hits = entry.hits(item)
    return None if hits is None else _build_match(entry.watchlist.id, hits, item)


def _variants(key: str) -> list[bytes]:
    """Patterns for a key: a phrase also matches with a punctuation mark between its words.

    Folding turns ``"Hwasong-18" missile`` into ``hwasong 18  missile`` (the quote is a
    space too), so each gap may be one or two spaces, for phrases of up to 5 words.
    """
    words = key.strip(" ").split(" ")
    if len(words) == 1 or len(words) > 5:
        return [key.encode()]
    gaps = product((" ", "  "), repeat=len(words) - 1)
    bodies = ("".join(w + g for w, g in zip(words, (*gap, ""), strict=True)) for gap in gaps)
    tail = " " if key.endswith(" ") else ""
    return [f" {body}{tail}".encode() for body in bodies]


def _list_evaluator(query: Node, exclude: Node | None) -> _Evaluator:
    query_hits = _evaluator(query, _ALL_FIELDS)
    if exclude is None:
        return query_hits
    exclude_hits = _evaluator(exclude, _ALL_FIELDS)

    def hits(item: _Item) -> list[_Hit] | None:
        found = query_hits(item)
        return None if found is None or exclude_hits(item) is not None else found

    return hits


def _evaluator(node: Node, fields: frozenset[str]) -> _Evaluator:
    """A function giving the hits that make ``node`` true in an item, or None when false.

    Queries are compiled to closures once, so matching an item does no dispatch on node
    types; each evaluator reads only the fields it is scoped to.
    """
    if isinstance(node, Term):
        return _term_evaluator(node, fields)
    if isinstance(node, (Alias, Near)):
        find_spans = _span_finder(node, fields)

        def positional(item: _Item) -> list[_Hit] | None:
            return [hit for span in find_spans(item) for hit in span[3]] or None

        return positional
    if isinstance(node, Field):
        return _evaluator(node.child, fields & {node.name})
    if isinstance(node, Not):
        child = _evaluator(node.child, fields)
        return lambda item: None if child(item) is not None else []
    children = tuple(_evaluator(child, fields) for child in node.children)
    if isinstance(node, And):

        def all_of(item: _Item) -> list[_Hit] | None:
            collected: list[_Hit] = []
            for child in children:
                result = child(item)
                if result is None:
                    return None
                collected += result
            return collected

        return all_of

    def any_of(item: _Item) -> list[_Hit] | None:
        collected: list[_Hit] | None = None
        for child in children:
            result = child(item)
            if result is not None:
                collected = result if collected is None else collected + result
        return collected

    return any_of


def _term_evaluator(term: Term, fields: frozenset[str]) -> _Evaluator:
    key = term.key
    trim = 1 if key.endswith(" ") else 0  # the boundary space is no part of the hit
    every_field = fields >= _ALL_FIELDS
    wildcard = term.wildcard

    def hits(item: _Item) -> list[_Hit] | None:
        found = item.found.get(key)
        if found is None:
            return None
        result = [
            (name, start + 1, end - trim)
            for name, start, end in found
            if every_field or name in fields
        ]
        if wildcard:  # the hit covers the whole word, e.g. "missiles"
            texts = item.texts
            result = [(name, s, texts[name].padded.find(b" ", e)) for name, s, e in result]
        return result or None

    return hits


def _span_finder(node: Node, fields: frozenset[str]) -> Callable[[_Item], list[_Span]]:
    """A function giving the word runs where a positional node holds (for NEAR)."""
    if isinstance(node, Term):
        term_hits = _term_evaluator(node, fields)

        def term_spans(item: _Item) -> list[_Span]:
            texts = item.texts
            return [
                (hit[0], *texts[hit[0]].words(hit[1], hit[2]), (hit,))
                for hit in term_hits(item) or ()
            ]

        return term_spans
    if isinstance(node, (Alias, Or)):
        children = node.terms if isinstance(node, Alias) else node.children
        finders = tuple(_span_finder(child, fields) for child in children)
        return lambda item: [span for find in finders for span in find(item)]
    if isinstance(node, Field):
        return _span_finder(node.child, fields & {node.name})
    assert isinstance(node, Near)
    left, right, distance = (
        _span_finder(node.left, fields),
        _span_finder(node.right, fields),
        node.distance,
    )

    def near(item: _Item) -> list[_Span]:
        lefts = left(item)[:_MAX_SPANS]
        rights = right(item)[:_MAX_SPANS] if lefts else []
        return [
            (a[0], min(a[1], b[1]), max(a[2], b[2]), a[3] + b[3])
            for a in lefts
            for b in rights
            if a[0] == b[0] and max(b[1] - a[2], a[1] - b[2]) - 1 <= distance
        ]

    return near


def _build_match(watchlist_id: str, term_hits: list[_Hit], item: _Item) -> Match:
    hits: list[Hit] = []
    for name, begin, stop in sorted(set(term_hits), key=lambda h: (h[0] != "title", h[1], h[2])):
        text = item.texts[name]
        start, end = text.original_span(begin, stop)
        context = snippet(text.original, start, end, SNIPPET_WIDTH)
        hits.append(Hit(text.original[start:end], name, start, end, context))
    return Match(watchlist_id, tuple(hits), _best_snippet(hits))


def _best_snippet(hits: list[Hit]) -> str:
    """Context of the summary hit whose window shows the most distinct terms (title if none)."""
    pool = [hit for hit in hits if hit.field == "summary"] or hits
    if not pool:
        return ""

    def score(hit: Hit) -> int:
        near = {h.term.casefold() for h in pool if abs(h.start - hit.start) <= SNIPPET_WIDTH // 2}
        return len(near)

    return max(pool, key=score).snippet
