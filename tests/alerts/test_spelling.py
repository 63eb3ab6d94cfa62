"""alerts.spelling: a name's other romanisations and transliterations, matched and explained."""

from __future__ import annotations

import pytest

from alerts.match import compile_matcher
from alerts.spelling import (
    MAX_SPELLINGS,
    korean_romanisations,
    russian_transliterations,
    spelling_table,
    spellings,
    which_spellings,
)
from alerts.watchlists import WatchList

DPRK = {"dprk": ["North Korea", "Kim Jong Un", "Choe Son Hui", "김정은"]}
RUSSIA = {"russia": ["Russia*", "Шойгу", "Лавров*", "КНДР", "ракет*"]}


def matcher(aliases: dict[str, list[str]], query: str):  # type: ignore[no-untyped-def]
    watchlist = WatchList(id="w", title="W", query=query, channels=["console"])
    return compile_matcher([watchlist], {k: tuple(v) for k, v in aliases.items()})


@pytest.mark.parametrize(
    "headline",
    [
        "Kim Jong Un inspects a munitions factory",
        "Kim Jong-un inspects a munitions factory",
        "Kim Jong-eun inspects a munitions factory",  # Revised Romanization
        "Kim Chong-un inspects a munitions factory",  # McCune-Reischauer
        "Kim Chŏng-ŭn inspects a munitions factory",  # MR with its breves
        "Kim Jongun inspects a munitions factory",
        "Choe Son-hui meets Lavrov",
        "Choe Sonhui meets Lavrov",
        "Choe Seon-hee meets Lavrov",
    ],
)
def test_romanisations_of_a_korean_name_match_its_member(headline: str) -> None:
    assert matcher(DPRK, "@dprk").match(headline, "")


@pytest.mark.parametrize(
    "headline",
    [
        "Kim Jong Nam's son speaks",  # another person: a syllable outside the member's groups
        "Kim Jong-il birthday marked",
        "Kim Yo Jong issues statement",
    ],
)
def test_other_names_stay_other_names(headline: str) -> None:
    assert not matcher({"kim": ["Kim Jong Un"]}, "@kim").match(headline, "")


@pytest.mark.parametrize(
    ("headline", "fired"),
    [
        ("Shoygu arrives in Pyongyang", "Shoygu"),  # BGN/PCGN, Wikipedia
        ("Shoigu arrives in Pyongyang", "Shoigu"),  # ICAO passports, common in wires
        ("Lavrov's talks with Choe", "Lavrov"),
        ("Шойгу прибыл в Пхеньян", None),
    ],
)
def test_transliterations_of_a_russian_name_match_and_say_which_fired(
    headline: str, fired: str | None
) -> None:
    matches = matcher(RUSSIA, "@russia").match(headline, "")
    assert matches
    found = which_spellings(matches[0].terms, spelling_table(RUSSIA))
    assert [(s.matched, s.alias) for s in found] == ([(fired, "russia")] if fired else [])
    assert all(s.member in RUSSIA["russia"] for s in found)


def test_which_spelling_fired_names_the_member_it_spells() -> None:
    matches = matcher(DPRK, "@dprk").match("Kim Chong-un visits Wonsan", "")
    [spelled] = which_spellings(matches[0].terms, spelling_table(DPRK))
    assert (spelled.matched, spelled.alias, spelled.member) == (
        "Kim Chong-un",
        "dprk",
        "Kim Jong Un",
    )
    written = matcher(DPRK, "@dprk").match("Kim Jong Un visits Wonsan", "")
    assert which_spellings(written[0].terms, spelling_table(DPRK)) == []


@pytest.mark.parametrize(
    "member", ["North Korea*", "КНДР", "ракет*", "김정은", "Северная Корея", "Go Ahead", "x"]
)
def test_words_that_are_not_names_gain_nothing(member: str) -> None:
    assert spellings(member) == ()


def test_spellings_are_bounded_and_keep_a_wildcard() -> None:
    assert len(spellings("Kim Jong Un")) <= MAX_SPELLINGS
    assert len(korean_romanisations("Kim Jong Un")) == 16  # 4 x 2 romanisations, each joined
    assert spellings("Лавров*") == ("Lavrov*",)
    assert russian_transliterations("Шойгу") == ["Shoygu", "Shoygu", "Shoigu"]
    assert "Kim Jong Un" not in spellings("Kim Jong Un")  # the member itself is not repeated
