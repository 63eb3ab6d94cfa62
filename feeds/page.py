"""Page sources: a list page whose elements are the items, read with CSS or XPath selectors.

Official boards (ministries' press pages, KCNA, UN tables) publish no feed. A source of
``type: page`` names the element of one item and, inside it, the link, title, date and
summary; an item's identity is its canonical link. Selectors are read by parsel (lxml
underneath), dates by dateparser in English, Korean and Russian. The page is hostile input
like any feed: its size is capped by the fetcher, parsing by a time limit and an item cap,
and a selector that finds nothing is a ``SelectorError`` the poller records, not silence.

Selector syntax: CSS (``ul.board > li``), or XPath after ``xpath:``; ``@attr`` at the end
reads an attribute (``a@href``), otherwise the element's text, whitespace collapsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from common.errors import ParseError, SelectorError
from feeds.deadline import ParseTimeout, bounded_time
from feeds.normalize import RawEntry, canonical_url, normalize_entry
from feeds.text import decode_body
from feeds.types import FeedItem, ParsedFeed

_E = TypeVar("_E")
MAX_ITEMS = 1000  # as for feeds: the first 1,000 elements of the page
MAX_FIELD_CHARS = 20_000  # one field of one item; a hostile attribute goes no further
DATE_LANGUAGES = ("en", "ko", "ru")
_SPACE = re.compile(r"\s+")
_VISIBLE_TEXT = ".//text()[not(ancestor::script) and not(ancestor::style)]"
_ATTRIBUTE = re.compile(r"^(?P<path>.*?)@(?P<attr>[A-Za-z_:][\w:.-]*)$")


class PageSelect(BaseModel):
    """Where a source's items are: ``item`` in the document, the rest inside each item.
    Selectors for a page (``check_selectors``), JMESPath for a JSON API (feeds/jsonapi.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str = Field(min_length=1, max_length=500)
    link: str = Field(default="a@href", min_length=1, max_length=500)
    title: str = Field(default="a", min_length=1, max_length=500)
    date: str | None = Field(default=None, max_length=500)
    summary: str | None = Field(default=None, max_length=500)


def check_selectors(select: PageSelect) -> None:
    """Raise ValueError naming the first value that is not a CSS or XPath selector."""
    for value in (select.item, select.link, select.title, select.date, select.summary):
        if value is not None:
            _compiled(value)


def parse_page(
    body: str, select: PageSelect, *, url: str, now: datetime | None = None
) -> ParsedFeed:
    """The items of a list page; raise SelectorError when the item selector, or the link
    selector in every item, matches nothing."""
    from parsel import Selector

    try:
        page = Selector(text=body, base_url=url)
        elements = _apply(page, select.item, many=True)
    except ValueError as exc:  # lxml refused the document
        raise ParseError(f"page does not parse: {exc}") from None
    items, warning = collect_items(elements, select, lambda e: _item(e, select, url, now))
    title = _text(_apply(page, "title", many=False)) or url
    return ParsedFeed(title=title, items=items, warning=warning, total_items=len(items))


def collect_items(
    found: Sequence[_E], select: PageSelect, make: Callable[[_E], FeedItem | None]
) -> tuple[tuple[FeedItem, ...], str | None]:
    """The items of the elements ``item`` found, the first ``MAX_ITEMS``, one per link, and
    the warning when some were cut; SelectorError when ``item`` or ``link`` found nothing."""
    if not found:
        raise SelectorError(f"item selector matched nothing: {select.item}")
    warning = None
    if len(found) > MAX_ITEMS:
        warning = f"read the first {MAX_ITEMS:,} of {len(found):,} items"
        found = found[:MAX_ITEMS]
    items: dict[str, FeedItem] = {}
    for element in found:
        item = make(element)
        if item is not None and item.guid not in items:
            items[item.guid] = item
    if not items:
        raise SelectorError(f"link selector matched nothing in {len(found)} items: {select.link}")
    return tuple(items.values()), warning


def parse_page_body(
    body: bytes,
    select: PageSelect,
    *,
    url: str,
    content_type: str | None = None,
    time_limit: float = 5.0,
    now: datetime | None = None,
) -> ParsedFeed:
    """``parse_page`` on a fetched body, decoded as feeds are and within the same time limit
    (deep nesting and huge pages end as a ParseError, never a hang)."""
    if not body.strip():
        raise ParseError("empty document")
    try:
        with bounded_time(time_limit):
            text, _ = decode_body(body, content_type)
            return parse_page(text, select, url=url, now=now)
    except ParseTimeout:
        raise ParseError(f"parse took longer than {time_limit:g}s") from None
    except RecursionError:
        raise ParseError("document nested too deeply") from None


def _item(element: Any, select: PageSelect, url: str, now: datetime | None) -> FeedItem | None:
    href = _text(_apply(element, select.link, many=False))
    link = canonical_url(href, url) if href else ""
    if not link.lower().startswith(("http://", "https://")):
        return None  # javascript:, mailto:, a fragment: not an item we can fetch or show
    title = _text(_apply(element, select.title, many=False))
    summary = _text(_apply(element, select.summary, many=False)) if select.summary else ""
    published = parse_date(_text(_apply(element, select.date, many=False))) if select.date else None
    raw = RawEntry(
        id=link, title=title, link=link, summary=summary, summary_html=False, published=published
    )
    return normalize_entry(raw, base_url=url, now=now)


def parse_date(text: str, now: datetime | None = None) -> datetime | None:
    """A date as the page writes it (``2026.11.30``, ``30 ноября 2026``, ``2026년 11월 30일``,
    ``Nov 30, 2026 14:05``), as aware UTC; None when it is not one."""
    import dateparser

    text = text.strip()[:100]
    if not text:
        return None
    settings: Any = {
        "TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "PREFER_DATES_FROM": "past",
        "DATE_ORDER": "YMD" if re.match(r"^\d{4}", text) else "DMY",
    }
    if now is not None:
        settings["RELATIVE_BASE"] = now.replace(tzinfo=None)
    found = dateparser.parse(text, languages=list(DATE_LANGUAGES), settings=settings)
    return found.astimezone(UTC) if found else None


def _apply(node: Any, selector: str, many: bool) -> Any:
    """``many``: the matched elements; else the first match's text or attribute (or None)."""
    kind, path, attr = _compiled(selector)
    found = node.xpath(path) if kind == "xpath" else node.css(path)
    if many:
        return list(found)
    if not found:
        return None
    first = found[0]
    if attr is not None:
        return first.attrib.get(attr)
    if isinstance(first.root, str):  # an XPath that selects text() or an attribute
        return first.root
    return " ".join(first.xpath(_VISIBLE_TEXT).getall())


@lru_cache(maxsize=512)
def _compiled(selector: str) -> tuple[str, str, str | None]:
    """(css | xpath, the path, the attribute to read or None); ValueError when invalid."""
    from cssselect import SelectorError as CssError
    from cssselect import SelectorSyntaxError
    from lxml import etree
    from parsel.csstranslator import HTMLTranslator

    text = selector.strip()
    kind = "xpath" if text.startswith("xpath:") else "css"
    text = text.removeprefix("xpath:").strip()
    attr = None
    if kind == "css" and (m := _ATTRIBUTE.match(text)):
        text, attr = m.group("path").strip() or "*", m.group("attr")
    try:
        if kind == "xpath":
            etree.XPath(text)
        else:
            HTMLTranslator().css_to_xpath(text)
    except (etree.XPathSyntaxError, SelectorSyntaxError, CssError) as exc:
        raise ValueError(f"not a valid {kind.upper()} selector: {selector!r} ({exc})") from None
    return kind, text, attr


def _text(value: str | None) -> str:
    if not value:
        return ""
    return _SPACE.sub(" ", value[:MAX_FIELD_CHARS]).strip()
