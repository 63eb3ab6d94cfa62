"""Search tokens: Korean particles, Russian endings and English plurals still find the word."""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.search import fts5_query, index_text, parse_search, tokens, tsquery
from alerts.textnorm import fold, is_hangul


def test_hangul_runs_are_indexed_as_syllable_pairs_other_words_whole() -> None:
    assert tokens("북한의 ICBM 발사") == ["북한", "한의", "icbm", "발사"]
    assert tokens("6차 핵실험") == ["6", "차", "핵실", "실험"]
    assert tokens("Kim Jong-un's ракеты, ёлка") == ["kim", "jong", "un", "s", "ракеты", "елка"]


def test_queries_become_phrases_and_prefixes() -> None:
    assert fts5_query(parse_search("북한 missile")) == '"북한" AND "missile"*'
    assert fts5_query(parse_search("미사일을")) == '"미사 사일 일을"'
    assert tsquery(parse_search("ракет 북한")) == "('ракет':*) & ('북한')"
    assert parse_search('"; DROP TABLE items; --') == parse_search("drop table items")


SAMPLES = [
    "North Korea fires ballistic missiles toward the East Sea",
    "북한의 탄도미사일 발사에 합참이 경계 강화",
    "КНДР запустила баллистические ракеты в сторону Японского моря",
    "Seoul stocks close higher on chip exports",
]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("missile", [0]),  # plural by prefix
        ("BALLISTIC missiles", [0]),
        ("북한", [1]),  # the noun inside 북한의
        ("미사일", [1]),  # inside 탄도미사일
        ("합참", [1]),
        ("ракет", [2]),  # ракеты by prefix
        ("КНДР", [2]),
        ("баллистическ ракет", [2]),
        ("stocks chip", [3]),
        ("missile 북한", []),  # every word must be there
    ],
)
def test_fts5_finds_words_in_three_languages(query: str, found: list[int]) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    for n, text in enumerate(SAMPLES):
        db.execute("INSERT INTO t (rowid, body) VALUES (?, ?)", (n, index_text(text, "")))
    rows = db.execute(
        "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", (fts5_query(parse_search(query)),)
    )
    assert [r[0] for r in rows] == found


def _tokens_char_by_char(text: str) -> list[str]:
    """The tokenizer as first written: runs cut character by character with is_hangul."""
    out: list[str] = []
    for word in re.findall(r"\w+", fold(text).text):
        runs: list[list[str]] = []
        for char in word:
            if runs and is_hangul(runs[-1][0][0]) == is_hangul(char):
                runs[-1].append(char)
            else:
                runs.append([char])
        for chars in runs:
            run = "".join(chars)
            pairs = [run[i : i + 2] for i in range(len(run) - 1)]
            out.extend(pairs if is_hangul(run[0]) and len(run) > 1 else [run])
    return out


@given(st.text(alphabet=st.sampled_from("ab ㄱㅏ가각힣ᄀ북한의Ωд-_1 \u3131\u318e\uac00\ud7a3")))
def test_the_run_regex_cuts_words_as_the_character_loop_did(text: str) -> None:
    assert tokens(text) == _tokens_char_by_char(text)
    assert tokens(text) == tokens(text)  # a second call, from the word cache


def test_long_words_are_tokenized_without_the_cache() -> None:
    word = "북한" * 40 + "x" * 50
    assert tokens(word) == _tokens_char_by_char(word)
