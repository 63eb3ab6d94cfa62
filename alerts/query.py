"""Watch-list query language: tokens, parser and syntax tree.

Grammar, loosest binding first::

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*      adjacent terms are an implicit AND
    unary   := "NOT" unary | near
    near    := primary ("NEAR/" n primary)*   within n words, either order
    primary := "(" or ")" | field primary | ('"phrase"' | word | "@alias") ["~"]
    field   := "title:" | "summary:"

Operators are written in capitals; a lowercase ``or`` is refused rather than silently
searched for. ``NEAR/n`` allows at most n words between its sides, in the same field;
its sides are terms, phrases, aliases, OR groups or NEARs. A trailing ``*`` makes a
prefix term, also inside quotes (on the last word). A trailing ``~`` on a word, right
after a phrase's closing quote or on an alias marks Russian terms that also match their
inflected forms (alerts.morphology, the code behind a watch-list's ``russian_forms``); on
an alias, it marks the Cyrillic members. Terms are folded by
:mod:`alerts.textnorm`, so a bare ``Kim-Jong-un`` is the phrase ``kim jong un``; the
words of a phrase may be separated by one punctuation mark in the text. A query that is
true without any of its terms (``NOT x``) is refused, since no term could find it.
Every error carries the 1-based column in the query string.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from alerts.morphology import MAX_WORDS, is_cyrillic, russian_forms
from alerts.spelling import spellings
from alerts.textnorm import fold_term, is_hangul

FIELDS = ("title", "summary")
MAX_NEAR = 200
# Levels of parentheses, NOT, field scopes and chained NEARs: no real query comes close, and
# every pass over the tree (parse, presearch, evaluation) recurses once per level.
MAX_DEPTH = 32
MIN_PREFIX = 2
_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<lp>\()|(?P<rp>\))|(?P<quote>"[^"]*(?:"~?)?)
    |(?P<field>(?i:title|summary):)|(?P<badfield>[A-Za-z_]+:)(?=[("])|(?P<word>[^\s()"]+)""",
    re.X,
)
_ALIAS = re.compile(r"@([\w-]+)")
_NEAR = re.compile(r"NEAR/(\d+)")
_OPERATORS = {"AND", "OR", "NOT"}
_LOOKALIKES = {"&&": "AND", "&": "AND", "||": "OR", "|": "OR"}
_STARTS = {"word", "phrase", "alias", "field", "lp", "NOT"}


class QueryError(ValueError):
    """A query that cannot be compiled; ``column`` is 1-based in the query string."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as written
    folded: str  # canonical form (see textnorm)
    wildcard: bool  # a trailing * was written
    column: int
    key: str  # what the automaton looks for: folded text padded with word boundaries

    @property
    def prefix(self) -> bool:
        """Matches at the start of a word: wildcards, and Korean terms (particles attach)."""
        return not self.key.endswith(" ")


@dataclass(frozen=True, slots=True)
class Alias:
    name: str
    terms: tuple[Term, ...]
    column: int


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    column: int


@dataclass(frozen=True, slots=True)
class Near:
    left: Node
    right: Node
    distance: int
    column: int


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    child: Node
    column: int


Node = Term | Alias | And | Or | Not | Near | Field


class _Token(NamedTuple):  # a tuple: cheaper to build than a frozen dataclass
    kind: str  # lp rp word phrase alias field AND OR NOT NEAR end
    text: str
    column: int
    value: int = 0  # NEAR distance
    marked: int = 0  # on a word, phrase or alias: the column of its trailing ~ (0: none)


Forms = Callable[[str], Sequence[str]]  # a term's spelling variants, itself first


def parse_query(
    text: str,
    aliases: Mapping[str, Sequence[str]],
    forms: Forms | None = None,
    marked: Forms = russian_forms,
) -> Node:
    """Parse a query; ``@name`` refers to ``aliases`` (names compared case-insensitively).
    With ``forms`` (e.g. alerts.morphology.russian_forms), every term and alias member
    also matches its other forms: a term becomes an OR of them, an alias gains them.
    A term marked with ``~`` takes the forms ``marked`` gives, whatever ``forms`` is."""
    aliases = {k.lower(): v for k, v in aliases.items()}
    return _Parser(_tokenize(text), aliases, forms, marked).parse()


class Inflection(NamedTuple):
    """A query term that takes other forms, for ``watchfloor check --explain``."""

    written: str  # as in the query: ракета~, "баллистическая ракета"~, or bare
    column: int
    forms: tuple[str, ...]  # the other forms, without the term itself


def inflections(
    text: str,
    aliases: Mapping[str, Sequence[str]],
    forms: Forms | None = None,
    marked: Forms = russian_forms,
) -> list[Inflection]:
    """The terms of a query that take other forms, as ``parse_query`` expands them: every
    marked term (even one the dictionary leaves as written) and, with ``forms``, every
    other term that has some. Alias members are left to ``explain_alias``."""
    parser = _Parser(_tokenize(text), {k.lower(): v for k, v in aliases.items()}, forms, marked)
    parser.parse()
    return parser.inflected


def terms(node: Node | None, negated: bool = False) -> Iterator[tuple[Term, bool]]:
    """Every term with whether it sits under an odd number of NOTs."""
    if isinstance(node, Term):
        yield node, negated
    elif isinstance(node, Alias):
        yield from ((term, negated) for term in node.terms)
    elif isinstance(node, Not):
        yield from terms(node.child, not negated)
    elif isinstance(node, Field):
        yield from terms(node.child, negated)
    elif isinstance(node, Near):
        yield from terms(node.left, negated)
        yield from terms(node.right, negated)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from terms(child, negated)


def requirements(node: Node) -> list[frozenset[str]]:
    """Key sets of which each must have a key in an item for ``node`` to be true.

    The presearch: a watch-list is evaluated only when all its sets are hit. ``node`` must
    not be vacuous (see ``require_positive``), so every set is a sound necessary condition.
    """
    if isinstance(node, Term):
        return [frozenset((node.key,))]
    if isinstance(node, Alias):
        return [frozenset(term.key for term in node.terms)]
    if isinstance(node, Field):
        return requirements(node.child)
    if isinstance(node, Near):
        return requirements(node.left) + requirements(node.right)
    if isinstance(node, And):
        return [g for c in node.children if not _vacuous(c) for g in requirements(c)]
    if isinstance(node, Or):  # each child is non-vacuous; one of its sets stands for it
        return [frozenset().union(*(min(requirements(c), key=len) for c in node.children))]
    # NOT over a vacuous child: false when all its positive terms are absent (monotonicity)
    return [frozenset(term.key for term, negated in terms(node) if not negated)]


def require_positive(node: Node) -> None:
    """Refuse a query that is true for an item holding none of its terms (e.g. ``NOT x``).

    Such a query could never be found by its terms, and would fire on every item.
    """
    if _vacuous(node):
        raise QueryError(
            "query matches items that contain none of its terms (only NOT terms?): "
            "add a term that must be present",
            _first_not_column(node) or 1,
        )


def term_from_text(text: str, column: int, what: str = "term") -> Term:
    """Build a term from a word, phrase body or alias member; ``*`` only at the end, and
    no ``~`` (the tokenizer takes a query's markers off before)."""
    body = text.strip()
    if "~" in body:
        where = column + text.index("~")
        raise QueryError(_TILDE_MISPLACED.get(what, _TILDE_MISPLACED["term"]), where)
    wildcard = body.endswith("*")
    core = body[:-1] if wildcard else body
    if "*" in core:
        where = column + text.index("*")
        article = "an" if what[0] in "aeiou" else "a"
        raise QueryError(f"wildcard * is allowed only at the end of {article} {what}", where)
    folded = " ".join(fold_term(core).split())  # gaps in the text may be wider: see match
    if wildcard and len(folded) < MIN_PREFIX:
        raise QueryError(f"wildcard needs at least {MIN_PREFIX} letters before *", column)
    if not folded:
        raise QueryError(f"{what} {text!r} has no letters or digits", column)
    prefix = wildcard or is_hangul(folded[-1])
    key = f" {folded}" if prefix else f" {folded} "
    return Term(text=text, folded=folded, wildcard=wildcard, column=column, key=key)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup or "", match.group()
        column = match.start() + 1
        if kind == "word":
            tokens.append(_word_token(value, column))
        elif kind == "quote":
            tokens.append(_phrase_token(value, column))
        elif kind == "badfield":
            raise QueryError(f"unknown field {value} (use title: or summary:)", column)
        elif kind != "ws":
            tokens.append(_Token(kind, value.lower() if kind == "field" else value, column))
    if not tokens:
        raise QueryError("empty query", 1)
    return [*tokens, _Token("end", "end of query", len(text) + 1)]


_TILDE_MISPLACED = {
    "term": "~ goes once, at the end of a word (ракета~) or after a closing quote",
    "phrase": 'put ~ after the closing quote to mark a phrase ("баллистическая ракета"~)',
    "alias member": "~ goes in the query, not on an alias member: write @name~ there "
    "for the forms of the alias's Russian members",
}


def _phrase_token(value: str, column: int) -> _Token:
    """A quoted phrase, ``value`` as the tokenizer found it: ``"..."``, maybe with ``~``."""
    marked = len(value) >= 3 and value.endswith('"~')
    body = value[:-1] if marked else value
    if len(body) < 2 or not body.endswith('"'):
        raise QueryError("unterminated quote", column)
    return _Token("phrase", body[1:-1], column, marked=column + len(body) if marked else 0)


def _marked_word(word: str, column: int) -> _Token:
    """A word or ``@alias`` ending in ``~``, with the column of its marker."""
    at = column + len(word) - 1
    if word == "~":
        raise QueryError(
            "~ must follow a word, a closing quote or an alias with no space between "
            "(it cannot mark a group)",
            column,
        )
    if word.endswith("~~"):
        raise QueryError(_TILDE_MISPLACED["term"], at)
    if word.startswith("@"):
        return _word_token(word[:-1], column)._replace(marked=at)
    return _Token("word", word[:-1], column, marked=at)


def _word_token(word: str, column: int) -> _Token:
    if len(word) > 4 and word.isalnum():  # the common case: no operator, @ or sign
        return _Token("word", word, column)
    if word in _OPERATORS:
        return _Token(word, word, column)
    if word == "NEAR" or word.startswith("NEAR/"):
        if near := _NEAR.fullmatch(word):
            return _Token("NEAR", word, column, int(near.group(1)))
        raise QueryError("NEAR needs a number, e.g. NEAR/5", column)
    upper = word.upper()
    if upper in _OPERATORS or upper.startswith("NEAR/") or upper == "NEAR":
        raise QueryError(
            f"write the operator {word!r} in capitals ({upper.split('/')[0]}), "
            f'or quote "{word}" to search for the word',
            column,
        )
    if word in _LOOKALIKES:
        raise QueryError(f"use {_LOOKALIKES[word]} instead of {word}", column)
    if word[0] in "-!" and len(word) > 1:
        raise QueryError(f"use NOT to exclude a term ({word[0]} is not an operator)", column)
    if word.endswith("~"):
        return _marked_word(word, column)
    if word.startswith("@"):
        if not _ALIAS.fullmatch(word):
            raise QueryError("alias name expected after @ (letters, digits, - or _)", column)
        return _Token("alias", word[1:], column)
    return _Token("word", word, column)


class _Parser:
    def __init__(
        self,
        tokens: list[_Token],
        aliases: Mapping[str, Sequence[str]],
        forms: Forms | None,
        marked: Forms = russian_forms,
    ) -> None:
        self._tokens = tokens
        self._pos = 0
        self._aliases = aliases
        self._forms = forms
        self._marked = marked
        self._depth = 0
        self.inflected: list[Inflection] = []  # what the terms became, for explanations

    def _variants(self, term: Term, what: str, forms: Forms | None = None) -> list[Term]:
        """The term and, with ``forms`` (default: the parser's), a term per other form,
        at the same column."""
        forms = forms or self._forms
        if forms is None or term.wildcard:
            return [term]
        variants, seen = [term], {term.folded}
        for form in forms(term.text.strip())[1:]:
            variant = term_from_text(form, term.column, what)
            if variant.folded not in seen:
                seen.add(variant.folded)
                variants.append(variant)
        return variants

    def _term(self, token: _Token, column: int, what: str = "term") -> Node:
        term = term_from_text(token.text, column, what)
        if token.marked:
            _check_marked(term, what, token.marked)
        variants = self._variants(term, what, self._marked if token.marked else None)
        if token.marked or (len(variants) > 1 and is_cyrillic(term.text)):
            written = f'"{token.text}"' if token.kind == "phrase" else token.text
            written += "~" if token.marked else ""
            forms = tuple(v.text for v in variants[1:])
            self.inflected.append(Inflection(written, column, forms))
        return variants[0] if len(variants) == 1 else Or(tuple(variants))

    def _nest(self, token: _Token) -> None:
        """One level deeper, refused past ``MAX_DEPTH`` (each ``_nest`` pairs with a
        ``self._depth -= 1`` when the nested part is parsed)."""
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise QueryError(
                f"query nested too deeply: at most {MAX_DEPTH} levels of parentheses, "
                "NOT, field scopes and NEAR",
                token.column,
            )

    def parse(self) -> Node:
        node = self._or()
        token = self._peek()
        if token.kind == "rp":
            raise QueryError("unbalanced parenthesis: ')' has no matching '('", token.column)
        return node

    def _peek(self) -> _Token:
        return self._tokens[self._pos]

    def _next(self) -> _Token:
        token = self._tokens[self._pos]
        self._pos += token.kind != "end"
        return token

    def _or(self) -> Node:
        children = [self._and(None)]
        while self._peek().kind == "OR":
            children.append(self._and(self._next()))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _and(self, after: _Token | None) -> Node:
        children = [self._unary(after)]
        while (kind := self._peek().kind) == "AND" or kind in _STARTS:
            children.append(self._unary(self._next() if kind == "AND" else None))
        return children[0] if len(children) == 1 else And(tuple(children))

    def _unary(self, after: _Token | None) -> Node:
        if self._peek().kind == "NOT":
            token = self._next()
            self._nest(token)
            child = self._unary(token)
            self._depth -= 1
            return Not(child, token.column)
        return self._near(after)

    def _near(self, after: _Token | None) -> Node:
        left, depth = self._primary(after), self._depth
        while self._peek().kind == "NEAR":
            op = self._next()
            self._nest(op)  # a chain of NEARs is a tree one level deeper per NEAR
            right = self._primary(op)
            if op.value > MAX_NEAR:
                raise QueryError(f"NEAR distance must be at most {MAX_NEAR}", op.column)
            if not (_positional(left) and _positional(right)):
                raise QueryError(
                    f"{op.text} joins words, phrases, aliases or OR groups, not AND/NOT",
                    op.column,
                )
            left = Near(left, right, op.value, op.column)
        self._depth = depth
        return left

    def _primary(self, after: _Token | None) -> Node:
        token = self._next()
        if token.kind == "lp":
            return self._group(token)
        if token.kind == "field":
            return self._field(token)
        if token.kind == "word":
            return self._term(token, token.column)
        if token.kind == "phrase":
            if not token.text.strip():
                raise QueryError("empty phrase", token.column)
            return self._term(token, token.column + 1, "phrase")
        if token.kind == "alias":
            return self._alias(token)
        self._dangling(token, after)
        raise AssertionError("unreachable")

    def _dangling(self, token: _Token, after: _Token | None) -> None:
        if after is not None:
            if after.kind == "field":
                raise QueryError(f"nothing after {after.text}", after.column)
            raise QueryError(f"dangling operator {after.text}", after.column)
        if token.kind == "rp":
            raise QueryError("unbalanced parenthesis: ')' has no matching '('", token.column)
        raise QueryError(f"dangling operator {token.text}", token.column)

    def _group(self, open_: _Token) -> Node:
        if self._peek().kind == "rp":
            raise QueryError("empty parentheses", open_.column)
        if self._peek().kind == "end":
            raise QueryError("unbalanced parenthesis: '(' is never closed", open_.column)
        self._nest(open_)
        node = self._or()
        if self._next().kind != "rp":
            raise QueryError("unbalanced parenthesis: '(' is never closed", open_.column)
        self._depth -= 1
        return node

    def _field(self, token: _Token) -> Node:
        self._nest(token)
        child = self._primary(token)
        self._depth -= 1
        if _has_field(child):
            raise QueryError("a field scope cannot contain another field scope", token.column)
        return Field(token.text.rstrip(":"), child, token.column)

    def _alias(self, token: _Token) -> Alias:
        members = self._aliases.get(token.text.lower())
        if members is None:
            close = difflib.get_close_matches(token.text.lower(), list(self._aliases), n=1)
            hint = f" (did you mean @{close[0]}?)" if close else ""
            raise QueryError(f"unknown alias @{token.text}{hint}", token.column)
        if not members:
            raise QueryError(f"alias @{token.text} has no members", token.column)
        terms: list[Term] = []
        inflected = len(self.inflected)
        for member in members:
            try:
                terms += self._member(token, term_from_text(member, token.column, "alias member"))
            except QueryError as exc:
                raise QueryError(f"alias @{token.text}: {exc.message}", token.column) from None
            terms += self._spelled(member, token.column)
        if token.marked and len(self.inflected) == inflected:  # no member took forms
            raise QueryError(
                f"~ asks for Russian forms, but alias @{token.text} has no Cyrillic member "
                "without * (only Russian terms are inflected)",
                token.marked,
            )
        unique = {t.key: t for t in reversed(terms)}  # the first term of each key stays
        return Alias(token.text.lower(), tuple(reversed(unique.values())), token.column)

    def _member(self, token: _Token, term: Term) -> list[Term]:
        """An alias member and its forms; after ``@name~``, a Cyrillic member takes its
        Russian forms (the others stay as written: an alias mixes languages)."""
        if not (token.marked and is_cyrillic(term.text) and not term.wildcard):
            return self._variants(term, "alias member")
        variants = self._variants(term, "alias member", self._marked)
        forms = tuple(v.text for v in variants[1:])
        written = f"@{token.text.lower()}~ {term.text}"
        self.inflected.append(Inflection(written, token.column, forms))
        return variants

    def _spelled(self, member: str, column: int) -> list[Term]:
        """A name's other romanisations and transliterations (alerts.spelling)."""
        out = []
        for spelling in spellings(member):
            try:
                out.append(term_from_text(spelling, column, "alias member"))
            except QueryError:
                continue  # a generated spelling this language cannot express: not the admin's
        return out


def _check_marked(term: Term, what: str, column: int) -> None:
    """Refuse a ``~`` that could not do what it says; ``column`` is the marker's."""
    if term.wildcard:
        raise QueryError(
            f"a {what} takes * or ~, not both: the wildcard already matches every ending",
            column,
        )
    if not is_cyrillic(term.text):
        raise QueryError(
            f"~ asks for Russian forms, but {term.text!r} has no Cyrillic letters "
            "(only Russian terms are inflected)",
            column,
        )
    if len(term.text.split()) > MAX_WORDS:
        raise QueryError(f"~ takes a phrase of at most {MAX_WORDS} words", column)


def _positional(node: Node) -> bool:
    if isinstance(node, Term | Alias | Near):
        return True
    if isinstance(node, Or):
        return all(_positional(child) for child in node.children)
    return isinstance(node, Field) and _positional(node.child)


def _has_field(node: Node) -> bool:
    if isinstance(node, Field):
        return True
    if isinstance(node, And | Or):
        return any(_has_field(child) for child in node.children)
    if isinstance(node, Not):
        return _has_field(node.child)
    return isinstance(node, Near) and (_has_field(node.left) or _has_field(node.right))


def _vacuous(node: Node) -> bool:
    """Truth of ``node`` for an item in which none of its terms occur."""
    if isinstance(node, Not):
        return not _vacuous(node.child)
    if isinstance(node, And):
        return all(_vacuous(child) for child in node.children)
    if isinstance(node, Or):
        return any(_vacuous(child) for child in node.children)
    return isinstance(node, Field) and _vacuous(node.child)


def _first_not_column(node: Node) -> int:
    """Column of the leftmost NOT, or 0 if there is none."""
    if isinstance(node, Not):
        return node.column
    children: tuple[Node, ...] = ()
    if isinstance(node, And | Or):
        children = node.children
    elif isinstance(node, Field):
        children = (node.child,)
    columns = [c for c in map(_first_not_column, children) if c]
    return min(columns, default=0)
