"""Russian inflection without wildcards: a watch-list with ``russian_forms``, or a term
marked with ``~``, matches in every case and number, and says which form fired."""

from __future__ import annotations

import pytest

from alerts.match import compile_matcher
from alerts.morphology import russian_forms
from alerts.watchlists import WatchList

ALIASES = {"dprk": ["КНДР", "Северная Корея", "Пхеньян"]}
QUERY = '@dprk AND ("баллистическая ракета" OR ракета OR запуск OR учения)'
# the same query with each term marked: the alias, or its members written out
MARKED = '@dprk~ AND ("баллистическая ракета"~ OR ракета~ OR запуск~ OR учения~)'
MARKED_INLINE = (
    '(КНДР~ OR "Северная Корея"~ OR Пхеньян~) '
    'AND ("баллистическая ракета"~ OR ракета~ OR запуск~ OR учения~)'
)
# Headlines as TASS, RIA and Interfax write them: the terms inflected, never as written
POSITIVES = [
    "КНДР провела запуск баллистической ракеты в сторону Японского моря",
    "Северной Кореей запущена баллистическая ракета, сообщили в Сеуле",
    "В Пхеньяне заявили об испытании новой ракеты",
    "Япония выразила протест Северной Корее из-за запуска ракет",
    "Южная Корея: КНДР произвела пуск двух баллистических ракет",
    "Пхеньян осудил совместные учения США и Южной Кореи",
    "Военные учения у берегов Северной Кореи завершились",
    "КНДР сообщила о запусках крылатых ракет с подводной лодки",
    "Пхеньян пригрозил ответом на учения НАТО",
    "Кораблям рекомендовали избегать района запуска, заявили в Пхеньяне",
]
NEGATIVES = [
    "Роскосмос перенёс запуск ракеты с Байконура",  # a launch, no North Korea
    "Северная Корея и Китай подписали торговое соглашение",  # North Korea, no launch
    "Сборная КНДР по футболу вышла в финал",
    "В Москве прошли учения МЧС",
]


def fired(russian_forms_on: bool, query: str = QUERY) -> list[str]:
    watchlist = WatchList(id="ru", title="ru", query=query, russian_forms=russian_forms_on)
    matcher = compile_matcher([watchlist], ALIASES)
    return [t for t in POSITIVES + NEGATIVES if matcher.match(t, "")]


def test_inflected_headlines_match_only_with_russian_forms() -> None:
    without, with_forms = fired(False), fired(True)
    recall_without = len([t for t in without if t in POSITIVES]) / len(POSITIVES)
    recall_with = len([t for t in with_forms if t in POSITIVES]) / len(POSITIVES)
    assert recall_without <= 0.3  # as written, the terms meet few real headlines
    assert recall_with == 1.0
    assert not [t for t in with_forms if t in NEGATIVES]


@pytest.mark.parametrize("query", [MARKED, MARKED_INLINE])
def test_marked_terms_find_what_russian_forms_finds(query: str) -> None:
    assert fired(False, query) == fired(True)
    assert set(fired(False, query)) == set(POSITIVES)


def test_only_the_marked_terms_inflect() -> None:
    # ракета and запуск as written: headlines with only their other forms are lost
    query = '@dprk~ AND ("баллистическая ракета"~ OR ракета OR запуск OR учения~)'
    lost = set(POSITIVES) - set(fired(False, query))
    assert lost == {POSITIVES[2], POSITIVES[3], POSITIVES[7], POSITIVES[9]}
    assert not set(fired(False, query)) & set(NEGATIVES)


@pytest.mark.parametrize(("query", "option"), [(QUERY, True), (MARKED, False)])
def test_the_explanation_names_the_form_that_fired(query: str, option: bool) -> None:
    watchlist = WatchList(id="ru", title="ru", query=query, russian_forms=option)
    [match] = compile_matcher([watchlist], ALIASES).match(POSITIVES[1], "")
    assert {hit.term for hit in match.hits} >= {"Северной Кореей", "баллистическая ракета"}
    [match] = compile_matcher([watchlist], ALIASES).match(POSITIVES[0], "")
    assert {hit.term for hit in match.hits} >= {"КНДР", "баллистической ракеты"}


def test_forms_agree_and_leave_what_does_not_inflect() -> None:
    forms = russian_forms("баллистическая ракета")
    assert forms[0] == "баллистическая ракета"
    assert {"баллистической ракеты", "баллистическими ракетами", "баллистических ракет"} <= set(
        forms
    )
    assert russian_forms("КНДР") == ("КНДР",)  # an abbreviation stays as written
    assert russian_forms("ракет*") == ("ракет*",)  # a wildcard is the admin's own choice
    assert russian_forms("missile") == ("missile",)
