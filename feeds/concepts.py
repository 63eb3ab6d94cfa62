"""Language-independent evidence of an event: the concepts an item names and its numbers.

Word shingles cannot meet across scripts, and paraphrased wire copy shares few of them.
What copies of one event do share, in any language, is what they name (North Korea,
the Joint Chiefs of Staff, the East Sea, a ballistic missile, a launch) and the numbers
they carry (600 km, 3 March). ``extract`` finds both; ``feeds.story`` weighs them.

Each concept or number becomes a 32-bit code: a stable hash of its name with its kind in
the low 3 bits, so a stored signature keeps what it needs to weigh its evidence and a
change of the lexicon changes no other code.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import daachorse

from feeds import concept_lexicon as lexicon_data

KINDS = (
    lexicon_data.STATE,
    lexicon_data.WHO,
    lexicon_data.WHERE,
    lexicon_data.THING,
    lexicon_data.WHAT,
    "year",  # 1900-2100: most items of a year carry it
    "small",  # up to 31: days, hours, counts; many items share one by chance
    "big",  # distances, altitudes, amounts: strong evidence
)
KIND_CODE = {kind: code for code, kind in enumerate(KINDS)}
WHAT_CODE = KIND_CODE[lexicon_data.WHAT]
STATE_CODE = KIND_CODE[lexicon_data.STATE]
BIG_CODE = KIND_CODE["big"]

_PERSON = b"watchfloor-cn"
_NOT_WORD = re.compile(r"[\W_]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACED_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d.,])")
_COMMA_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")
# 14조6천억 (14.6 trillion), 1천200 (1,200), 120만; 14.6 trillion, 1,2 млн. Each starts where
# no digit precedes, so a run of 50,000 digits is tried once, not 50,000 times.
_KOREAN_AMOUNT = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?:조|억|만|천)(?:\d+(?:\.\d+)?|조|억|만|천)*")
_KOREAN_PART = re.compile(r"\d+(?:\.\d+)?|조|억|만|천")
_KOREAN_UNIT_CHARS = ("조", "억", "만", "천")  # _KOREAN_AMOUNT holds one
_KOREAN_UNITS = {"조": 1e12, "억": 1e8, "만": 1e4}
_SCALED = re.compile(
    r"(?<![\d.,])(\d+(?:[.,]\d+)?)\s*(trillion|billion|million|thousand|трлн|млрд|млн|тыс)\b",
    re.IGNORECASE,
)
_SCALED_HINT = re.compile(  # the end of every _SCALED match
    r"\d\s*(?:trillion|billion|million|thousand|трлн|млрд|млн|тыс)", re.IGNORECASE
)
_SPACED_HINT = re.compile(r"\d[ \u00a0\u202f]\d{3}")  # in every _SPACED_THOUSANDS match
_NO_DIGIT = re.compile(r"\D*")
_HANGUL = re.compile("[\uac00-\ud7a3]")
_SCALES = {
    "trillion": 1e12, "трлн": 1e12, "billion": 1e9, "млрд": 1e9,
    "million": 1e6, "млн": 1e6, "thousand": 1e3, "тыс": 1e3,
}  # fmt: skip
_START, _GAP, _ANY, _END = r"(?<!\w)", r"\s+", r"\w*", r"\b"  # the inner-wildcard regex
_MONTHS = {
    **{
        name: month
        for month, names in enumerate(
            (
                ("january", "jan"),
                ("february", "feb"),
                ("march", "mar"),
                ("april", "apr"),
                ("may",),
                ("june", "jun"),
                ("july", "jul"),
                ("august", "aug"),
                ("september", "sept", "sep"),
                ("october", "oct"),
                ("november", "nov"),
                ("december", "dec"),
            ),
            start=1,
        )
        for name in names
    },
    **{
        name: month
        for month, name in enumerate(
            (
                "января",
                "февраля",
                "марта",
                "апреля",
                "мая",
                "июня",
                "июля",
                "августа",
                "сентября",
                "октября",
                "ноября",
                "декабря",
            ),
            start=1,
        )
    },
}
_NUMBER_WORDS = {
    **dict.fromkeys(("two", "два", "две", "двух", "двумя"), 2),
    **dict.fromkeys(("three", "три", "трех", "тремя"), 3),
    **dict.fromkeys(("four", "четыре", "четырех"), 4),
    **dict.fromkeys(("five", "пять", "пяти"), 5),
    **dict.fromkeys(("six", "шесть", "шести"), 6),
    **dict.fromkeys(("seven", "семь", "семи"), 7),
    **dict.fromkeys(("eight", "восемь", "восьми"), 8),
    **dict.fromkeys(("nine", "девять", "девяти"), 9),
    **dict.fromkeys(("ten", "десять", "десяти"), 10),
}
_WORD_NUMBERS = {**_MONTHS, **_NUMBER_WORDS}


@dataclass(frozen=True, slots=True)
class Evidence:
    """An item's concept and number codes, and those of its title alone."""

    codes: frozenset[int]
    title: frozenset[int]
    action: int = 0  # the headline's main action (its verb), 0 when it names none


def normalize(text: str) -> str:
    """Casefolded words between single spaces, yo as ye: the form lexicon entries take."""
    return _fold(unicodedata.normalize("NFKC", text))


def _fold(nfkc: str) -> str:
    """``_NOT_WORD`` runs to one space. In ASCII text (most English copy, once its curly
    quotes and dashes are spaces, as they would become) those runs are the characters that
    are not letters or digits: a translate table and a split do it three times faster."""
    text = nfkc.casefold().replace("ё", "е")
    if not text.isascii():
        for mark in _TYPOGRAPHY:
            text = text.replace(mark, " ")
        if not text.isascii():
            return _NOT_WORD.sub(" ", text).strip()
    return " ".join(text.translate(_ASCII_NOT_WORD).split())


_TYPOGRAPHY = "’‘“”—–«»"  # not words, and the only non-ASCII of much English copy
_ASCII_NOT_WORD = {code: " " for code in range(128) if not chr(code).isalnum()}


def kind_of(code: int) -> int:
    return code & 7


def code_of(name: str, kind: str) -> int:
    """The 32-bit code of a concept or number: its hash, its kind in the low 3 bits."""
    digest = hashlib.blake2b(name.encode(), digest_size=4, person=_PERSON).digest()
    return (int.from_bytes(digest, "big") & ~7) | KIND_CODE[kind]


class Lexicon:
    """Surface forms compiled into one Aho-Corasick automaton (daachorse), plus a small
    regular expression for the few forms with a wildcard inside (``крылат* ракет*``)."""

    def __init__(self, concepts: Iterable[tuple[str, str, Sequence[str]]]) -> None:
        targets: dict[bytes, set[int]] = {}
        inner: dict[str, set[int]] = {}
        for name, kind, forms in concepts:
            code = code_of(name, kind)
            for form in forms:
                pattern = _pattern(form)
                if isinstance(pattern, bytes):
                    targets.setdefault(pattern, set()).add(code)
                else:
                    inner.setdefault(pattern, set()).add(code)
        # A form with an inner wildcard is tried only when its first word's stem is found.
        self._inner = [(re.compile(p), frozenset(c)) for p, c in inner.items()]
        triggers = [_trigger(p) for p in inner]  # the first word's stem
        self._patterns = list(targets) + [t for t in triggers if t not in targets]
        self._codes = [frozenset(targets.get(p, ())) for p in self._patterns]
        self._checks: list[tuple[int, ...]] = [
            tuple(n for n, t in enumerate(triggers) if t == p) for p in self._patterns
        ]
        self._actions = [tuple(c for c in codes if c & 7 == WHAT_CODE) for codes in self._codes]
        self._automaton = daachorse.DoubleArrayAhoCorasick(self._patterns)

    def find(self, normalized: str) -> set[int]:
        """The codes of every concept named in a ``normalize``-d text."""
        return self._find(normalized, [])

    def _find(self, normalized: str, actions: list[tuple[int, int]]) -> set[int]:
        """``find``, also appending (position, code) of each action named to ``actions``."""
        data = f" {normalized} ".encode()
        found: set[int] = set()
        checks: set[int] = set()
        for start, _, pattern in self._automaton.find_overlapping(data):
            found |= self._codes[pattern]
            if self._actions[pattern]:  # most forms name no action and trigger no regex
                actions.extend([(start, code) for code in self._actions[pattern]])
            if self._checks[pattern]:
                checks.update(self._checks[pattern])
        for check in checks:
            regex, codes = self._inner[check]
            if regex.search(normalized):
                found |= codes
        return found


@cache
def default_lexicon() -> Lexicon:
    return Lexicon(lexicon_data.CONCEPTS)


def extract(title: str, summary: str, lexicon: Lexicon | None = None) -> Evidence:
    """The concepts and numbers of an item, and those of its title."""
    lex = lexicon or default_lexicon()
    actions: list[tuple[int, int]] = []
    title_codes = _evidence(title, lex, actions)
    codes = frozenset(title_codes | _evidence(summary, lex, []))
    return Evidence(codes, frozenset(title_codes), _main_action(title, actions))


def _main_action(title: str, actions: list[tuple[int, int]]) -> int:
    """The headline's verb: its first action in English and Russian, its last in Korean,
    whose verb ends the sentence ("한미일, 北 미사일 발사 규탄": condemn, not launch)."""
    if not actions:
        return 0
    hangul = len(_HANGUL.findall(title))
    korean = 2 * hangul > sum(map(str.isalpha, title))
    return (max if korean else min)(actions)[1]


def numbers(text: str) -> set[str]:
    """Numbers as one canonical string each: 1,000 and 1 000 are 1000; 3,5 and 3.5 are 3.5;
    month names and number words from two to ten are their numbers."""
    nfkc = unicodedata.normalize("NFKC", text)
    return _numbers(nfkc, _fold(nfkc).split(" "))


def _numbers(nfkc: str, words: list[str]) -> set[str]:
    found = {str(_WORD_NUMBERS[w]) for w in filter(_WORD_NUMBERS.__contains__, words)}
    if _NO_DIGIT.fullmatch(nfkc):  # most summaries have a digit; much prose has none
        return found
    # Each pattern runs only where a cheap test finds what every match of it contains:
    # the lookbehinds they start with make the regex engine try them at every position.
    text = nfkc
    if _SPACED_HINT.search(nfkc):
        text = _SPACED_THOUSANDS.sub(lambda m: re.sub(r"\D", "", m.group()), nfkc)
    for raw in _NUMBER.findall(text):
        if _COMMA_THOUSANDS.fullmatch(raw):
            raw = raw.replace(",", "")
        value = raw.replace(",", ".")
        if value.count(".") == 1:
            value = value.rstrip("0").rstrip(".")
        found.add(value.lstrip("0") or "0")
    if any(unit in text for unit in _KOREAN_UNIT_CHARS):
        found.update(_amount(_korean_amount(m)) for m in _KOREAN_AMOUNT.findall(text))
    if _SCALED_HINT.search(text):
        for number, scale in _SCALED.findall(text):
            found.add(_amount(float(number.replace(",", ".")) * _SCALES[scale.casefold()]))
    return found


def _korean_amount(text: str) -> float:
    """14조6천억 is 14 x 10^12 + 6 x 10^3 x 10^8; 1천200 is 1,200."""
    total = group = 0.0
    current: float | None = None
    for part in _KOREAN_PART.findall(text):
        if part == "천":
            group += (1.0 if current is None else current) * 1e3
        elif part in _KOREAN_UNITS:
            group += current or 0.0
            total += (group or 1.0) * _KOREAN_UNITS[part]
            group = 0.0
        else:
            current = float(part)
            continue
        current = None
    return total + group + (current or 0.0)


def _amount(value: float) -> str:
    """One string per amount however written: 1200, or 1.46e+13 past a million."""
    if value < 1e6 and value == int(value):
        return str(int(value))
    return f"{value:.3g}"


def _evidence(text: str, lexicon: Lexicon, actions: list[tuple[int, int]]) -> set[int]:
    if not text:
        return set()
    nfkc = unicodedata.normalize("NFKC", text)
    normalized = _fold(nfkc)
    codes = lexicon._find(normalized, actions)
    numbers_found = _numbers(nfkc, normalized.split(" "))
    codes.update(map(_number_code, numbers_found))
    return codes


@lru_cache(maxsize=1 << 12)  # dates, counts and years recur in every poll
def _number_code(value: str) -> int:
    return code_of(f"n:{value}", _number_kind(value))


def _number_kind(value: str) -> str:
    if "." in value or "e" in value or len(value) > 4:
        return "big"
    number = int(value)
    if 1900 <= number <= 2100:
        return "year"
    return "small" if number <= 31 else "big"


def _trigger(regex: str) -> bytes:
    stem = regex.removeprefix(_START).split(_GAP)[0]
    return (" " + stem.removesuffix(_ANY).removesuffix(_END)).encode()


def _pattern(form: str) -> bytes | str:
    """Automaton bytes for a form (spaces mark word edges), or a regex for an inner ``*``."""
    prefix = form.endswith("*")
    words = normalize(form.rstrip("*"))
    if not words:
        raise ValueError(f"concept form {form!r} has no word")
    if "*" in form.rstrip("*"):  # a wildcard inside: each word a prefix where marked
        parts = [
            normalize(w.rstrip("*")) + (_ANY if w.endswith("*") else _END) for w in form.split()
        ]
        return _START + _GAP.join(parts)
    if _is_cjk(words[0]):
        return words.encode()
    return f" {words}{'' if prefix else ' '}".encode()


def _is_cjk(char: str) -> bool:
    return (
        "\uac00" <= char <= "\ud7a3" or "\u4e00" <= char <= "\u9fff" or "\u3130" <= char <= "\u318f"
    )
