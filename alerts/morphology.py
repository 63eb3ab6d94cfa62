"""Russian inflection without wildcards: a term's forms in every case and number, made when
a watch-list is compiled (pymorphy3 and its OpenCorpora dictionary), so matching an item
costs what it did: the automaton simply holds more keys.

``баллистическая ракета`` becomes the phrase in all six cases, singular and plural, each
word agreeing (``баллистической ракеты``, ``баллистическими ракетами``...). A word the
dictionary cannot inflect (an abbreviation like ``КНДР``, an indeclinable name like
``Шойгу``) stays as written. Only Cyrillic terms without a ``*`` are expanded.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

CASES = ("nomn", "gent", "datv", "accs", "ablt", "loct")
INFLECTED = {"NOUN", "ADJF", "PRTF", "NUMR", "NPRO"}  # parts of speech that take a case
MAX_WORDS = 6  # a longer phrase is a quotation, not a name: left as written


def is_cyrillic(text: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in text)


@cache
def _analyzer() -> Any:
    import pymorphy3  # 0.3 s to load the dictionary: only when a watch-list asks for it

    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=65536)
def russian_forms(text: str) -> tuple[str, ...]:
    """Every form of ``text`` (itself first), or just ``text`` when it is not Russian."""
    words = text.lower().split()
    if not words or len(words) > MAX_WORDS or text.endswith("*") or not is_cyrillic(text):
        return (text,)
    morph = _analyzer()
    parsed = [morph.parse(word)[0] for word in words]
    forms = {" ".join(words): None}
    for number in ("sing", "plur"):
        for case in CASES:
            phrase = []
            for word, parse in zip(words, parsed, strict=True):
                inflected = None
                if parse.tag.POS in INFLECTED:
                    inflected = parse.inflect({case, number}) or parse.inflect({case})
                phrase.append(inflected.word if inflected else word)
            forms.setdefault(" ".join(phrase), None)
    return (text, *(f for f in forms if f != text.lower()))
