"""The compiled matcher: operators, boundaries, spans, snippets, sources and errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.match import Matcher, WatchListError, WatchListErrors, compile_matcher
from alerts.types import Match
from alerts.watchlists import WatchList

ALIASES = {
    "dprk": ["North Korea*", "Pyongyang", "Kim Jong Un", "북한", "КНДР", "Пхеньян*"],
    "launch": ["launch", "launched", "fired", "발사", "запуск*"],
}


def wl(query: str, id: str = "w", **kw: Any) -> WatchList:
    return WatchList(id=id, title=id, query=query, **kw)


def matcher(*watchlists: WatchList, aliases: Mapping[str, Sequence[str]] = ALIASES) -> Matcher:
    return compile_matcher(watchlists, aliases)


def one(query: str, title: str, summary: str = "", **kw: Any) -> Match | None:
    found = matcher(wl(query, **kw)).match(title, summary)
    assert len(found) <= 1
    return found[0] if found else None


def fires(query: str, title: str, summary: str = "") -> bool:
    return one(query, title, summary) is not None


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("missile", "Missile launched", True),
        ("missile", "MISSILE", True),
        ("missile", "missiles launched", False),  # whole words only
        ("missile", "antimissile shield", False),
        ("missile*", "missiles launched", True),
        ("missile*", "antimissile shield", False),  # prefix, not infix
        ('"Kim Jong Un"', "Kim Jong-un's sister", True),
        ("Kim-Jong-un", "KIM JONG UN", True),
        ('"Kim Jong Un"', "Kim Jong, Un", True),  # one punctuation mark between words is fine
        ('"Hwasong-18 missile"', 'the "Hwasong-18" missile', True),
        ('"Kim Jong Un"', "Kim Jong, (Un", False),  # two are not
        ('"N. Korea"', "N Korea", True),  # punctuation in the query is a gap, too
        ('"N. Korea"', "N.Korea", True),
        ('"U.S.-South Korea drills"', "U.S.-South Korea drills", True),
        ('"Hwasong*"', "the Hwasong-18 ICBM", True),
        ('"North Korea*"', "North Korean troops", True),
        ("ICBM", "an (ICBM)", True),
        ("2270", "resolution 2270.", True),
        ("2270", "resolution 22700", False),
        ("Cafe", "Café", True),  # diacritics folded both ways
        ("Café", "CAFE", True),
        ("북한", "북한의 미사일", True),  # Korean particles attach
        ("북한", "북한은", True),
        ("북한", "남북한 관계", False),  # Korean terms match at the start of a word only
        ("미사일", "탄도미사일", False),
        ("ракет*", "пуск ракеты", True),  # Russian endings through the wildcard
        ("ракета", "пуск ракеты", False),
        ("произошел", "Запуск произошёл утром", True),  # ё = е
        ("Пхеньян*", "в Пхеньяне", True),
        ("a AND b", "b a", True),
        ("a AND b", "a", False),
        ("a b", "a x b", True),
        ("a OR b", "b", True),
        ("a OR b", "c", False),
        ("a AND NOT b", "a", True),
        ("a AND NOT b", "a b", False),
        ("a NOT b", "a b", False),
        ("a OR b AND c", "a", True),
        ("a OR b AND c", "b", False),
        ("(a OR b) AND c", "b c", True),
        ("@dprk AND missile*", "Pyongyang fired missiles", True),
        ("@dprk AND missile*", "КНДР: missiles", True),
        ("@dprk AND missile*", "Iran fired missiles", False),
    ],
)
def test_operators_and_boundaries(query: str, text: str, expected: bool) -> None:
    assert fires(query, text) is expected


def test_terms_only_under_not_are_still_looked_for() -> None:
    """A term that appears only under NOT must be in the automaton, or NOT is always true."""
    m = matcher(wl("missile AND NOT football", "a"), wl("launch", "b"))
    assert [x.watchlist_id for x in m.match("missile football launch", "")] == ["b"]


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("a NEAR/2 b", "a x x b", True),  # two words between
        ("a NEAR/2 b", "a x x x b", False),  # three
        ("a NEAR/2 b", "b x a", True),  # either order
        ("a NEAR/0 b", "a b", True),
        ("a NEAR/0 b", "a, b", True),  # punctuation is not a word
        ("a NEAR/0 b", "a x b", False),
        ('"kim jong un" NEAR/1 visit*', "Kim Jong Un will visit", True),
        ("@dprk NEAR/3 (launch* OR fired)", "North Korea on Friday fired", True),
        ("@dprk NEAR/3 (launch* OR fired)", "North Korea said on Friday it fired", False),
        ("(a NEAR/1 b) NEAR/1 c", "a b x c", True),
        ("(a NEAR/1 b) NEAR/1 c", "c x x a b", False),
        ("title:a NEAR/5 b", "a b", True),
    ],
)
def test_near(query: str, text: str, expected: bool) -> None:
    assert fires(query, text) is expected


def test_near_needs_both_in_one_field() -> None:
    assert not fires("a NEAR/5 b", "a", "b")
    assert fires("a AND b", "a", "b")


def test_field_scopes() -> None:
    assert fires("title:missile", "Missile test", "nothing")
    assert not fires("title:missile", "Nothing", "missile test")
    assert fires("summary:(missile OR rocket)", "Nothing", "a rocket")
    assert not fires("summary:missile AND title:rocket", "missile", "rocket")
    assert fires("title:@dprk AND missile", "북한, 미사일", "a missile")


def test_hits_are_spans_of_the_original_text() -> None:
    title = "ＢＲＥＡＫＩＮＧ — Straße: North Korea’s missiles"
    summary = "«Пхеньян» заявил, что КНДР\u00a0запустила ракеты. 북한의 발사."
    found = one("@dprk AND missile* AND (ракет* OR 발사)", title, summary)
    assert found is not None
    texts = {"title": title, "summary": summary}
    for hit in found.hits:
        assert texts[hit.field][hit.start : hit.end] == hit.term
    assert found.terms == ["North Korea", "missiles", "Пхеньян", "КНДР", "ракеты", "북한", "발사"]


def test_wildcard_hit_covers_the_whole_word_and_korean_only_the_term() -> None:
    found = one("missile* AND 북한", "Missiles from 북한의 coast")
    assert found is not None
    assert [(h.term, h.start, h.end) for h in found.hits] == [
        ("Missiles", 0, 8),
        ("북한", 14, 16),
    ]


def test_hits_come_only_from_the_true_parts_of_the_query() -> None:
    found = one("(a AND zz) OR b OR (c AND NOT d)", "a b c d")
    assert found is not None
    assert found.terms == ["b"]


def test_near_reports_the_pair_that_was_near() -> None:
    found = one("a NEAR/1 b", "a x x x b x a")
    assert found is not None
    assert [(h.term, h.start) for h in found.hits] == [("b", 8), ("a", 12)]


def test_snippet_of_a_long_summary() -> None:
    summary = " ".join(["filler"] * 80) + " North Korea fired a missile " + " ".join(["pad"] * 80)
    found = one("@dprk AND missile", "Report", summary)
    assert found is not None
    assert found.snippet.startswith("…") and found.snippet.endswith("…")
    assert "North Korea fired a missile" in found.snippet
    assert len(found.snippet) <= 202
    assert all(hit.snippet for hit in found.hits)


def test_best_snippet_prefers_the_summary_window_with_most_terms() -> None:
    summary = "missile " + "x " * 150 + "North Korea tested a missile today"
    found = one("@dprk AND missile", "North Korea missile", summary)
    assert found is not None
    assert "North Korea tested a missile today" in found.snippet


def test_title_only_match_snippet_is_the_title() -> None:
    found = one("missile", "Missile test", "unrelated text")
    assert found is not None and found.snippet == "Missile test"


def test_exclude_suppresses() -> None:
    m = matcher(wl("missile*", exclude="football OR soccer"))
    assert m.match("A missile of a free kick", "football") == []
    assert len(m.match("Missile test", "")) == 1


def test_exclude_may_be_negative() -> None:
    m = matcher(wl("missile*", exclude="NOT @dprk"))
    assert m.match("Iran missile test", "") == []
    assert len(m.match("North Korea missile test", "")) == 1


def test_sources_by_feed_id_and_tag() -> None:
    m = matcher(
        wl("missile", "any"),
        wl("missile", "by-id", sources=("yonhap-nk",)),
        wl("missile", "by-tag", sources=("tag:official",)),
    )

    def ids(**kw: Any) -> list[str]:
        return [x.watchlist_id for x in m.match("missile", "", **kw)]

    assert ids() == ["any"]
    assert ids(feed_id="yonhap-nk") == ["any", "by-id"]
    assert ids(feed_id="other", feed_tags=["official", "x"]) == ["any", "by-tag"]
    assert ids(feed_id="other", feed_tags=("news",)) == ["any"]


def test_disabled_watchlists_are_checked_but_never_match() -> None:
    m = matcher(wl("missile", "on"), wl("missile", "off", enabled=False))
    assert m.watchlist_ids == frozenset({"on"})
    assert [x.watchlist_id for x in m.match("missile", "")] == ["on"]
    with pytest.raises(WatchListErrors):
        matcher(wl("missile", "on"), wl("(bad", "off", enabled=False))


def test_matches_come_in_config_order_and_share_aliases() -> None:
    m = matcher(wl("@dprk AND b", "second"), wl("@dprk", "first"), wl("zz", "never"))
    assert [x.watchlist_id for x in m.match("북한 b", "")] == ["second", "first"]
    assert m.watchlist_ids == frozenset({"first", "second", "never"})


def test_no_watchlists_match_nothing() -> None:
    assert matcher().match("anything", "at all") == []
    assert matcher().watchlist_ids == frozenset()


def test_every_error_is_collected() -> None:
    with pytest.raises(WatchListErrors) as info:
        matcher(
            wl("ok", "fine"),
            wl("(missile", "a"),
            wl("missile", "b", exclude="football AND"),
            wl("@dprkk", "c"),
            wl("NOT football", "d"),
            wl("ok", "fine"),
        )
    errors = info.value.errors
    assert all(isinstance(e, WatchListError) and isinstance(e, ValueError) for e in errors)
    got = [(e.watchlist_id, e.field, e.column, e.message.split(" (")[0]) for e in errors]
    assert got == [
        ("a", "query", 1, "unbalanced parenthesis: '(' is never closed"),
        ("b", "exclude", 10, "dangling operator AND"),
        ("c", "query", 1, "unknown alias @dprkk"),
        ("d", "query", 1, "query matches items that contain none of its terms"),
        ("fine", "query", 1, "duplicate watch-list id"),
    ]
    assert "watch-list 'b', exclude, column 10: dangling operator AND" in str(info.value)


# A reference model: items are words from a small vocabulary; a query's truth is computed
# from word positions directly. The compiled matcher must agree on every enabled
# watch-list, which checks the presearcher (only watch-lists with a found term are
# evaluated) against plain evaluation.

_WORDS = ["alpha", "beta", "gamma", "delta", "eps"]


def _queries() -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(_WORDS).map(lambda w: ("term", w))
    near = st.tuples(st.just("near"), st.integers(0, 3), leaf, leaf)
    return st.recursive(
        st.one_of(leaf, near),
        lambda inner: st.one_of(
            st.tuples(st.just("not"), inner),
            st.tuples(st.sampled_from(["and", "or"]), inner, inner),
        ),
        max_leaves=6,
    )


def _text(node: Any) -> str:
    kind = node[0]
    if kind == "term":
        return node[1]
    if kind == "near":
        return f"{node[2][1]} NEAR/{node[1]} {node[3][1]}"
    if kind == "not":
        return f"NOT ({_text(node[1])})"
    return f"({_text(node[1])}) {kind.upper()} ({_text(node[2])})"


def _truth(node: Any, words: list[str]) -> bool:
    kind = node[0]
    if kind == "term":
        return node[1] in words
    if kind == "near":
        left = [i for i, w in enumerate(words) if w == node[2][1]]
        right = [i for i, w in enumerate(words) if w == node[3][1]]
        return any(abs(i - j) - 1 <= node[1] for i in left for j in right)
    if kind == "not":
        return not _truth(node[1], words)
    results = (_truth(node[1], words), _truth(node[2], words))
    return all(results) if kind == "and" else any(results)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_queries(), min_size=1, max_size=6),
    st.lists(st.lists(st.sampled_from([*_WORDS, "zeta"]), max_size=12), min_size=1, max_size=5),
)
def test_agrees_with_reference_model(queries: list[Any], items: list[list[str]]) -> None:
    positive = [q for q in queries if not _truth(q, [])]  # the others are refused
    watchlists = [wl(_text(q), f"w{i}") for i, q in enumerate(positive)]
    m = matcher(*watchlists)
    for words in items:
        got = {x.watchlist_id for x in m.match(" ".join(words), "")}
        assert got == {f"w{i}" for i, q in enumerate(positive) if _truth(q, words)}


def test_near_with_many_hits_uses_a_word_index() -> None:
    """Past a few lookups, word positions are indexed once; both ways must agree."""
    text = "b x " + "a x x " * 12 + "a b"
    found = one("a NEAR/0 b", text)
    assert found is not None
    assert [h.start for h in found.hits] == [len(text) - 3, len(text) - 1]
    assert not fires("a NEAR/0 b", "b " + "x a x " * 12)


def test_double_negation_is_found_by_its_term() -> None:
    assert fires("x OR NOT NOT a", "a")
    assert not fires("x OR NOT NOT a", "b")


def test_korean_and_cyrillic_spans_after_multibyte_text() -> None:
    """Hits are found on UTF-8 bytes; spans must come back as character offsets."""
    title = "Пхеньян: 북한의 «ракеты» — missile"
    found = one("Пхеньян* AND 북한 AND ракет* AND missile", title)
    assert found is not None
    assert [(h.term, title[h.start : h.end]) for h in found.hits] == [
        ("Пхеньян", "Пхеньян"),
        ("북한", "북한"),
        ("ракеты", "ракеты"),
        ("missile", "missile"),
    ]


def test_languages_limit_a_watch_list_to_items_in_them() -> None:
    matcher = compile_matcher(
        [
            WatchList(
                id="ko-ru",
                title="Korean and Russian press",
                query="@dprk",
                languages=("ko", "ru"),
            ),
            WatchList(id="any", title="Any language", query="@dprk"),
        ],
        {"dprk": ("North Korea", "북한", "КНДР")},
    )

    def fired(title: str, language: str | None) -> list[str]:
        return [m.watchlist_id for m in matcher.match(title, "", language=language)]

    assert fired("북한 미사일 발사", "ko") == ["ko-ru", "any"]
    assert fired("КНДР запустила ракету", "ru") == ["ko-ru", "any"]
    assert fired("North Korea fires a missile", "en") == ["any"]
    assert fired("North Korea fires a missile", None) == ["ko-ru", "any"]  # unsure: let through


def test_languages_are_iso_codes() -> None:
    with pytest.raises(ValidationError):
        WatchList(id="x", title="X", query="a", languages=("Korean",))
