"""Other spellings of a name in an alias group, so one member matches them all.

Korean names reach English copy in several romanisations (Revised Romanization: Kim
Jeong-eun; McCune-Reischauer: Kim Chong-un; common usage: Kim Jong Un, Kim Jong-un) and
spacings (Kim Jongun). A member that reads as a Korean name (a common surname, then
given-name syllables we know) gains the other romanisations of each syllable and the
joined spelling; matching already folds hyphens to spaces, so Kim Jong-un needs nothing.

Russian names written in Cyrillic gain their Latin transliterations by the schemes wires
and agencies use (iuliia: Wikipedia, BGN/PCGN, ICAO passports): Шойгу gives
Shoygu and Shoigu. Abbreviations (КНДР) and lowercase words (ракет*) are not names.

Pure functions over text; ``alerts.query`` adds the spellings to an alias's terms.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import iuliia

from alerts.textnorm import fold_term

MAX_SPELLINGS = 24  # per member: a name of three syllables with alternatives stays under it

SURNAMES = frozenset(
    {
        "kim", "lee", "ri", "yi", "park", "pak", "choe", "choi", "jang", "chang", "jeong",
        "jung", "chong", "kang", "han", "cho", "jo", "yoon", "yun", "ryu", "hwang", "hyon",
        "hyun", "moon", "mun", "song", "seo", "kwon", "shin", "thae", "ro", "roh", "nam",
    }
)  # fmt: skip
# Given-name syllables: the romanisations that stand for one Hangul syllable. A syllable
# absent here makes the member not a Korean name (no guesses about other languages).
_GROUPS = (
    ("jong", "chong", "jeong", "cheong"),
    ("un", "eun"),
    ("yo", "yeo"),
    ("jo", "cho"),
    ("ju", "chu"),
    ("song", "seong"),
    ("son", "seon"),
    ("sol", "seol"),
    ("hui", "hee", "hi"),
    ("chol", "cheol"),
    ("kun", "gun", "geun"),
    ("kyong", "gyong", "gyeong", "kyeong"),
    ("yong", "yeong"),
    ("myong", "myeong", "myung"),
    ("sok", "seok", "suk"),
    ("hyon", "hyeon", "hyun"),
    ("ryong", "ryeong"),
    ("chun", "cheon", "chon"),
    ("jae", "chae"),
    ("jin", "chin"),
    ("il",),
    ("nam",),
    ("ho",),
    ("su", "soo"),
    ("in",),
    ("ha",),
    ("min",),
    ("sik", "shik"),
    ("yeol", "yol"),
    ("hwan",),
    ("tae", "thae"),
    ("pyong", "pyeong"),
    ("chan",),
    ("gil", "kil"),
    ("dok", "tok", "deok"),
    ("ung",),
    ("bong", "pong"),
)
_ALTERNATIVES = {syllable: group for group in _GROUPS for syllable in group}
_RUSSIAN_SCHEMES = {
    "wikipedia": iuliia.WIKIPEDIA,
    "bgn_pcgn": iuliia.BGN_PCGN,
    "icao_doc_9303": iuliia.ICAO_DOC_9303,
}


def spellings(member: str) -> tuple[str, ...]:
    """Other spellings of an alias member (not the member itself), at most MAX_SPELLINGS."""
    text = member.strip()
    star = "*" if text.endswith("*") else ""
    name = text.rstrip("*").strip()
    found = korean_romanisations(name) or russian_transliterations(name)
    seen = {_fold(name)}
    out = []
    for spelling in found:
        if _fold(spelling) not in seen:
            seen.add(_fold(spelling))
            out.append(spelling + star)
    return tuple(out[:MAX_SPELLINGS])


def korean_romanisations(name: str) -> list[str]:
    """Kim Jong Un: Kim Chong Un, Kim Jeong Eun, ..., and each joined (Kim Jongun)."""
    words = name.split()
    if not 2 <= len(words) <= 3 or words[0].casefold() not in SURNAMES:
        return []
    syllables = [s.casefold() for word in words[1:] for s in word.split("-")]
    if not 1 <= len(syllables) <= 3 or any(s not in _ALTERNATIVES for s in syllables):
        return []
    surname = words[0]
    out = []
    for combo in itertools.product(*(_ALTERNATIVES[s] for s in syllables)):
        given = [s.capitalize() for s in combo]
        out.append(" ".join([surname, *given]))
        if len(given) > 1:
            out.append(f"{surname} {given[0]}{''.join(g.lower() for g in given[1:])}")
    return out


def russian_transliterations(name: str) -> list[str]:
    """Шойгу: Shoygu, Shoigu. Only a capitalised Cyrillic word (a surname), not an
    abbreviation or a phrase (Северная Корея has its English name in the group already)."""
    words = name.split()
    if len(words) != 1 or not _is_cyrillic_name(words[0]):
        return []
    return [_translate(name, scheme) for scheme in _RUSSIAN_SCHEMES]


def _is_cyrillic_name(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return (
        len(letters) >= 2
        and all("\u0400" <= c <= "\u04ff" for c in letters)
        and letters[0].isupper()
        and not all(c.isupper() for c in letters)
    )


@cache
def _translate(name: str, scheme: str) -> str:
    return str(_RUSSIAN_SCHEMES[scheme].translate(name))


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("-", " "))
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


@dataclass(frozen=True, slots=True)
class Spelled:
    """A hit that matched a generated spelling, and the alias member it spells."""

    matched: str  # as it appears in the item
    alias: str
    member: str  # as the admin wrote it


def spelling_table(aliases: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, str]]:
    """Folded spelling (a trailing * kept) -> (alias, member), for every generated one."""
    table: dict[str, tuple[str, str]] = {}
    for alias, members in aliases.items():
        written = {fold_term(m) for m in members}
        for member in members:
            for spelling in spellings(member):
                key = fold_term(spelling.rstrip("*")) + ("*" if spelling.endswith("*") else "")
                if key.rstrip("*") not in written:
                    table.setdefault(key, (alias.lower(), member))
    return table


def which_spellings(terms: Iterable[str], table: Mapping[str, tuple[str, str]]) -> list[Spelled]:
    """The hits (matched texts) that only a generated spelling explains, and its member."""
    out = []
    for term in terms:
        folded = fold_term(term)
        found = table.get(folded) or next(
            (v for k, v in table.items() if k.endswith("*") and folded.startswith(k[:-1])), None
        )
        if found:
            out.append(Spelled(term, *found))
    return out
