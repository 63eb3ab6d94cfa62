"""JSON API sources (``type: json``): an official API's list, read by JMESPath.

The same ``select`` keys as a page source, each a JMESPath expression: ``item`` finds the
list of items in the document, and ``link``, ``title``, ``date`` and ``summary`` read each
item. ``link`` and ``title`` have no defaults here: an API names its own fields. A document
whose ``item`` expression finds no list is a ``SelectorError``, as for a page.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from common.errors import ParseError
from feeds.normalize import RawEntry, canonical_url, normalize_entry
from feeds.page import MAX_FIELD_CHARS, PageSelect, collect_items, parse_date
from feeds.text import decode_body
from feeds.types import FeedItem, ParsedFeed


def check_expressions(select: PageSelect) -> None:
    """Raise ValueError naming the first ``select`` value that is not JMESPath."""
    for value in (select.item, select.link, select.title, select.date, select.summary):
        if value is not None:
            _compiled(value)


def parse_json_api(
    body: bytes, select: PageSelect, *, url: str, content_type: str | None = None,
    now: datetime | None = None,
) -> ParsedFeed:  # fmt: skip
    """The items of a JSON document; raise ParseError when it is not JSON, SelectorError
    when ``item`` finds no list or no item has a link."""
    text, _ = decode_body(body, content_type)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not a JSON document: {str(exc)[:200]}") from None
    found = _compiled(select.item).search(data)
    entries: list[Any] = found if isinstance(found, list) else []
    items, warning = collect_items(entries, select, lambda e: _item(e, select, url, now))
    return ParsedFeed(title=url, items=items, warning=warning, total_items=len(items))


def _item(entry: Any, select: PageSelect, url: str, now: datetime | None) -> FeedItem | None:
    link = canonical_url(_field(entry, select.link), url)
    if not link.lower().startswith(("http://", "https://")):
        return None
    date = parse_date(_field(entry, select.date)) if select.date else None
    raw = RawEntry(
        id=link,
        title=_field(entry, select.title),
        link=link,
        summary=_field(entry, select.summary) if select.summary else "",
        summary_html=True,  # APIs often carry HTML in text fields: it is stripped
        published=date,
    )
    return normalize_entry(raw, base_url=url, now=now)


def _field(entry: Any, expression: str | None) -> str:
    if expression is None:
        return ""
    value = _compiled(expression).search(entry)
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)[:MAX_FIELD_CHARS]


@lru_cache(maxsize=512)
def _compiled(expression: str) -> ParsedResult:
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(f"not a valid JMESPath expression: {expression!r} ({exc})") from None
