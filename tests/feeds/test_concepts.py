"""feeds.concepts: what an item names and its numbers, the same in any of our languages."""

from __future__ import annotations

import re
import unicodedata

import pytest

from feeds import concepts
from feeds.concept_lexicon import CONCEPTS, STATE, THING, WHAT, WHERE, WHO


def code(name: str) -> int:
    kind = next(k for n, k, _ in CONCEPTS if n == name)
    return concepts.code_of(name, kind)


def named(text: str) -> set[int]:
    return concepts.default_lexicon().find(concepts.normalize(text))


@pytest.mark.parametrize(
    "text",
    [
        "North Korea fires ballistic missile",
        "N. Korea fires a ballistic missile",
        "北, 탄도미사일 발사",
        "북한이 탄도미사일을 발사했다",
        "КНДР запустила баллистическую ракету",
        "Северная Корея запустила баллистические ракеты",
    ],
)
def test_one_launch_in_three_languages_names_the_same_concepts(text: str) -> None:
    assert {code("dprk"), code("ballistic"), code("missile"), code("launch")} <= named(text)


def test_korean_forms_match_with_particles_and_in_compounds() -> None:
    assert code("jcs") in named("합참은 이날 밝혔다")
    assert code("missile") in named("탄도미사일을")
    assert code("east-sea") in named("동해상으로")


def test_latin_and_cyrillic_forms_match_whole_words_or_marked_endings() -> None:
    assert code("rok") not in named("the rocket")  # "rok" is a whole word
    assert code("sanctions") in named("new sanctioned entities")  # sanction*
    assert code("putin") in named("Путину")  # путин*
    assert code("shoigu") in named("Шойгу")
    assert code("shoigu") not in named("Шойгуев")  # not marked: the word itself only


def test_a_form_with_an_inner_wildcard_matches_each_word_s_ending() -> None:
    assert code("cruise-missile") in named("КНДР запустила крылатые ракеты")
    assert code("cruise-missile") not in named("крылатая фраза")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("600 km, 1,000 people and 1 000 more", {"600", "1000"}),
        ("3,5 million or 3.5 million, 2.50%", {"3.5", "3.5e+06", "2.5"}),
        ("March 3", {"3"}),
        ("3 марта", {"3"}),
        ("3월 3일 600여㎞", {"3", "600"}),
        ("two missiles, две ракеты", {"2"}),
        ("０７", {"7"}),
    ],
)
def test_numbers_are_canonical_across_languages(text: str, expected: set[str]) -> None:
    assert concepts.numbers(text) == expected


@pytest.mark.parametrize(
    "text", ["14조6천억원", "14.6 trillion won", "14,6 трлн вон", "14.6 Trillion"]
)
def test_an_amount_is_one_number_in_korean_english_and_russian_notation(text: str) -> None:
    assert "1.46e+13" in concepts.numbers(text)


@pytest.mark.parametrize(
    ("korean", "western"),
    [("1천200여명", "1,200"), ("120만명", "1.2 million"), ("82조원", "82 trillion")],
)
def test_korean_amounts_meet_their_western_spelling(korean: str, western: str) -> None:
    assert concepts.numbers(korean) & concepts.numbers(western)


def test_a_number_s_kind_is_in_its_code() -> None:
    evidence = concepts.extract("", "In 2025, on the 3rd, it flew 600 km.")
    kinds = {concepts.kind_of(c) for c in evidence.codes}
    assert kinds == {concepts.KIND_CODE["year"], concepts.KIND_CODE["small"], concepts.BIG_CODE}


@pytest.mark.parametrize(
    ("title", "action"),
    [
        ("S. Korea, U.S., Japan condemn N. Korea's missile launch", "condemn"),
        ("США, Япония и РК осудили запуск ракеты КНДР", "condemn"),
        ("한미일, 北 탄도미사일 발사 규탄", "condemn"),  # Korean: the verb ends the headline
        ("北, 동해상으로 탄도미사일 발사", "launch"),
        ("North Korea fires missile ahead of drills", "launch"),
    ],
)
def test_the_headline_s_main_action(title: str, action: str) -> None:
    assert concepts.extract(title, "").action == code(action)


def test_title_codes_are_kept_apart_from_the_summary_s() -> None:
    evidence = concepts.extract("Putin meets Kim", "in Pyongyang on Tuesday")
    assert code("putin") in evidence.title
    assert code("pyongyang") in evidence.codes - evidence.title


def test_a_lexicon_of_our_own() -> None:
    lexicon = concepts.Lexicon([("uljin", WHERE, ("uljin", "울진", "ульчжин*"))])
    assert lexicon.find(concepts.normalize("울진군 산불")) == {concepts.code_of("uljin", WHERE)}
    assert lexicon.find(concepts.normalize("в Ульчжине")) == {concepts.code_of("uljin", WHERE)}
    with pytest.raises(ValueError):
        concepts.Lexicon([("empty", WHO, ("--",))])


def test_every_concept_has_a_known_kind_and_forms() -> None:
    names = [name for name, _, _ in CONCEPTS]
    assert len(names) == len(set(names))
    assert {kind for _, kind, _ in CONCEPTS} == {STATE, WHO, WHERE, THING, WHAT}
    assert all(forms for _, _, forms in CONCEPTS)


def test_hostile_text_is_handled_in_bounded_time() -> None:
    evidence = concepts.extract("x" * 10_000, "9" * 50_000 + " ракет" * 10_000)
    assert code("missile") in evidence.codes
    for hostile in ("9" * 50_000 + "만", "1." * 25_000, "9 " * 25_000 + "x", "1,2" * 20_000):
        assert concepts.numbers(hostile)  # linear: each pattern starts after a non-digit


def test_ascii_text_is_folded_as_the_regex_folds_it() -> None:
    """``normalize`` takes a translate table for ASCII text (and English copy whose only
    other characters are curly quotes and dashes): it must give what the regex gives."""

    def reference(text: str) -> str:
        nfkc = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
        return re.sub(r"[\W_]+", " ", nfkc).strip()

    every_ascii = "".join(map(chr, range(128)))
    texts = [every_ascii, every_ascii[::-1], "“Kim’s—launch”  –  «test» __x__ 1,5", "ё_Ё x"]
    texts += [f"a{chr(c)}b{chr(c)}" for c in range(128)] + ["", " ", "’", "_"]
    for text in texts:
        assert concepts.normalize(text) == reference(text), repr(text)
