"""Big but harmless documents: read in bounded work, and nothing lost without a word."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

import feeds.parse
from feeds.parse import MAX_ITEMS, parse_feed
from feeds.text import clean_text
from feeds.types import ParsedFeed

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MB = 1024 * 1024
KEYWORDS = "North Korea missile launch"
NESTED = "<div>" * 50_000 + KEYWORDS + "</div>" * 50_000


def parse(body: bytes) -> ParsedFeed:
    """Four times the production time limit, so a busy CI machine has room; unfixed, the
    100,000-item feed takes about ten times longer than that (feedparser reads them all)."""
    return parse_feed(body, now=NOW, time_limit=20.0)


def oldest_first_dates(count: int) -> list[datetime]:
    """One a minute up to NOW, oldest first: the newest item is the last in the document."""
    return [NOW - timedelta(minutes=count - i) for i in range(count)]


def rss(items: list[str]) -> bytes:
    channel = "<channel><title>Archive</title>" + "".join(items) + "</channel>"
    return f"<?xml version='1.0'?><rss version='2.0'>{channel}</rss>".encode()


# --- item cap -------------------------------------------------------------------------------


def test_a_100k_item_rss_feed_reads_the_newest_items_with_a_warning() -> None:
    count = 100_000
    body = rss(
        [
            f"<item><guid>{i}</guid><pubDate>{format_datetime(when)}</pubDate></item>"
            for i, when in enumerate(oldest_first_dates(count))
        ]
    )
    assert 5 * MB < len(body) < 10 * MB  # under the fetch cap
    feed = parse(body)
    assert len(feed.items) == MAX_ITEMS
    assert feed.warning == f"read the newest {MAX_ITEMS:,} of {count:,} items"
    assert [item.guid for item in feed.items] == [str(i) for i in range(count - MAX_ITEMS, count)]
    assert feed.items[-1].published_at == NOW - timedelta(minutes=1)  # the newest, read


def test_a_100k_item_json_feed_is_capped_the_same_way() -> None:
    count = 100_000
    items = [{"id": str(i), "title": f"t{i}"} for i in range(count)]
    for item, when in zip(items, oldest_first_dates(count), strict=True):
        item["date_published"] = when.isoformat()
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items}
    feed = parse(json.dumps(doc).encode())
    assert len(feed.items) == MAX_ITEMS
    assert feed.warning == f"read the newest {MAX_ITEMS:,} of {count:,} items"
    assert feed.items[-1].guid == str(count - 1)


@pytest.fixture
def cap_of_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds.parse, "MAX_ITEMS", 3)


@pytest.mark.usefixtures("cap_of_3")
def test_undated_items_are_read_in_document_order_and_the_cut_stays_well_formed() -> None:
    body = rss([f"<item><title>t{i}</title></item>" for i in range(5)]).replace(
        b"</channel>", b"<ttl>60</ttl></channel>"
    )
    feed = parse(body)
    assert [item.title for item in feed.items] == ["t0", "t1", "t2"]
    assert feed.warning == "read the newest 3 of 5 items"  # no bozo: still well-formed
    assert feed.ttl_seconds == 3600  # the tail after the last item is kept


@pytest.mark.usefixtures("cap_of_3")
def test_item_tags_in_cdata_and_comments_do_not_count() -> None:
    fake = "<![CDATA[</item><item>x</item>]]>"
    items = [
        f"<item><title>t0</title><description>{fake}</description></item>",
        "<!-- <item><title>no</title></item> -->",
        "<item><title>t1</title></item>",
        "<item><title>t2</title></item>",
    ]
    feed = parse(rss(items))
    assert [item.title for item in feed.items] == ["t0", "t1", "t2"]
    assert feed.warning is None


@pytest.mark.usefixtures("cap_of_3")
def test_atom_entries_are_ranked_by_date_whatever_their_order() -> None:
    dates = ["2026-02-03T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02-05T00:00:00Z"]
    dates += ["2026-02-02T00:00:00Z", "2026-02-04T00:00:00Z"]
    entries = "".join(
        f"<entry><id>e{i}</id><title>t{i}</title><updated>{d}</updated></entry>"
        for i, d in enumerate(dates)
    )
    body = f"<feed xmlns='http://www.w3.org/2005/Atom'><title>A</title>{entries}</feed>"
    feed = parse(body.encode())
    assert [item.guid for item in feed.items] == ["e0", "e2", "e4"]  # document order kept


# --- nested markup --------------------------------------------------------------------------


def test_keywords_behind_markup_nested_50k_deep_are_kept() -> None:
    item = f"<item><title>t</title><description><![CDATA[{NESTED}]]></description></item>"
    (parsed,) = parse(rss([item])).items
    assert parsed.summary == KEYWORDS


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("a" + "<b>" * 20 + "b" + "</b>" * 20, "ab"),  # inline tags glue no words apart
        ("a" + "<b> " * 20 + "b", "a b"),  # the spaces between them do
        ("a" + "<i>" * 10 + "<p>" + "<i>" * 10 + "b", "a b"),  # one block tag does too
        ("<!x " + "<b>" * 20 + "word", "word"),  # the first tag still ends the bogus comment
        ("<!-- " + "<b>" * 20 + " -->shown", "shown"),
        ("<b>" * 10 + "<script>" + "<b>" * 10 + "x</script>y", "y"),
        ("a<script>" + "<b>" * 20 + "never closed", "a"),
    ],
)
def test_long_runs_of_tags_read_as_the_parser_reads_them(markup: str, text: str) -> None:
    assert clean_text(markup, html=True, limit=1000) == text


def test_enormous_values_stay_bounded() -> None:
    plain = "word " * (2 * MB)  # 10 MB
    hidden = " " * (10 * MB) + KEYWORDS
    tracemalloc.start()
    try:
        capped = clean_text(plain, html=False, limit=1000)
        found = clean_text(hidden, html=False, limit=1000)
        found_in_html = clean_text("<p>" + hidden, html=True, limit=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(capped) <= 1000 and capped.endswith("word…")
    assert found == found_in_html == KEYWORDS
    assert peak < 80 * MB  # the 10 MB value, never many copies of it
