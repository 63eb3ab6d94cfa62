"""Compile every watch-list into one automaton and match items against it.

All terms of all watch-lists become keys of one Aho-Corasick automaton over folded
text (see :mod:`alerts.textnorm`), padded with a space so word boundaries are part of
the key: ``" icbm "`` for a word, ``" missile"`` for ``missile*`` and for Korean terms,
which take particles on the right. One pass finds every term occurrence; only the
watch-lists whose requirement sets (see ``alerts.query.requirements``) all have a found
term are evaluated: the presearcher idea of Lucene Monitor. That is sound because queries
that could be true with none of their terms present are refused at compile time, and it
keeps the cost per item nearly flat as watch-lists grow. Positions are byte offsets into
the folded UTF-8 text until a match is built, when they are mapped back to the original.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import ahocorasick_rs

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

_WORD = re.compile(rb"(?<= )[^ ]")
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


@dataclass(frozen=True, slots=True)
class _Compiled:
    watchlist: WatchList
    query: Node
    exclude: Node | None
    feeds: frozenset[str]
    tags: frozenset[str]

    def allows(self, feed_id: str | None, tags: frozenset[str]) -> bool:
        if not self.feeds and not self.tags:
            return True
        return feed_id in self.feeds or not self.tags.isdisjoint(tags)


@dataclass(frozen=True, slots=True)
class _TermHit:
    field: str
    start: int  # byte offsets in the padded folded text of the field
    end: int


@dataclass(frozen=True, slots=True)
class _Span:
    """A run of words that satisfied a NEAR operand, with the hits inside it."""

    field: str
    first: int  # word index
    last: int
    hits: tuple[_TermHit, ...]


@dataclass(slots=True)
class _Text:
    original: str
    folded: Folded
    padded: bytes  # b" " + folded.data + b" ", so boundaries at the ends are spaces too
    _words: list[int] | None = None
    _lookups: int = 0

    def word_at(self, position: int) -> int:
        """Index of the word holding the byte at ``position`` (for NEAR)."""
        self._lookups += 1
        if self._words is None and self._lookups <= 8:  # few lookups: count, do not index
            return len(self.padded[: position + 1].split()) - 1
        if self._words is None:
            self._words = [m.start() for m in _WORD.finditer(self.padded)]
        return bisect_right(self._words, position) - 1


@dataclass(slots=True)
class _Item:
    texts: dict[str, _Text]
    raw: dict[str, list[tuple[int, int, int]]]  # field -> (pattern, start, end) found
    keys: Sequence[str]  # automaton pattern -> term key
    _found: dict[str, list[tuple[str, int, int]]] | None = None

    @property
    def found(self) -> dict[str, list[tuple[str, int, int]]]:
        """Key -> (field, start, end) of each occurrence; built only for evaluation."""
        if self._found is None:
            self._found = {}
            for name, hits in self.raw.items():
                for pattern, start, end in hits:
                    self._found.setdefault(self.keys[pattern], []).append((name, start, end))
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
    return _Compiled(watchlist, query, exclude, feeds, tags)


def _parse(
    watchlist: WatchList,
    field_name: str,
    text: str,
    aliases: Mapping[str, Sequence[str]],
    errors: list[WatchListError],
) -> Node | None:
    try:
        node = parse_query(text, aliases)
        if field_name == "query":
            require_positive(node)
    except QueryError as exc:
        errors.append(WatchListError(watchlist.id, field_name, exc.message, exc.column))
        return None
    return node


class Matcher:
    """Immutable and thread-safe once built; swap a new one in on config change."""

    def __init__(self, compiled: Sequence[_Compiled]) -> None:
        self._lists = tuple(compiled)
        self.watchlist_ids = frozenset(c.watchlist.id for c in compiled)
        keys, self._triggers, self._checks = _presearch_tables(self._lists)
        self._pattern_keys, self._automaton = _automaton(keys)
        self._pattern_names = [keys[i] for i in self._pattern_keys]

    def match(
        self,
        title: str,
        summary: str,
        *,
        feed_id: str | None = None,
        feed_tags: Iterable[str] = (),
    ) -> list[Match]:
        """Matches of the enabled watch-lists whose sources allow this feed, in config order."""
        item = self._scan({"title": title, "summary": summary})
        tags = frozenset(feed_tags)
        matches = (
            _match_one(self._lists[i], item)
            for i in self._candidates(item)
            if self._lists[i].allows(feed_id, tags)
        )
        return [match for match in matches if match is not None]

    def _candidates(self, item: _Item) -> list[int]:
        """The presearch: lists triggered by a found key whose other requirements all hold."""
        numbers = self._pattern_keys
        found = {numbers[pattern] for hits in item.raw.values() for pattern, _, _ in hits}
        triggers, checks = self._triggers, self._checks
        candidates = []
        for index in {index for pattern in found for index in triggers[pattern]}:
            for group in checks[index]:
                if group.isdisjoint(found):
                    break
            else:
                candidates.append(index)
        return sorted(candidates)

    def _scan(self, fields: Mapping[str, str]) -> _Item:
        item = _Item({}, {}, self._pattern_names)
        for name, original in fields.items():
            folded = fold(original)
            text = _Text(original, folded, b" " + folded.data + b" ")
            item.texts[name] = text
            if self._automaton is not None:
                found = self._automaton.find_matches_as_indexes(text.padded, overlapping=True)
                item.raw[name] = found
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


def _automaton(keys: Sequence[str]) -> tuple[list[int], ahocorasick_rs.BytesAhoCorasick | None]:
    """The automaton over every pattern of every key, and the key number of each pattern."""
    if not keys:
        return [], None
    variants = [(i, pattern) for i, key in enumerate(keys) for pattern in _variants(key)]
    kind = ahocorasick_rs.Implementation.ContiguousNFA  # the fastest here at 10k terms
    automaton = ahocorasick_rs.BytesAhoCorasick([p for _, p in variants], implementation=kind)
    return [i for i, _ in variants], automaton


def _match_one(entry: _Compiled, item: _Item) -> Match | None:
    hits = _evaluate(entry.query, _ALL_FIELDS, item)
    if hits is None:
        return None
    if entry.exclude is not None and _evaluate(entry.exclude, _ALL_FIELDS, item) is not None:
        return None
    return _build_match(entry.watchlist.id, hits, item)


def _variants(key: str) -> list[bytes]:
    """Patterns for a key: a phrase also matches with a punctuation mark between its words.

    Folding turns ``"Hwasong-18" missile`` into ``hwasong 18  missile`` (the quote is a
    space too), so each gap may be one or two spaces, for phrases of up to 5 words.
    """
    words = key.strip(" ").split(" ")
    if len(words) == 1 or len(words) > 5:
        return [key.encode()]
    gaps = itertools.product((" ", "  "), repeat=len(words) - 1)
    bodies = ("".join(w + g for w, g in zip(words, (*gap, ""), strict=True)) for gap in gaps)
    tail = " " if key.endswith(" ") else ""
    return [f" {body}{tail}".encode() for body in bodies]


def _term_hits(term: Term, fields: frozenset[str], item: _Item) -> list[_TermHit]:
    hits: list[_TermHit] = []
    for name, start, end in item.found.get(term.key, ()):
        if name in fields:
            stop = end - 1 if term.key.endswith(" ") else end
            if term.wildcard:  # the hit covers the whole word, e.g. "missiles"
                stop = item.texts[name].padded.find(b" ", stop)
            hits.append(_TermHit(name, start + 1, stop))
    return hits


def _evaluate(node: Node, fields: frozenset[str], item: _Item) -> list[_TermHit] | None:
    """The hits that make ``node`` true, or None when it is false."""
    if isinstance(node, Term):
        return _term_hits(node, fields, item) or None
    if isinstance(node, Alias | Near):
        hits = [hit for span in _spans(node, fields, item) for hit in span.hits]
        return hits or None
    if isinstance(node, Field):
        return _evaluate(node.child, fields & {node.name}, item)
    if isinstance(node, Not):
        return None if _evaluate(node.child, fields, item) is not None else []
    results = (_evaluate(child, fields, item) for child in node.children)
    if isinstance(node, And):
        collected: list[_TermHit] = []
        for result in results:
            if result is None:
                return None
            collected += result
        return collected
    true = [result for result in results if result is not None]
    return [hit for result in true for hit in result] if true else None


def _spans(node: Node, fields: frozenset[str], item: _Item) -> list[_Span]:
    """Word runs where a positional node (term, alias, OR, field, NEAR) holds."""
    if isinstance(node, Term):
        return [_span_of(hit, item) for hit in _term_hits(node, fields, item)]
    if isinstance(node, Alias | Or):
        children = node.terms if isinstance(node, Alias) else node.children
        return [span for child in children for span in _spans(child, fields, item)]
    if isinstance(node, Field):
        return _spans(node.child, fields & {node.name}, item)
    assert isinstance(node, Near)
    lefts = _spans(node.left, fields, item)[:_MAX_SPANS]
    rights = _spans(node.right, fields, item)[:_MAX_SPANS] if lefts else []
    return [
        _Span(a.field, min(a.first, b.first), max(a.last, b.last), a.hits + b.hits)
        for a in lefts
        for b in rights
        if a.field == b.field and max(b.first - a.last, a.first - b.last) - 1 <= node.distance
    ]


def _span_of(hit: _TermHit, item: _Item) -> _Span:
    text = item.texts[hit.field]
    return _Span(hit.field, text.word_at(hit.start), text.word_at(hit.end - 1), (hit,))


def _build_match(watchlist_id: str, term_hits: list[_TermHit], item: _Item) -> Match:
    hits: list[Hit] = []
    for th in sorted(set(term_hits), key=lambda h: (h.field != "title", h.start, h.end)):
        text = item.texts[th.field]
        folded = text.folded
        start, end = folded.span(folded.char_index(th.start - 1), folded.char_index(th.end - 1))
        context = snippet(text.original, start, end, SNIPPET_WIDTH)
        hits.append(Hit(text.original[start:end], th.field, start, end, context))
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
