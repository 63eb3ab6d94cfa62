"""Search tokens for the console's full-text search, the same on SQLite and PostgreSQL.

Both databases index a word list we make here (``index_text``), with their plain
tokenizers: SQLite's FTS5 ``unicode61`` and PostgreSQL's ``simple`` text search. The text is
folded as the matcher folds it (``alerts.textnorm``: case, accents, ё, hyphens, NFKC).

Korean writes a particle onto its noun (``북한의``, ``북한은``), so a word-level index would not
find ``북한`` in ``북한의``. Every run of Hangul is therefore indexed as its overlapping syllable
pairs (``북한의`` → ``북한 한의``; a lone syllable as itself), and a Korean query word becomes
the phrase of its pairs: ``북한`` finds ``북한의``, ``미사일`` finds ``미사일을``. Latin and
Cyrillic words are indexed whole and searched as prefixes, so ``ракет`` finds ``ракеты`` and
``missile`` finds ``missiles``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from alerts.textnorm import HANGUL_CLASS, fold, is_hangul

MAX_TERMS = 12  # a search box, not a query language: more words add nothing but cost
_WORD = re.compile(r"\w+")
_RUN = re.compile(f"[{HANGUL_CLASS}]+|[^{HANGUL_CLASS}]+")
_CACHED_WORD = 40  # longer words are rare and would make the cache's memory unbounded


@dataclass(frozen=True, slots=True)
class SearchTerm:
    """One query word: the tokens it needs, in order, and whether the last is a prefix."""

    tokens: tuple[str, ...]
    prefix: bool


def tokens(text: str) -> list[str]:
    """The index tokens of ``text``: Hangul runs as syllable pairs, other words whole."""
    out: list[str] = []
    for word in _WORD.findall(fold(text).text):
        out.extend(_cached_tokens(word) if len(word) <= _CACHED_WORD else _word_tokens(word))
    return out


def index_text(title: str, summary: str) -> str:
    """What the search index stores for an item: its tokens, space separated."""
    return " ".join(tokens(f"{title}\n{summary}"))


def language(title: str, summary: str) -> str:
    """``ko``, ``ru`` or ``en`` by the script most of the letters are in (Hangul, Cyrillic,
    else Latin). Migration 0004 filled ``items.language`` of stored items with it, and
    bench/console.py's synthetic items use it; new items get feeds/language.py's detector."""
    text = f"{title} {summary}"[:2000]
    hangul = sum(1 for c in text if is_hangul(c))
    cyrillic = sum(1 for c in text if "\u0400" <= c <= "\u04ff")
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    best = max((hangul, "ko"), (cyrillic, "ru"), (latin, "en"))
    return best[1] if best[0] else "und"


def parse_search(query: str) -> list[SearchTerm]:
    """The words of a search box, as terms every one of which an item must contain
    (``"..."`` and operators are read as plain words: the box is for analysts, not queries)."""
    terms = []
    for word in _WORD.findall(fold(query).text)[:MAX_TERMS]:
        last, hangul = _runs(word)[-1]
        # a word is a prefix, so inflections match; a Hangul run of two or more syllables is
        # matched by its pairs, a lone syllable (``6차``) starts the next pair
        terms.append(SearchTerm(tuple(_word_tokens(word)), prefix=not hangul or len(last) == 1))
    return terms


def fts5_query(terms: list[SearchTerm]) -> str:
    """An FTS5 MATCH expression: each term a quoted phrase, a prefix where it is one."""
    parts = []
    for term in terms:
        phrase = " ".join(term.tokens)
        parts.append(f'"{phrase}"' + ("*" if term.prefix else ""))
    return " AND ".join(parts)


def tsquery(terms: list[SearchTerm]) -> str:
    """A PostgreSQL ``to_tsquery('simple', ...)`` text: phrases with ``<->``, ``:*`` prefixes."""
    parts = []
    for term in terms:
        words = [_ts_word(t) for t in term.tokens]
        if term.prefix:
            words[-1] += ":*"
        parts.append("(" + " <-> ".join(words) + ")")
    return " & ".join(parts)


@lru_cache(maxsize=65536)  # an item's words are mostly words every item has
def _cached_tokens(word: str) -> tuple[str, ...]:
    return tuple(_word_tokens(word))


def _word_tokens(word: str) -> list[str]:
    """A folded word's tokens: Hangul runs as overlapping syllable pairs, the rest whole."""
    out: list[str] = []
    for run, hangul in _runs(word):
        if not hangul or len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def _runs(word: str) -> list[tuple[str, bool]]:
    """``word`` cut where it passes between Hangul and other characters."""
    return [(run, is_hangul(run[0])) for run in _RUN.findall(word)]


def _ts_word(token: str) -> str:
    """A token as a tsquery operand: quoted, so no character of it is an operator."""
    return "'" + token.replace("'", "''").replace("\\", "\\\\") + "'"
