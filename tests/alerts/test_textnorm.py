"""Folding rules, the offset map back to the original text, and snippets."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import textnorm
from alerts.textnorm import HANGUL_CLASS, _fold_slow, fold, fold_term, is_hangul, snippet


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("North KOREA", "north korea"),
        ("Kim Jong-un", "kim jong un"),
        ("Kim Jong‐Un", "kim jong un"),  # U+2010 hyphen
        ("Kim Jong–un", "kim jong un"),  # en dash
        ("Kim Jong Un's", "kim jong un s"),
        ("Kim Jong Un’s", "kim jong un s"),  # curly apostrophe
        ("“Hwasong-18”", " hwasong 18 "),
        ("«Хвасон»", " хвасон "),
        ("Café Pyongyang", "cafe pyongyang"),
        ("Đà Nẵng Łódź Øresund", "da nang lodz oresund"),
        ("Straße", "strasse"),
        ("İstanbul", "istanbul"),
        ("école", "ecole"),  # decomposed e + combining acute
        ("ＩＣＢＭ", "icbm"),  # full-width letters (NFKC)
        ("ﬁre", "fire"),  # ligature (NFKC)
        ("Ёлка ЁЖИК", "елка ежик"),  # ё folds to е
        ("Йошкар-Ола", "йошкар ола"),  # й stays й
        ("и\u0306", "й"),  # decomposed й composes, not stripped
        ("моло\u0301ко", "молоко"),  # Russian stress mark dropped
        ("북한의 미사일", "북한의 미사일"),  # Hangul syllables untouched
        ("Pyong\u00adyang", "pyongyang"),  # soft hyphen removed
        ("a\u200bb", "ab"),  # zero-width space removed
        ("North\xa0Korea", "north korea"),  # no-break space
        ("North \n\t Korea", "north korea"),  # whitespace runs collapse
        ("U.S.-South Korea", "u s  south korea"),  # punctuation is a space each
        ("Ἀθῆναι", "αθηναι"),  # Greek accents stripped
        ("북한 ꟹ ꙁ", "북한 oe ꙁ"),  # U+A000-U+ABFF share a UTF-8 lead byte with Hangul
        ("a\ud800b 북한", "a b 북한"),  # a lone surrogate (CLI input may hold one)
    ],
)
def test_fold_rules(text: str, folded: str) -> None:
    assert fold(text).text == folded


def test_hangul_is_never_decomposed() -> None:
    text = "북한은 조선민주주의인민공화국"
    assert fold(text).text == text
    assert fold("Ｋ북한").text == "k북한"  # slow path too


def test_fast_path_keeps_positions() -> None:
    text = "North Korea’s «ракета» 북한의 missile"
    folded = fold(text)
    assert folded.starts is None  # one-to-one: no map needed
    assert len(folded.text) == len(text)


def test_span_maps_back_to_original() -> None:
    text = "Ｎｏｒｔｈ  Korea’s Straße, école"
    folded = fold(text)
    for word in ("north", "korea", "strasse", "ecole"):
        start = folded.text.index(word)
        lo, hi = folded.span(start, start + len(word))
        assert fold(text[lo:hi]).text == word


def test_whitespace_run_map() -> None:
    text = "a   b\n\nc"
    folded = fold(text)
    assert folded.text == "a b c"
    assert folded.span(2, 3) == (4, 5)
    assert folded.span(1, 2) == (1, 4)  # the collapsed space covers the whole run


def test_fold_term_strips_outer_spaces() -> None:
    assert fold_term('"Hwasong-18"') == "hwasong 18"
    assert fold_term("...") == ""


def test_is_hangul() -> None:
    assert is_hangul("북")
    assert not is_hangul("b")
    assert not is_hangul("北")


_FAST = "abcXYZ019 \t\n.,-'’“”–—«»·ёЁйЙжЖ북한의미사일\xa0"
_ANY = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_FAST, max_size=80))
def test_fast_path_equals_full_fold(text: str) -> None:
    assert fold(text).text == _fold_slow(text).text


@settings(max_examples=300, deadline=None)
@given(st.one_of(_ANY, st.text(alphabet=_FAST + "éÅßﬁＡ①\u0301\u200b", max_size=60)))
def test_every_folded_word_maps_back(text: str) -> None:
    folded = fold(text)
    assert all(c == " " or c.isalnum() or unicodedata.category(c)[0] == "M" for c in folded.text)
    for match in re.finditer(r"[^ ]+", folded.text):
        lo, hi = folded.span(match.start(), match.end())
        assert 0 <= lo < hi <= len(text)
        assert match.group() in fold(text[lo:hi]).text


def test_snippet_short_text_is_whole() -> None:
    assert snippet("North Korea fires missile", 18, 25) == "North Korea fires missile"


def test_snippet_cuts_at_spaces_with_ellipses() -> None:
    words = " ".join(f"word{i}" for i in range(100))
    start = words.index("word50")
    out = snippet(words, start, start + 6, width=60)
    assert out.startswith("…") and out.endswith("…")
    assert "word50" in out
    assert len(out) <= 62
    body = out.strip("…")
    assert body.split()[0] in words.split() and body.split()[-1] in words.split()


def test_snippet_at_start_extends_right() -> None:
    text = "missile " + "x " * 200
    out = snippet(text, 0, 7, width=50)
    assert out.startswith("missile") and out.endswith("…")
    assert len(out) > 40


def test_snippet_collapses_whitespace() -> None:
    assert snippet("a\n\n  missile\tb", 5, 12) == "a missile b"


def test_every_char_the_fast_path_takes_folds_as_the_full_fold() -> None:
    """The byte verdict lets a char through only where both paths agree, one char to one."""
    passed: set[int] = set()
    for code in range(0x10FFFF + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        data = textnorm._lowered(char)
        verdict = data.translate(textnorm._VERDICT)
        if b"!" in verdict or (b"?" in verdict and textnorm._maybe_not_hangul(data)):
            continue
        passed.add(code)
        fast = data.translate(textnorm._FOLD_BYTES).decode()
        assert len(fast) == 1, hex(code)
        assert fast == _fold_slow(char).text, hex(code)
    common = [*range(0x80), *range(0x400, 0x480), *range(0xAC00, 0xD780)]  # Hangul but 36
    assert passed.issuperset(common)


def test_the_hangul_regex_class_holds_exactly_what_is_hangul_accepts() -> None:
    one = re.compile(f"[{HANGUL_CLASS}]")
    assert all(bool(one.fullmatch(chr(c))) == is_hangul(chr(c)) for c in range(0x10000))
