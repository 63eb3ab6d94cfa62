"""What an alias group stands for, as ``watchfloor check --explain @NAME`` prints it: its
members as written, the other spellings each matches (alerts/spelling.py), the forms each
takes in watch-lists with ``russian_forms`` or that mark it (``@name~``), and the
watch-lists that use it. Plain text lines; no I/O."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

from alerts.morphology import is_cyrillic, russian_forms
from alerts.spelling import spellings
from alerts.watchlists import WatchList


def uses(watchlist: WatchList, name: str, marked: bool = False) -> bool:
    """Whether a query or exclude of ``watchlist`` names ``@name`` (with ``marked``: as
    ``@name~``, its Cyrillic members in their Russian forms)."""
    tail = "~" if marked else ""
    pattern = re.compile(rf"@{re.escape(name)}{tail}(?![\w-])", re.IGNORECASE)
    return any(pattern.search(text or "") for text in (watchlist.query, watchlist.exclude))


def explain_alias(
    name: str, aliases: Mapping[str, Sequence[str]], watchlists: Sequence[WatchList]
) -> list[str]:
    """Lines that explain ``@name``; a LookupError (with a suggestion) when there is none."""
    key = name.lstrip("@").lower()
    known = {k.lower(): v for k, v in aliases.items()}
    if key not in known:
        close = difflib.get_close_matches(key, list(known), n=1)
        hint = f" (did you mean @{close[0]}?)" if close else ""
        raise LookupError(f"no alias @{key}{hint}")
    users = [w for w in watchlists if uses(w, key)]
    with_forms = any(w.russian_forms or uses(w, key, marked=True) for w in users)
    lines = [f"@{key}: {len(known[key])} members"]
    for member in known[key]:
        lines.append(f"  {member}")
        if spelled := spellings(member):
            lines.append(f"    spellings: {', '.join(spelled)}")
        if with_forms and is_cyrillic(member):
            forms = russian_forms(member)[1:]
            if forms:
                lines.append(f"    russian_forms: {', '.join(forms)}")
    names = [f"{w.id}{_how(w, key)}" for w in users]
    lines.append(f"  used by: {', '.join(names) if names else 'no watch-list'}")
    return lines


def _how(watchlist: WatchList, name: str) -> str:
    """How a watch-list takes the alias's Russian forms, if it does."""
    if watchlist.russian_forms:
        return " (russian_forms)"
    return f" (@{name}~)" if uses(watchlist, name, marked=True) else ""
