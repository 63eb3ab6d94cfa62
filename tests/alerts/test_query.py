"""Query parser: syntax tree shape, precedence, aliases and every error with its column."""

from __future__ import annotations

import pytest

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
    inflections,
    parse_query,
    require_positive,
)

ALIASES = {
    "dprk": ["North Korea*", "Kim Jong-un", "북한"],
    "Bad": ["..."],
    "empty": [],
    "star": ["mis*sile"],
    "ru": ["КНДР", "Пхеньян", "North Korea", "ракет*"],
    "latin": ["DPRK", "North Korea"],
    "tilde": ["Пхеньян~"],
}


def parse(text: str) -> Node:
    return parse_query(text, ALIASES)


def show(node: Node) -> str:
    """A compact rendering of the tree, to assert on structure."""
    if isinstance(node, Term):
        return node.folded + ("*" if node.wildcard else "")
    if isinstance(node, Alias):
        return f"@{node.name}"
    if isinstance(node, And | Or):
        op = " AND " if isinstance(node, And) else " OR "
        return "(" + op.join(show(c) for c in node.children) + ")"
    if isinstance(node, Not):
        return f"NOT {show(node.child)}"
    if isinstance(node, Near):
        return f"({show(node.left)} NEAR/{node.distance} {show(node.right)})"
    assert isinstance(node, Field)
    return f"{node.name}:{show(node.child)}"


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("missile", "missile"),
        ("a AND b", "(a AND b)"),
        ("a OR b", "(a OR b)"),
        ("a b", "(a AND b)"),  # implicit AND
        ("a OR b AND c", "(a OR (b AND c))"),  # AND binds tighter than OR
        ("a b OR c", "((a AND b) OR c)"),
        ("(a OR b) AND c", "((a OR b) AND c)"),
        ("a AND NOT b", "(a AND NOT b)"),
        ("a NOT b", "(a AND NOT b)"),
        ("NOT NOT a", "NOT NOT a"),
        ("NOT a NEAR/2 b", "NOT (a NEAR/2 b)"),
        ("a NEAR/5 b", "(a NEAR/5 b)"),
        ("a NEAR/0 b AND c", "((a NEAR/0 b) AND c)"),  # NEAR binds tighter than AND
        ("a NEAR/2 b NEAR/3 c", "((a NEAR/2 b) NEAR/3 c)"),
        ("@dprk NEAR/15 (launch* OR fired)", "(@dprk NEAR/15 (launch* OR fired))"),
        ("title:(a OR b) c", "(title:(a OR b) AND c)"),
        ("summary:a", "summary:a"),
        ("TITLE:a", "title:a"),
        ('"exact phrase"', "exact phrase"),
        ('"Hwasong*"', "hwasong*"),
        ('"North Korea*"', "north korea*"),
        ("missile*", "missile*"),
        ("Kim-Jong-un", "kim jong un"),  # a hyphenated word is a phrase
        ("U.S.", "u s"),
        ("10:30", "10 30"),  # a colon is not a field unless it names one
        ("ракет* OR 미사일", "(ракет* OR 미사일)"),
        ("@DPRK", "@dprk"),  # alias names are case-insensitive
        ("NEARBY ANDES ORBIT NOTE", "(nearby AND andes AND orbit AND note)"),
    ],
)
def test_tree(query: str, tree: str) -> None:
    assert show(parse(query)) == tree


MEMBERS_FOLDED = ("north korea", "kim jong un", "북한")


def test_alias_expands_to_members() -> None:
    node = parse("@dprk")
    assert isinstance(node, Alias)
    written = [(t.folded, t.wildcard) for t in node.terms if t.folded in MEMBERS_FOLDED]
    assert written == [("north korea", True), ("kim jong un", False), ("북한", False)]
    assert node.terms[:2] == tuple(t for t in node.terms if t.folded in MEMBERS_FOLDED)[:2]
    spelled = {t.folded for t in node.terms} - set(MEMBERS_FOLDED)  # alerts/spelling.py
    assert {"kim jong eun", "kim chong un", "kim jongun"} <= spelled


def test_prefix_terms() -> None:
    def term(query: str) -> Term:
        node = parse(query)
        assert isinstance(node, Term)
        return node

    assert term("missile*").prefix
    assert term("북한").prefix  # Korean: particles attach on the right
    assert term('"북한 미사일"').prefix
    assert not term("missile").prefix
    assert not term("화성-18").prefix  # ends in a digit: a whole word


def test_columns_of_terms() -> None:
    node = parse('a OR "b c"')
    assert isinstance(node, Or)
    assert [c.column for c in node.children if isinstance(c, Term)] == [1, 7]


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("", 1, "empty query"),
        ("   ", 1, "empty query"),
        ("(a OR b", 1, "unbalanced parenthesis: '(' is never closed"),
        ("a AND (b OR (c)", 7, "unbalanced parenthesis: '(' is never closed"),
        ("a (", 3, "unbalanced parenthesis: '(' is never closed"),
        ("a OR b)", 7, "unbalanced parenthesis: ')' has no matching '('"),
        (")", 1, "unbalanced parenthesis: ')' has no matching '('"),
        ("()", 1, "empty parentheses"),
        ("@dprkk AND x", 1, "unknown alias @dprkk (did you mean @dprk?)"),
        ("x AND @zzz", 7, "unknown alias @zzz"),
        ("@", 1, "alias name expected after @"),
        ("@bad", 1, "alias @bad: alias member '...' has no letters or digits"),
        ("@empty", 1, "alias @empty has no members"),
        ("a NEAR b", 3, "NEAR needs a number, e.g. NEAR/5"),
        ("a NEAR/x b", 3, "NEAR needs a number, e.g. NEAR/5"),
        ("a NEAR/ b", 3, "NEAR needs a number, e.g. NEAR/5"),
        ("a NEAR/500 b", 3, "NEAR distance must be at most 200"),
        ("a NEAR/2 (b AND c)", 3, "NEAR/2 joins words, phrases, aliases or OR groups"),
        ("(NOT a) NEAR/2 b", 9, "NEAR/2 joins words"),
        ('a AND "abc', 7, "unterminated quote"),
        ('"', 1, "unterminated quote"),
        ('""', 1, "empty phrase"),
        ("a AND", 3, "dangling operator AND"),
        ("AND a", 1, "dangling operator AND"),
        ("a OR", 3, "dangling operator OR"),
        ("a AND OR b", 3, "dangling operator AND"),
        ("a OR )", 3, "dangling operator OR"),
        ("(a AND) b", 4, "dangling operator AND"),
        ("NOT", 1, "dangling operator NOT"),
        ("a NEAR/3", 3, "dangling operator NEAR/3"),
        ("title:", 1, "nothing after title:"),
        ("titel:(x)", 1, "unknown field titel: (use title: or summary:)"),
        ("title:(summary:x)", 1, "a field scope cannot contain another field scope"),
        ("a or b", 3, "write the operator 'or' in capitals (OR)"),
        ("a and b", 3, "write the operator 'and' in capitals (AND)"),
        ("not b", 1, "write the operator 'not' in capitals (NOT)"),
        ("a near/3 b", 3, "write the operator 'near/3' in capitals (NEAR)"),
        ("a && b", 3, "use AND instead of &&"),
        ("a || b", 3, "use OR instead of ||"),
        ("a -b", 3, "use NOT to exclude a term (- is not an operator)"),
        ("mis*sile", 4, "wildcard * is allowed only at the end of a term"),
        ('"Kim* Jong"', 5, "wildcard * is allowed only at the end of a phrase"),
        ("@star", 1, "alias @star: wildcard * is allowed only at the end of an alias member"),
        ("a*", 1, "wildcard needs at least 2 letters before *"),
        ("*", 1, "wildcard needs at least 2 letters before *"),
        ("a AND ...", 7, "term '...' has no letters or digits"),
        ('x "..."', 4, "phrase '...' has no letters or digits"),
        ("missile~", 8, "~ asks for Russian forms, but 'missile' has no Cyrillic letters"),
        ('"North Korea"~', 14, "~ asks for Russian forms, but 'North Korea' has no Cyrillic"),
        ("북한~", 3, "~ asks for Russian forms, but '북한' has no Cyrillic letters"),
        ("@latin~", 7, "~ asks for Russian forms, but alias @latin has no Cyrillic member"),
        ("ракет*~", 7, "a term takes * or ~, not both"),
        ('"крылатая ракет*"~', 18, "a phrase takes * or ~, not both"),
        ('"ракета~"', 8, 'put ~ after the closing quote to mark a phrase ("баллистическая'),
        ("ра~кета", 3, "~ goes once, at the end of a word (ракета~)"),
        ("ракета~~", 8, "~ goes once, at the end of a word"),
        ("@ru~~", 5, "~ goes once, at the end of a word"),
        ("ракета ~", 8, "~ must follow a word, a closing quote or an alias with no space"),
        ("(ракета OR пуск)~", 17, "~ must follow a word, a closing quote or an alias"),
        ('"а б в г д е ж"~ ракета', 16, "~ takes a phrase of at most 6 words"),
        ('"~', 1, "unterminated quote"),
        ('""~', 1, "empty phrase"),
        ("@tilde", 1, "alias @tilde: ~ goes in the query, not on an alias member: write @name~"),
        ("@nope~", 1, "unknown alias @nope"),
    ],
)
def test_errors(query: str, column: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(query)
    assert info.value.column == column
    assert info.value.message.startswith(message)
    assert str(info.value) == f"column {column}: {info.value.message}"


def test_query_error_is_a_value_error() -> None:
    assert issubclass(QueryError, ValueError)


@pytest.mark.parametrize(
    ("query", "column"),
    [("NOT football", 1), ("a OR NOT b", 6), ("NOT (a AND b)", 1), ("title:(NOT a)", 8)],
)
def test_require_positive_rejects_queries_true_without_terms(query: str, column: int) -> None:
    with pytest.raises(QueryError) as info:
        require_positive(parse(query))
    assert info.value.column == column
    assert "none of its terms" in info.value.message


@pytest.mark.parametrize("query", ["a", "a NOT b", "a AND NOT (b OR c)", "NOT NOT a", "a OR b"])
def test_require_positive_accepts(query: str) -> None:
    require_positive(parse(query))


def fake_forms(text: str) -> tuple[str, ...]:
    """A stand-in for russian_forms: one more form per term, so trees stay readable."""
    return (text, f"{text}ы")


def parse_marked(text: str) -> Node:
    return parse_query(text, ALIASES, marked=fake_forms)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("ракета~", "(ракета OR ракетаы)"),
        ("ракета", "ракета"),  # unmarked: as written
        ("ракета~ пуск", "((ракета OR ракетаы) AND пуск)"),
        ('"баллистическая ракета"~', "(баллистическая ракета OR баллистическая ракетаы)"),
        ('"баллистическая ракета"', "баллистическая ракета"),
        ('"крылатая ракета"~пуск', "((крылатая ракета OR крылатая ракетаы) AND пуск)"),
        ("ракета~ NEAR/3 пуск~", "((ракета OR ракетаы) NEAR/3 (пуск OR пускы))"),
        ("title:ракета~", "title:(ракета OR ракетаы)"),
        ("missile AND NOT учения~", "(missile AND NOT (учения OR ученияы))"),
        ("(ракета~)", "(ракета OR ракетаы)"),
        ("Kim-ракета~", "(kim ракета OR kim ракетаы)"),  # mixed scripts: the phrase inflects
    ],
)
def test_marked_terms_take_their_forms(query: str, tree: str) -> None:
    assert show(parse_marked(query)) == tree


def test_a_marked_term_keeps_its_column_in_every_form() -> None:
    node = parse_marked('x OR "крылатая ракета"~')
    assert isinstance(node, Or) and isinstance(node.children[1], Or)
    assert [t.column for t in node.children[1].children] == [7, 7]
    assert [t.text for t in node.children[1].children] == ["крылатая ракета", "крылатая ракетаы"]


def test_a_marked_alias_inflects_its_cyrillic_members_only() -> None:
    plain, marked = parse_marked("@ru"), parse_marked("@ru~")
    assert isinstance(plain, Alias) and isinstance(marked, Alias)
    added = {t.folded for t in marked.terms} - {t.folded for t in plain.terms}
    assert added == {"кндры", "пхеньяны"}  # not North Korea, not the wildcard ракет*


def test_marked_forms_come_from_marked_and_the_watch_list_option_from_forms() -> None:
    def option(text: str) -> tuple[str, ...]:
        return (text, f"{text}ом")

    node = parse_query("ракета~ пуск", ALIASES, forms=option, marked=fake_forms)
    assert show(node) == "((ракета OR ракетаы) AND (пуск OR пуском))"


def test_inflections_list_what_each_marked_term_became() -> None:
    query = 'ракета~ "крылатая ракета"~ пуск @ru~'
    assert inflections(query, ALIASES, marked=fake_forms) == [
        ("ракета~", 1, ("ракетаы",)),
        ('"крылатая ракета"~', 10, ("крылатая ракетаы",)),
        ("@ru~ КНДР", 33, ("КНДРы",)),
        ("@ru~ Пхеньян", 33, ("Пхеньяны",)),
    ]


def test_inflections_name_a_marked_term_the_dictionary_leaves_as_written() -> None:
    assert inflections("КНДР~ AND ракета~", ALIASES)[0] == ("КНДР~", 1, ())
    assert "ракетами" in inflections("КНДР~ AND ракета~", ALIASES)[1].forms
