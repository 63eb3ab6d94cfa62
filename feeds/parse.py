"""Bytes in, clean typed items out. No I/O: feedparser only ever sees ``io.BytesIO``.

Order of work, and why:
1. ``decode_body`` (feeds/text.py) picks the encoding and we hand feedparser UTF-8 with
   ``charset=utf-8``: feedparser alone follows RFC 3023 to the letter, so a server's wrong
   ``charset=iso-8859-1`` would turn a windows-1251 or EUC-KR feed into mojibake.
2. JSON Feed is read here: feedparser 6.0 has no JSON support.
3. ``defuse_prolog`` removes every DOCTYPE before parsing. Its entities are dropped, except
   tiny ones (one character reference, or up to 10 plain characters) that we expand
   ourselves. expat 2.5 stops a billion-laughs, but not a quadratic blow-up (one 100 kB
   entity used 20,000 times took 45 s and 5.8 GB when measured), and feedparser's loose
   fallback parser expands "safe" entities with no limit at all. External entities and DTDs
   are never fetched: expat's external entity loading is off and the declarations are gone.
4. Items seen in an earlier poll are skipped before feedparser sees them, and of the rest at
   most ``MAX_ITEMS`` are read, the newest by date, with a warning saying how many there
   were. Skipping comes first so that the cap spends its budget on unseen items: a feed
   of 5,000 items of which 2 are new reads those 2. An XML document is cut by a linear
   scan that finds each outermost ``<item>``/``<entry>`` (CDATA, comments and processing
   instructions skipped); only the items not read are cut out, so the cut document is as
   well-formed as the original. Each item's digest is of its exact text: an item edited
   in any way is read again, and skipping can never hide anything new. Skipping needs
   every item delimited exactly, and feedparser to agree (one entry per item read);
   otherwise the whole document is read and no digests are returned, so the caller
   skips nothing next time.
5. feedparser runs with ``sanitize_html`` and ``resolve_relative_uris`` off: we strip all
   HTML ourselves and resolve only the item link (bench/corpus.py --compare measures it).
6. A time limit: on the main thread (where Celery's prefork pool runs tasks) a SIGALRM
   interval timer interrupts a parse that runs too long. No timer can safely interrupt
   Python code on other threads, so there only the pre-scan and the fetch cap bound the work.
"""

from __future__ import annotations

import calendar
import hashlib
import heapq
import io
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime, parsedate_tz
from typing import Any, TypeVar
from xml.sax import SAXParseException

import feedparser

from common.errors import ParseError
from feeds.deadline import ParseTimeout, bounded_time
from feeds.normalize import RawEntry, normalize_entry
from feeds.text import clean_text, collapse, decode_body, truncate
from feeds.types import ParsedFeed

MAX_TTL = 7 * 24 * 3600
# feedparser and normalization cost about 0.5 ms an item (measured: 1,000 small items in
# 0.5 s, 10,000 in 5.7 s, over the 5 s limit). Real feeds list 10 to a few hundred items,
# and a feed polled every few minutes adds far fewer between polls, so the newest 1,000
# miss nothing new, while leaving most of the time limit to feeds with big items.
MAX_ITEMS = 1_000
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_JSON_FEED = "https://jsonfeed.org/version/"
_PROLOG_TOKEN = re.compile(r"\s+|<\?|<!--|<!DOCTYPE", re.IGNORECASE)
_DTD_TOKEN = re.compile(r"[\"'\[\]>]|<!--")
_ENTITY_DECL = re.compile(r"<!ENTITY", re.IGNORECASE)
_SAFE_ENTITY = re.compile(
    r"<!ENTITY\s+([A-Za-z_][\w.-]{0,40})\s+([\"'])"
    r"(&#[0-9]{1,7};|&#x[0-9A-Fa-f]{1,6};|[^&<%\"']{1,10})\2\s*>"
)
_PREDEFINED = frozenset({"amp", "lt", "gt", "quot", "apos"})
_FIRST_ELEMENT = re.compile(r"<\w")  # where feedparser's own DOCTYPE handling stops looking
_LATE_DECLARATION = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# An item tag, or a CDATA section, comment or PI to step over (an open one runs to the end).
# Prefixed tags (<atom:entry>) cost a third more to look for, so only when the text has one.
_STEP_OVER = r"!\[CDATA\[(?:.*?\]\]>|.*)|!--(?:.*?-->|.*)|\?(?:.*?\?>|.*)"
_ITEM_TOKEN = re.compile(rf"<(?:(/?)(?:item|entry)(?=[\s/>])[^>]*+|{_STEP_OVER})", re.DOTALL)
_PREFIXED_ITEM_TOKEN = re.compile(
    rf"<(?:(/?)(?:[A-Za-z_][\w.-]*+:)?(?:item|entry)(?=[\s/>])[^>]*+|{_STEP_OVER})", re.DOTALL
)
_STEP_OVER_ENDS = (("<![CDATA[", "]]>"), ("<!--", "-->"), ("<?", "?>"))
# Item tags the scan does not count but feedparser does (it folds case: <ITEM>, <Entry>), and
# the prefixes of item tags with the namespaces they are bound to: an item of a namespace
# feedparser ignores is counted by the scan only. Either can make the two disagree item by
# item while their counts agree, so such a document gets no digests (and no skip).
_CASED_ITEM_TAG = re.compile(
    r"</?(?:[A-Za-z_][\w.-]*:)?(?!(?:item|entry)[\s/>])(?i:item|entry)(?=[\s/>])"
)
_PREFIXED_ITEM_TAG = re.compile(r"</?([A-Za-z_][\w.-]*):(?:item|entry)(?=[\s/>])")
_PREFIX_DECLARATION = re.compile(r"xmlns:([A-Za-z_][\w.-]*)\s*=\s*([\"'])(.*?)\2", re.DOTALL)
# the namespaces whose <item>/<entry> feedparser 6 reads as items: those its parser maps to
# no prefix, lowercased as it compares them (tests/feeds/test_parse_skip.py checks this
# against the installed feedparser)
_FEED_NAMESPACES = frozenset(
    {
        "",
        "http://backend.userland.com/rss",
        "http://blogs.law.harvard.edu/tech/rss",
        "http://purl.org/rss/1.0/",
        "http://my.netscape.com/rdf/simple/0.9/",
        "http://example.com/newformat#",
        "http://example.com/necho",
        "http://purl.org/echo/",
        "uri/of/echo/namespace#",
        "http://purl.org/pie/",
        "http://purl.org/atom/ns#",
        "http://www.w3.org/2005/atom",
        "http://purl.org/rss/1.0/modules/rss091#",
    }
)
_ITEM_DATE = re.compile(
    r"<(?:[A-Za-z_][\w.-]*:)?(?:pubDate|published|updated|date|issued|modified)\s*>"
    r"([^<]{1,100})<"
)
_UNDATED = float("-inf")
_T = TypeVar("_T")


def parse_feed(
    body: bytes,
    *,
    url: str = "",
    content_type: str | None = None,
    time_limit: float = 5.0,
    now: datetime | None = None,
    skip: Collection[str] = frozenset(),
) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0, Atom or JSON Feed; raise ParseError when there is no feed.

    ``skip``: the ``digests`` of an earlier parse of this feed; those items are not read.
    """
    if not body.strip():
        raise ParseError("empty document")
    seen = frozenset(skip)
    try:
        with bounded_time(time_limit):
            text, _ = decode_body(body, content_type)
            if text.lstrip().startswith(("{", "[")):
                return _json_feed(text, url, now, seen)
            return _xml_feed(text, url, now, seen)
    except ParseTimeout:
        raise ParseError(f"parse took longer than {time_limit:g}s") from None
    except RecursionError:
        raise ParseError("document nested too deeply") from None
    except ParseError:
        raise
    except Exception as exc:  # a hostile document must not sink the poll batch it came in
        raise ParseError(f"unreadable: {type(exc).__name__}: {exc}"[:300]) from exc


def _xml_feed(text: str, url: str, now: datetime | None, seen: frozenset[str]) -> ParsedFeed:
    text, defuse_note = defuse_prolog(text)
    cut = _cut_xml_items(text, seen)
    result = _feedparser(cut.text, url)
    entries = result.get("entries") or []
    if cut.skipped and len(entries) != cut.read:
        # feedparser and the scan disagree on what an item is: read it all, as if unseen
        cut = _cut_xml_items(text, frozenset())
        result = _feedparser(cut.text, url)
        entries = result.get("entries") or []
    if not result.get("version") and not entries and not cut.skipped:
        raise ParseError(_not_a_feed(cut.text, result))
    feed = result.get("feed", {})
    items = tuple(normalize_entry(_entry(e), base_url=url, now=now) for e in entries)
    notes = [defuse_note, cut.note, _bozo(result) if result.get("bozo") else None]
    return ParsedFeed(
        title=clean_text(feed.get("title"), html=_is_html(feed.get("title_detail")), limit=1000),
        items=items,
        ttl_seconds=_ttl(feed.get("ttl")),
        warning="; ".join(n for n in notes if n) or None,
        hubs=_links(feed.get("links"), "hub"),
        self_url=next(iter(_links(feed.get("links"), "self")), None),
        digests=cut.digests if len(entries) == cut.read else (),
        total_items=len(items) + cut.skipped + cut.capped,
        capped=cut.capped_digests if len(entries) == cut.read else (),
    )


def _feedparser(text: str, url: str) -> Any:
    return feedparser.parse(
        io.BytesIO(text.encode("utf-8", "surrogatepass")),
        response_headers={
            "content-type": "application/xml; charset=utf-8",
            "content-location": url,
        },
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def _links(links: Any, rel: str) -> tuple[str, ...]:
    """The feed-level ``<link rel=...>`` targets (Atom, or RSS with atom:link) of one rel."""
    if not isinstance(links, list):
        return ()
    return tuple(
        _str(link.get("href"))
        for link in links[:50]
        if isinstance(link, dict) and link.get("rel") == rel and link.get("href")
    )


def _not_a_feed(text: str, result: Mapping[str, Any]) -> str:
    head = text.lstrip()[:512].lower()
    if head.startswith("<!doctype html") or "<html" in head:
        return "not a feed: an HTML page"
    if result.get("bozo"):
        return f"not a feed: {_bozo(result)}"
    return "not a feed: no RSS, Atom or JSON Feed found"


def _bozo(result: Mapping[str, Any]) -> str:
    exc = result.get("bozo_exception")
    if isinstance(exc, SAXParseException):
        message = f"{exc.getMessage()} at line {exc.getLineNumber()}"
    else:
        message = str(exc) or type(exc).__name__
    return truncate(collapse(message), 160)


def _entry(entry: dict[str, Any]) -> RawEntry:
    """One feedparser entry (a FeedParserDict, a dict subclass) as a RawEntry."""
    summary, summary_html = entry.get("summary"), _is_html(entry.get("summary_detail"))
    if not summary and entry.get("content"):
        content = entry["content"][0]
        summary, summary_html = content.get("value"), _is_html(content)
    return RawEntry(
        id=_str(entry.get("id")),
        title=_str(entry.get("title")),
        title_html=_is_html(entry.get("title_detail")),
        link=_str(entry.get("link")),
        summary=_str(summary),
        summary_html=summary_html,
        # dict.get: feedparser's own get() warns when it maps updated_parsed to published_parsed
        published=_struct_utc(
            dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
        ),
        author=_str(entry.get("author")),
        tags=tuple(_str(t.get("term")) for t in entry.get("tags") or () if isinstance(t, dict)),
    )


def _is_html(detail: Any) -> bool:
    return isinstance(detail, dict) and detail.get("type") in _HTML_TYPES


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _struct_utc(value: Any) -> datetime | None:
    """feedparser's ``*_parsed`` (a UTC struct_time) as an aware datetime."""
    try:
        year, month, day, hour, minute, second = value[:6]
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def _ttl(value: Any) -> int | None:
    """RSS ``<ttl>`` is in minutes."""
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    return min(minutes * 60, MAX_TTL) if minutes > 0 else None


# --- DOCTYPE and entities -----------------------------------------------------------------


def defuse_prolog(text: str) -> tuple[str, str | None]:
    """Remove every DOCTYPE from the prolog; expand only tiny entities; note what was dropped."""
    text, pos = text.lstrip(), 0
    kept: list[str] = []
    entities: dict[str, str] = {}
    dropped = 0
    while match := _PROLOG_TOKEN.match(text, pos):
        token = match.group()
        if token.upper() == "<!DOCTYPE":
            end = _doctype_end(text, match.end())
            found, declared = _entities(text[pos:end])
            entities.update(found)
            dropped += declared - len(found)
        else:
            closer = {"<?": "?>", "<!--": "-->"}.get(token)
            end = _after(text, closer, pos) if closer else match.end()
            kept.append(text[pos:end])
        pos = end
    rest = text[pos:]
    head = rest[: first.start()] if (first := _FIRST_ELEMENT.search(rest)) else rest
    if _LATE_DECLARATION.search(head):
        raise ParseError("not a feed: DOCTYPE or ENTITY outside the prolog")
    if entities:
        pattern = "&(" + "|".join(map(re.escape, entities)) + ");"
        rest = re.sub(pattern, lambda m: entities[m.group(1)], rest)
    note = f"ignored {dropped} entity declaration(s)" if dropped else None
    return "".join(kept) + rest, note


def _after(text: str, end_token: str, pos: int) -> int:
    found = text.find(end_token, pos + 2)
    if found < 0:
        raise ParseError(f"not a feed: unterminated markup (no {end_token!r}) before the root")
    return found + len(end_token)


def _doctype_end(text: str, pos: int) -> int:
    """Index just past the DOCTYPE's closing '>' (quotes, comments and [subset] skipped)."""
    depth = 0
    while match := _DTD_TOKEN.search(text, pos):
        token, pos = match.group(), match.end()
        if token in ("'", '"'):
            pos = _after(text, token, match.start() - 1)
        elif token == "<!--":
            pos = _after(text, "-->", match.start())
        elif token in "[]":
            depth += 1 if token == "[" else -1
        elif depth <= 0:
            return pos
    raise ParseError("not a feed: unterminated DOCTYPE")


def _entities(doctype: str) -> tuple[dict[str, str], int]:
    """(tiny entities we can expand safely, number of entity declarations in all)."""
    safe = {
        name: value
        for name, _, value in _SAFE_ENTITY.findall(doctype)[:100]
        if name not in _PREDEFINED
    }
    return safe, len(_ENTITY_DECL.findall(doctype))


# --- items: digests, skip, cap -------------------------------------------------------------


def item_digest(text: str) -> str:
    """A digest of one item's text; blake2b, never ``hash()``: callers keep it between polls,
    across processes and releases."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _newest(
    items: Sequence[_T], date_of: Callable[[_T], float], what: str = "items"
) -> tuple[Sequence[_T], str | None]:
    """At most ``MAX_ITEMS`` items, the newest, in document order; and a note if any were cut.

    Undated items rank as oldest, and equal dates go to the earlier item, so a feed with no
    dates keeps its first ``MAX_ITEMS`` (feeds list newest first by convention), while an
    oldest-first feed still has its new items read.
    """
    if len(items) <= MAX_ITEMS:
        return items, None
    ranked = heapq.nlargest(MAX_ITEMS, range(len(items)), key=lambda i: (date_of(items[i]), -i))
    note = f"read the newest {MAX_ITEMS:,} of {len(items):,} {what}"
    return [items[i] for i in sorted(ranked)], note


@dataclass(frozen=True, slots=True)
class _XmlCut:
    """The document feedparser reads, and what the cut took out of it."""

    text: str
    digests: tuple[str, ...]  # of every item, in document order; () unless delimited exactly
    read: int  # items left in ``text``
    skipped: int  # items cut out as seen before
    capped: int  # unseen items cut out by the cap
    note: str | None  # the cap's warning
    capped_digests: tuple[str, ...] = ()  # theirs, when there are digests


def _cut_xml_items(text: str, seen: frozenset[str]) -> _XmlCut:
    """The document without the items seen before and those over the cap, all else kept."""
    spans, exact = _item_spans(text)
    exact = exact and _items_agree(text)
    digests = tuple(item_digest(text[start:end]) for start, end in spans) if exact else ()
    unseen = _unseen(digests, seen, len(spans))
    what = "items" if len(unseen) == len(spans) else "unseen items"
    kept, note = _newest(unseen, lambda i: _timestamp(_xml_date(text, spans[i])), what)
    if len(kept) < len(spans):
        text = _without(text, spans, set(kept))
    return _XmlCut(
        text,
        digests,
        len(kept),
        len(spans) - len(unseen),
        len(unseen) - len(kept),
        note,
        _capped(digests, unseen, kept),
    )


def _capped(digests: Sequence[str], unseen: Sequence[int], kept: Sequence[int]) -> tuple[str, ...]:
    """The digests of the unseen items the cap left unread, but for one that an item read
    shares (identical text): that one is read, and left unseen it would be cut again at
    every poll, which would then never keep its validators."""
    if not digests:
        return ()
    read = {digests[i] for i in kept}
    return tuple(
        dict.fromkeys(digests[i] for i in sorted(set(unseen) - set(kept)) if digests[i] not in read)
    )


def _items_agree(text: str) -> bool:
    """Whether feedparser reads as items exactly the tags the scan takes for items: no item
    tag in another case, and every prefix of an item tag bound only to a feed namespace."""
    if _CASED_ITEM_TAG.search(text):
        return False
    prefixes = {m.group(1) for m in _PREFIXED_ITEM_TAG.finditer(text)} if ":" in text else set()
    if not prefixes:
        return True
    bound: dict[str, set[bool]] = {}
    for m in _PREFIX_DECLARATION.finditer(text):
        bound.setdefault(m.group(1), set()).add(_feed_namespace(m.group(3)))
    return all(bound.get(p) == {True} for p in prefixes)


def _feed_namespace(uri: str) -> bool:
    """As feedparser matches namespaces: without case, any backend.userland.com/rss* alike."""
    lowered = uri.strip().lower()
    return lowered in _FEED_NAMESPACES or "backend.userland.com/rss" in lowered


def _unseen(digests: Sequence[str], seen: frozenset[str], count: int) -> list[int]:
    """Indices of the items not seen before: all ``count`` of them when there are no digests."""
    if not seen or not digests:
        return list(range(count))
    return [i for i, digest in enumerate(digests) if digest not in seen]


def _without(text: str, spans: Sequence[tuple[int, int]], kept: Collection[int]) -> str:
    """The text with every span not ``kept`` cut out; what lies between items stays.

    A cut item leaves its line breaks, so a parser's "at line N" still points into the
    document as fetched.
    """
    pieces: list[str] = []
    pos = 0
    for i, (start, end) in enumerate(spans):
        if i not in kept:
            pieces += (text[pos:start], "\n" * text.count("\n", start, end))
            pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _item_spans(text: str) -> tuple[list[tuple[int, int]], bool]:
    """(start, end) of each outermost ``<item>``/``<entry>``, CDATA, comments and PIs skipped;
    and whether each span is exactly one item (no nesting, stray end tag or open construct).

    A construct left open ends the scan: no parser reads an item after it either, so the
    scan may find fewer items than feedparser would, but never cuts one in two.
    """
    prefixed = ":item" in text or ":entry" in text
    spans: list[tuple[int, int]] = []
    depth = start = 0
    exact = True
    for match in (_PREFIXED_ITEM_TOKEN if prefixed else _ITEM_TOKEN).finditer(text):
        slash, end = match.group(1), match.end() + 1  # + 1: the tag's ">"
        if slash is None:  # CDATA, comment or PI
            exact = exact and (end <= len(text) or _closed(match.group()))
            continue
        exact = exact and end <= len(text)  # else the tag has no ">"
        if slash:  # </item>; a stray one outside any item is ignored
            if depth == 1:
                spans.append((start, end))
            exact = exact and depth == 1
            depth = max(depth - 1, 0)
        elif text[end - 2] != "/":  # <item ...>
            start = match.start() if depth == 0 else start
            exact = exact and depth == 0 and _after_markup(text, spans, start)
            depth += 1
        elif depth == 0:  # <item/>
            exact = exact and _after_markup(text, spans, match.start())
            spans.append((match.start(), end))
        else:  # <item/> inside an item: feedparser ends the outer one there
            exact = False
    return spans, exact and depth == 0


def _after_markup(text: str, spans: list[tuple[int, int]], pos: int) -> bool:
    """Whether an item tag at ``pos`` follows markup (only whitespace after the last ``>``),
    not text or an attribute value (``<image url='a<item/>b'/>``, not well-formed)."""
    gap = text[spans[-1][1] if spans else 0 : pos].rstrip()  # each gap is copied once
    return not gap or gap[-1] == ">"


def _closed(token: str) -> bool:
    """Whether a CDATA section, comment or PI that reaches the end of the text is closed."""
    return any(
        token.startswith(opener) and token.endswith(closer) and len(token) >= len(opener + closer)
        for opener, closer in _STEP_OVER_ENDS
    )


def _xml_date(text: str, span: tuple[int, int]) -> str | None:
    """The first date element in an item (pubDate, Atom published/updated, dc:date...)."""
    match = _ITEM_DATE.search(text, *span)
    return match.group(1) if match else None


def _timestamp(value: Any) -> float:
    """Seconds since the epoch of an RSS, Atom or JSON Feed date, to rank items by.

    Cheaper than ``_iso_date`` on RFC 822 dates (no exception raised first): this runs once
    per item of a feed of 100,000.
    """
    if not isinstance(value, str):
        return _UNDATED
    if value.strip()[:4].isdigit():  # ISO 8601, as Atom and JSON Feed write dates
        when = _iso_date(value)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() if when else _UNDATED
    parsed = parsedate_tz(value)
    return calendar.timegm(parsed[:9]) - (parsed[9] or 0) if parsed else _UNDATED


# --- JSON Feed -----------------------------------------------------------------------------


def _json_feed(text: str, url: str, now: datetime | None, seen: frozenset[str]) -> ParsedFeed:
    try:
        doc = json.loads(text)
    except ValueError:
        raise ParseError("not a feed: invalid JSON") from None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not _str(doc.get("version")).startswith(_JSON_FEED):
        raise ParseError("not a feed: JSON but not a JSON Feed")
    base = _str(doc.get("feed_url")) or url
    found = [i for i in items if isinstance(i, dict)]
    digests = _json_digests(found)
    unseen_at = _unseen(digests, seen, len(found))
    what = "items" if len(unseen_at) == len(found) else "unseen items"
    kept_at, note = _newest(unseen_at, lambda i: _json_timestamp(found[i]), what)
    entries = (_json_entry(found[i]) for i in kept_at)
    return ParsedFeed(
        title=clean_text(_str(doc.get("title")), html=False, limit=1000),
        items=tuple(normalize_entry(e, base_url=base, now=now) for e in entries),
        warning=note,
        hubs=tuple(
            _str(h.get("url"))
            for h in (doc.get("hubs") if isinstance(doc.get("hubs"), list) else [])[:50]
            if isinstance(h, dict) and str(h.get("type", "")).lower() == "websub" and h.get("url")
        ),
        self_url=_str(doc.get("feed_url")) or None,
        digests=digests,
        total_items=len(found),
        capped=_capped(digests, unseen_at, kept_at),
    )


def _json_digests(items: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Each item's digest, of its canonical JSON (keys sorted, no spaces); () if one fails."""
    try:
        return tuple(
            item_digest(json.dumps(i, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
            for i in items
        )
    except (RecursionError, ValueError):  # deeper than the encoder goes; the items still count
        return ()


def _json_timestamp(item: Mapping[str, Any]) -> float:
    return _timestamp(item.get("date_published") or item.get("date_modified"))


def _json_entry(item: Mapping[str, Any]) -> RawEntry:
    summary, html = _str(item.get("summary")), False
    if not summary:
        summary, html = _str(item.get("content_html")), True
    if not summary:
        summary, html = _str(item.get("content_text")), False
    authors = item.get("authors") or [item.get("author")]
    author = authors[0] if isinstance(authors, list) and authors else None
    tags = item.get("tags")
    return RawEntry(
        id=_str(item.get("id")),
        title=_str(item.get("title")),
        link=_str(item.get("url")) or _str(item.get("external_url")),
        summary=summary,
        summary_html=html,
        published=_iso_date(item.get("date_published") or item.get("date_modified")),
        author=_str(author.get("name")) if isinstance(author, dict) else "",
        tags=tuple(_str(t) for t in tags) if isinstance(tags, list) else (),
    )


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # a zone of +99999999999999
        return None
