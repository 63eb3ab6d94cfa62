"""Property test: whatever bytes come in, parse_feed returns clean str fields or ParseError."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import ParseError
from feeds.parse import parse_feed
from feeds.types import ParsedFeed

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
FRAGMENTS = [
    "<?xml version='1.0' encoding='utf-8'?>",
    "<?xml version='1.0' encoding='windows-1251'?>",
    "<!DOCTYPE rss [",
    "<!ENTITY a 'x'>",
    '<!ENTITY b "&a;&a;&a;">',
    "<!ENTITY c SYSTEM 'file:///etc/passwd'>",
    "]>",
    "<rss version='2.0'>",
    "<channel>",
    "<item>",
    "<title>",
    "</title>",
    "<description>",
    "</description>",
    "<link>",
    "</link>",
    "<guid>",
    "</guid>",
    "<pubDate>",
    "Mon, 02 Jan 2006 15:04:05 GMT",
    "</pubDate>",
    "</item>",
    "</channel>",
    "</rss>",
    "<feed xmlns='http://www.w3.org/2005/Atom'>",
    "<entry>",
    "</entry>",
    "<title type='html'>",
    "<![CDATA[",
    "]]>",
    "&amp;",
    "&lt;b&gt;",
    "&#0;",
    "&#x85;",
    "&a;",
    "&b;",
    "&c;",
    "<!--",
    "-->",
    "<b>",
    "<script>",
    "\x00",
    "\x1b",
    "\u0085",
    "\u202e",
    "\ud7ff",
    "https://example.org/a?utm_source=x#f",
    "javascript:alert(1)",
    '{"version": "https://jsonfeed.org/version/1.1", "items": [',
    '{"title": "\\u0000x", "id": 1}',
    "]}",
]

documents = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=60).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
    ),
    st.text(max_size=300).map(
        lambda t: (
            "<rss version='2.0'><channel><item><title>"
            + t
            + "</title><description>"
            + t
            + "</description><link>"
            + t
            + "</link></item></channel></rss>"
        ).encode("utf-8", "surrogatepass")
    ),
)


def _check(feed: ParsedFeed) -> None:
    assert type(feed.title) is str and not CONTROL.search(feed.title)
    for item in feed.items:
        for value in (item.guid, item.title, item.url, item.summary, item.fingerprint, item.author):
            assert type(value) is str
            value.encode("utf-8")  # storable: no lone surrogates
        assert all(type(tag) is str for tag in item.tags)
        assert not CONTROL.search(item.title)
        assert len(item.title) <= 1000 and len(item.fingerprint) == 64


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from([None, "text/xml", "application/rss+xml; charset=euc-kr"]))
def test_parse_never_crashes_and_always_yields_clean_text(
    body: bytes, content_type: str | None
) -> None:
    try:
        feed = parse_feed(body, url="https://feeds.example.org/rss", content_type=content_type)
    except ParseError as exc:
        assert type(exc.message) is str and "\n" not in exc.message
        return
    _check(feed)
