"""Russian inflection without wildcards: a watch-list with ``russian_forms`` matches a
term in every case and number, and says which form fired."""

from __future__ import annotations

from alerts.match import compile_matcher
from alerts.morphology import russian_forms
from alerts.watchlists import WatchList

ALIASES = {"dprk": ["КНДР", "Северная Корея", "Пхеньян"]}
QUERY = '@dprk AND ("баллистическая ракета" OR ракета OR запуск OR учения)'
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


def fired(russian_forms_on: bool) -> list[str]:
    watchlist = WatchList(id="ru", title="ru", query=QUERY, russian_forms=russian_forms_on)
    matcher = compile_matcher([watchlist], ALIASES)
    return [t for t in POSITIVES + NEGATIVES if matcher.match(t, "")]


def test_inflected_headlines_match_only_with_russian_forms() -> None:
    without, with_forms = fired(False), fired(True)
    recall_without = len([t for t in without if t in POSITIVES]) / len(POSITIVES)
    recall_with = len([t for t in with_forms if t in POSITIVES]) / len(POSITIVES)
    assert recall_without <= 0.3  # as written, the terms meet few real headlines
    assert recall_with == 1.0
    assert not [t for t in with_forms if t in NEGATIVES]


def test_the_explanation_names_the_form_that_fired() -> None:
    watchlist = WatchList(id="ru", title="ru", query=QUERY, russian_forms=True)
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
