"""Normalization: clean text, canonical URLs, UTC dates, GUIDs and fingerprints."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from feeds.normalize import (
    RawEntry,
    canonical_url,
    content_hash,
    fingerprint,
    make_guid,
    normalize_entry,
    utc_datetime,
)
from feeds.text import clean_text, collapse, decode_body, strip_html, truncate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Missile test</p><p>near the coast</p>", "Missile test near the coast"),
        ("AT&amp;T &lt;b&gt; &#8217;quoted&#x2019; &nbsp;x", "AT&T <b> ’quoted’ x"),
        ("a<br>b<br/>c<li>d</li>", "a b c d"),
        ("<script>alert(1)</script>shown<style>p{}</style>", "shown"),
        ("<b>bold</b>face", "boldface"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
        ("<unclosed attr='x", ""),
    ],
)
def test_html_is_stripped_with_a_parser_and_entities_decoded(markup: str, text: str) -> None:
    assert clean_text(markup, html=True, limit=1000) == text


def test_plain_text_is_not_treated_as_html() -> None:
    assert clean_text("x <b> &amp; y", html=False, limit=100) == "x <b> &amp; y"


def test_control_and_bidi_characters_are_removed_and_whitespace_collapsed() -> None:
    raw = "A\x00B\x07\tC\r\n\x0bD\x1fE\x85F\x9bG\u202eH\u2066I\ufeffJ\ud800K\u00a0L\u2028M"
    assert collapse(raw) == "AB C D E FGHIJK L M"


def test_entities_that_decode_to_control_characters_are_removed() -> None:
    assert clean_text("a&#1;b&#x7f;c&#0;d", html=True, limit=100).isprintable()


def test_truncate_cuts_at_a_word_with_an_ellipsis() -> None:
    text = "word " * 300
    cut = truncate(text.strip(), 1000)
    assert len(cut) <= 1000 and cut.endswith("word…")
    assert truncate("short", 10) == "short"
    assert truncate("x" * 50, 10) == "x" * 9 + "…"


def test_strip_html_leaves_plain_text_alone() -> None:
    assert strip_html("no markup at all") == "no markup at all"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://News.Example.ORG:80/a/b?x=1#frag", "http://news.example.org/a/b?x=1"),
        ("https://example.org:443", "https://example.org/"),
        ("https://example.org:8443/p", "https://example.org:8443/p"),
        (
            "https://example.org/p?utm_source=x&id=7&UTM_Medium=y&fbclid=z&gclid=1&b=2",
            "https://example.org/p?id=7&b=2",
        ),
        ("https://example.org/p?mc_cid=1&mc_eid=2&ocid=3&cmpid=4", "https://example.org/p"),
        ("https://user:pw@example.org/p", "https://example.org/p"),
        ("  https://example.org/a b \n", "https://example.org/a%20b"),
        ("https://[2001:DB8::1]:8080/x", "https://[2001:db8::1]:8080/x"),
        ("https://example.org./x", "https://example.org/x"),
        ("javascript:alert(1)", ""),
        ("mailto:a@example.org", ""),
        ("ftp://example.org/f", ""),
        ("http://[::1", ""),
        ("http://example.org:99999/", ""),
        ("", ""),
        ("https://example.org/" + "x" * 3000, ""),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_relative_links_resolve_against_the_feed_url() -> None:
    assert (
        canonical_url("/story/1", "https://example.org/feeds/rss") == "https://example.org/story/1"
    )
    assert (
        canonical_url("//cdn.example.org/x", "https://example.org/") == "https://cdn.example.org/x"
    )
    assert canonical_url("story/2", "") == ""


def test_dates_are_utc_and_far_future_ones_are_dropped() -> None:
    seoul = timezone(timedelta(hours=9))
    assert utc_datetime(datetime(2026, 3, 1, 21, 0, tzinfo=seoul), NOW) == NOW
    assert utc_datetime(datetime(2026, 3, 1, 12, 0), NOW) == NOW  # naive means UTC
    assert utc_datetime(NOW + timedelta(hours=23), NOW) == NOW + timedelta(hours=23)
    assert utc_datetime(NOW + timedelta(days=2), NOW) is None
    assert utc_datetime(None, NOW) is None


def test_guid_falls_back_to_link_then_to_a_content_hash() -> None:
    assert make_guid(" urn:x:1 ", "https://e.org/1", "t", "s") == "urn:x:1"
    assert make_guid("", "https://e.org/1", "t", "s") == "https://e.org/1"
    fallback = make_guid("", "", "t", "s")
    assert fallback == "sha256:" + hashlib.sha256(b"t\ns").hexdigest()
    assert make_guid("x" * 600, "", "", "").startswith("sha256:")


def test_fingerprint_ignores_case_and_whitespace_only() -> None:
    assert fingerprint("Missile  Launch", "Over the\nsea") == fingerprint(
        "missile launch", "over the sea"
    )
    assert fingerprint("Missile launch", "over the sea") != fingerprint(
        "Missile launch", "over sea"
    )
    assert len(fingerprint("", "")) == 64


def test_content_hash_is_sha256_hex() -> None:
    assert content_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_normalize_entry_builds_a_clean_item() -> None:
    raw = RawEntry(
        id="",
        title="<b>Launch</b> \x07report",
        title_html=True,
        link="/news/1?utm_source=rss",
        summary="<p>Body &amp; more</p>",
        published=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        author=" Kim\x00 ",
        tags=("Defense", "", "Defense", "Asia"),
    )
    item = normalize_entry(raw, base_url="https://wire.example.org/rss", now=NOW)
    assert item.title == "Launch report"
    assert item.url == item.guid == "https://wire.example.org/news/1"
    assert item.summary == "Body & more"
    assert item.author == "Kim"
    assert item.tags == ("Defense", "Asia")
    assert item.published_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert item.fingerprint == fingerprint("Launch report", "Body & more")


def test_a_10k_character_title_is_capped() -> None:
    item = normalize_entry(RawEntry(title="Launch " * 1500, summary="s" * 50_000), now=NOW)
    assert len(item.title) <= 1000 and item.title.endswith("…")
    assert len(item.summary) <= 20_000


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("Привет".encode("cp1251"), "text/xml; charset=windows-1251", "Привет"),
        ("Привет".encode(), "text/xml; charset=iso-8859-1", "Привет"),  # valid UTF-8 wins
        (b"\xef\xbb\xbf" + "Привет".encode(), None, "Привет"),
        ("\ufeff<x>한국</x>".encode("utf-16-le"), None, "<x>한국</x>"),
        ("<?xml version='1.0' encoding='utf-32'?>".encode("utf-32-be"), None, "<?xml"),
        ("북한".encode("cp949"), "text/html; charset=euc-kr", "북한"),
        ("東京".encode("cp932"), "text/xml; charset=Shift_JIS", "東京"),
        ("\u201cq\u201d".encode("cp1252"), "text/xml; charset=iso-8859-1", "\u201cq\u201d"),
        (b"caf\xe9", None, "café"),
    ],
)
def test_decode_body(body: bytes, content_type: str | None, expected: str) -> None:
    assert decode_body(body, content_type)[0].startswith(expected)
