"""Fold text to the canonical form both watch-list terms and items are matched in.

The canonical form is NFKC, case-folded, with Latin and Greek diacritics removed
(Cyrillic yo becomes plain ye; short i and Hangul syllables stay whole), runs of
whitespace collapsed to one space, and every other character that is not a letter or
digit (hyphens, straight and curly apostrophes and quotes, punctuation) replaced by one
space. So ``Kim Jong-un's`` folds to ``kim jong un s`` and matches ``Kim Jong Un``.

Items arrive by the thousand, so the common case must run at C speed: text made only
of characters whose fold is one character equal to ``str.lower`` (or a common
punctuation mark) takes the fast path, which keeps positions one-to-one. Which text
that is, a byte verdict on the lowered UTF-8 says for ASCII, Cyrillic and Hangul at the
cost of one ``bytes.translate``; text with other characters gets the exact check
(NFKC and a class of every character whose folds differ). Anything else (accents,
ligatures, decomposed marks, odd spaces) takes a per-character path that records an
offset map, so spans always index the original text.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from typing import NamedTuple

_WS_MARK = "\n"  # stands for folded whitespace until runs are collapsed
_DELETE = frozenset("\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff")  # soft hyphen, zero-widths
_LETTER_FOLDS = {"ё": "е", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "ŀ": "l"}
_LETTER_FOLDS |= {"æ": "ae", "œ": "oe", "þ": "th", "ŧ": "t"}
_COMMON_PUNCT = "’‘“”„–—«»·‐―•"  # frequent in news; folded to a space on the fast path
_STRIP_SCRIPTS = ("LATIN", "GREEK")
_MARK_DROP_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")
_FOLD_BYTES = bytes(  # ASCII: letters lowered, the rest of non-alphanumerics a space
    c if c >= 128 else ord(chr(c).lower()) if chr(c).isalnum() else 32 for c in range(256)
)


def _verdict_of(byte: int) -> int:
    """What a byte of lowered UTF-8 says about the fast path.

    "." fine; " " a space; "w" other whitespace; "?" a lead byte of U+A000-U+AFFF or
    U+D000-U+DFFF, fine if Hangul; "!" a lead byte outside ASCII, U+0400-U+047F
    (Cyrillic) and U+B000-U+CFFF (Hangul), which sends the text to the exact check.
    tests/alerts/test_textnorm.py proves that every char the verdict lets through folds
    the same on both paths.
    """
    if byte == 32:
        return ord(" ")
    if byte < 128 and chr(byte).isspace():
        return ord("w")
    if byte < 0xC0 or byte in (0xD0, 0xD1, 0xEB, 0xEC):  # ASCII, continuation, safe leads
        return ord(".")
    return ord("?") if byte in (0xEA, 0xED) else ord("!")


_VERDICT = bytes(_verdict_of(byte) for byte in range(256))
_EA_NOT_HANGUL = re.compile(rb"\xea[\x80-\xaf]")  # U+A000-U+ABFF
_ED_NOT_HANGUL = re.compile(rb"\xed[\x9e-\xbf]")  # U+D780-U+DFFF, rare Hangul included
_WS_RUN = re.compile(r"\s{2,}")


class Folded(NamedTuple):  # a tuple: cheaper to build than a frozen dataclass
    """Canonical text as UTF-8 (what the automaton reads), mapped back to the original."""

    data: bytes
    starts: list[int] | None = None  # original start of each folded char; None = identity
    ends: list[int] | None = None

    @property
    def text(self) -> str:
        return self.data.decode()

    @property
    def ascii(self) -> bool:
        return self.data.isascii()

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` for the folded char span ``[start, end)`` (``end > start``)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def fold(text: str) -> Folded:
    """Fold ``text`` for matching; see the module docstring for the rules."""
    if "\xa0" in text:
        text = text.replace("\xa0", " ")
    data = _lowered(text)
    verdict = data.translate(_VERDICT)
    unsure = b"!" in verdict or (b"?" in verdict and _maybe_not_hangul(data))
    if unsure and (not unicodedata.is_normalized("NFKC", text) or _slow_chars().search(text)):
        return _fold_slow(text)
    if (b"w" in verdict or b"  " in verdict) and _WS_RUN.search(text):
        return _fold_collapsed(text)
    return Folded(data.translate(_FOLD_BYTES))


@lru_cache(maxsize=65536)  # alias members are folded once per watch-list that uses them
def fold_term(text: str) -> str:
    """Canonical form of a query term: folded, without outer spaces."""
    return fold(text).text.strip(" ")


# Hangul syllables, jamo and compatibility jamo: is_hangul's ranges, as a regex class
HANGUL_CLASS = "\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f"


def is_hangul(char: str) -> bool:
    code = ord(char)
    return 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F


def snippet(text: str, start: int, end: int, width: int = 200) -> str:
    """Plain-text context of about ``width`` chars around ``text[start:end]``, cut at spaces."""
    room = max(width - (end - start), 0) // 2
    lo, hi = max(0, start - room), min(len(text), end + room)
    if lo == 0:
        hi = min(len(text), max(hi, width))
    elif hi == len(text):
        lo = max(0, min(lo, len(text) - width))
    if lo > 0 and (cut := text.find(" ", lo, start)) != -1:
        lo = cut + 1
    if hi < len(text) and (cut := text.rfind(" ", end, hi)) != -1:
        hi = cut
    body = " ".join(text[lo:hi].split())
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")


def _lowered(text: str) -> bytes:
    """UTF-8 of ``text`` lowered, yo as plain ye and common punctuation as NUL (no space).

    A fold only where :func:`fold` has checked that the text may take the fast path. Each
    replacement is one char for one char, so char positions stay those of ``text``. Lone
    surrogates (feed text has none; CLI input may) become ``?``.
    """
    if text.isascii():
        return text.encode("ascii")
    text = text.lower()
    if "ё" in text:
        text = text.replace("ё", "е")
    for mark in _COMMON_PUNCT:  # str "in" and replace are C speed, faster than on bytes
        if mark in text:
            text = text.replace(mark, "\0")
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode(errors="replace")


def _maybe_not_hangul(data: bytes) -> bool:
    """Whether UTF-8 ``data`` may hold a char of U+A000-U+ABFF or U+D780-U+DFFF.

    Two regexes, each with a literal first byte, are several times faster than one.
    """
    return bool(_EA_NOT_HANGUL.search(data) or _ED_NOT_HANGUL.search(data))


def _fold_collapsed(text: str) -> Folded:
    """Fast path for text whose only irregularity is runs of whitespace."""
    starts = list(range(len(text)))
    ends = list(range(1, len(text) + 1))
    runs = [(m.start(), m.end()) for m in _WS_RUN.finditer(text)]
    for lo, hi in reversed(runs):
        ends[lo] = hi
        del starts[lo + 1 : hi], ends[lo + 1 : hi]
    return Folded(_lowered(_WS_RUN.sub(" ", text)).translate(_FOLD_BYTES), starts, ends)


def _fold_slow(text: str) -> Folded:
    """Per-cluster fold that records where each folded character came from."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for lo, hi in _clusters(text):
        for char in _fold_cluster(text[lo:hi]):
            if char == _WS_MARK and out and out[-1] == _WS_MARK:
                ends[-1] = hi
                continue
            out.append(char)
            starts.append(lo)
            ends.append(hi)
    folded = "".join(out).replace(_WS_MARK, " ")
    return Folded(folded.encode(errors="replace"), starts, ends)


def _clusters(text: str) -> list[tuple[int, int]]:
    """Spans of a base character with the combining marks or vowel jamo that follow it."""
    spans: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        if spans and _continues(char):
            spans[-1] = (spans[-1][0], index + 1)
        else:
            spans.append((index, index + 1))
    return spans


def _continues(char: str) -> bool:
    code = ord(char)
    return unicodedata.combining(char) != 0 or 0x1160 <= code <= 0x11FF or 0xD7B0 <= code <= 0xD7FF


@cache
def _fold_cluster(cluster: str) -> str:
    """Folded characters of one cluster: letters/digits, " " for punctuation, a mark for spaces."""
    folded = unicodedata.normalize("NFKC", cluster).casefold()
    keep_marks = folded[:1].isalnum() and not _script(folded[0]).startswith(_MARK_DROP_SCRIPTS)
    out: list[str] = []
    for char in folded:
        if char in _DELETE:
            continue
        if char.isspace():
            out.append(_WS_MARK)
        elif char in _LETTER_FOLDS:
            out.append(_LETTER_FOLDS[char])
        elif unicodedata.category(char).startswith("M"):
            if keep_marks:
                out.append(char)
        else:
            out.append(_strip_marks(char) if char.isalnum() else " ")
    return "".join(out)


def _strip_marks(char: str) -> str:
    if is_hangul(char) or not _script(char).startswith(_STRIP_SCRIPTS):
        return char
    decomposed = unicodedata.normalize("NFD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _script(char: str) -> str:
    return unicodedata.name(char, "")


def _fast_char(char: str) -> str | None:
    """What the fast path turns a non-ASCII char into, or None if it cannot take it."""
    if char in _COMMON_PUNCT:
        return " "
    lower = char.lower()
    if len(lower) != 1 or not lower.isalnum() or char in "Σς":
        return None
    return "е" if lower == "ё" else lower


@cache
def _slow_chars() -> re.Pattern[str]:
    """A class of every non-ASCII char whose fast fold differs from the full fold."""
    bad: list[int] = []
    for code in range(0x80, 0x10000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF or 0xAC00 <= code <= 0xD7A3 or 0x4E00 <= code <= 0x9FFF:
            continue  # surrogates; Hangul syllables and CJK ideographs fold to themselves
        fast = _fast_char(char)
        if fast is None or _continues(char) or fast != _fold_cluster(char):
            bad.append(code)
    return re.compile(f"[{_ranges(bad)}\U00010000-\U0010ffff]")


def _ranges(codes: list[int]) -> str:
    parts: list[str] = []
    lo = prev = codes[0]
    for code in [*codes[1:], -1]:
        if code != prev + 1:
            parts.append(re.escape(chr(lo)) + ("" if lo == prev else "-" + re.escape(chr(prev))))
            lo = code
        prev = code
    return "".join(parts)
