"""The Russian forms a watch-list's terms take, as ``watchfloor check --explain ID`` prints
them: every term marked with ``~`` (and, with ``russian_forms``, every Cyrillic term that
has other forms) and what it also matches, so an admin sees what a marker does before it
goes live. The forms come from the parser itself (``alerts.query.inflections``), not from
a second reading of the query. Plain text lines; no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alerts.morphology import russian_forms
from alerts.query import inflections
from alerts.watchlists import WatchList

NOT_INFLECTED = "none (the dictionary does not inflect it: matched as written)"


def explain_forms(watchlist: WatchList, aliases: Mapping[str, Sequence[str]]) -> list[str]:
    """Lines for one watch-list; its queries must compile (a loaded config's do)."""
    forms = russian_forms if watchlist.russian_forms else None
    option = " (russian_forms: every Cyrillic term)" if watchlist.russian_forms else ""
    lines = [f"{watchlist.id}{option}"]
    for field in ("query", "exclude"):
        text = getattr(watchlist, field)
        for inflection in inflections(text, aliases, forms) if text else ():
            lines.append(f"  {field}: {inflection.written}")
            lines.append(f"    forms: {', '.join(inflection.forms) or NOT_INFLECTED}")
    if len(lines) == 1:
        lines.append("  no term takes Russian forms (mark one with ~, e.g. ракета~)")
    return lines
