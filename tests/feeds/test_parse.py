"""parse_feed: formats, encodings, hostile XML, time limit."""

from __future__ import annotations

import json
import signal
import threading
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.errors import ParseError
from feeds.fetch import fetch
from feeds.parse import MAX_ITEMS, parse_feed
from feeds.types import ParsedFeed
from tests.feeds.loopback import RSS, LoopbackServer, send

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MB = 1024 * 1024


def parse(body: bytes, **kwargs: object) -> ParsedFeed:
    return parse_feed(body, now=NOW, **kwargs)  # type: ignore[arg-type]


RSS2 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire &amp; Co</title><ttl>60</ttl>
<item><guid isPermaLink="false">w-1</guid><title>Launch &lt;b&gt;detected&lt;/b&gt;</title>
<link>/news/1?utm_source=rss#top</link>
<description>&lt;p&gt;A &lt;i&gt;missile&lt;/i&gt; flew&lt;/p&gt;</description>
<pubDate>Sun, 01 Mar 2026 09:00:00 +0900</pubDate><category>Defense</category></item>
<item><title>No guid</title><link>https://wire.example.org/n2</link></item>
</channel></rss>"""


def test_rss2_items_are_clean_and_typed() -> None:
    feed = parse(RSS2, url="https://wire.example.org/rss.xml")
    assert feed.title == "Wire & Co"
    assert feed.ttl_seconds == 3600
    assert feed.warning is None
    first, second = feed.items
    assert first.guid == "w-1"
    assert first.title == "Launch detected"
    assert first.url == "https://wire.example.org/news/1"
    assert first.summary == "A missile flew"
    assert first.published_at == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert first.tags == ("Defense",)
    assert second.guid == second.url == "https://wire.example.org/n2"
    assert second.published_at is None


@pytest.mark.parametrize(
    "doc",
    [
        b"""<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
        "http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel>
        <title>Old</title><item><title>Launch</title><link>https://e.org/1</link></item>
        </channel></rss>""",
        b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
        xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
        <channel rdf:about="https://e.org/"><title>Old</title></channel>
        <item rdf:about="https://e.org/1"><title>Launch</title><link>https://e.org/1</link>
        <dc:date>2026-03-01T00:00:00Z</dc:date></item></rdf:RDF>""",
        b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Old</title>
        <entry><id>https://e.org/1</id><title type="html">&lt;b&gt;Launch&lt;/b&gt;</title>
        <link href="https://e.org/1"/><updated>2026-03-01T00:00:00Z</updated>
        <content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry></feed>""",
        json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "Old",
                "items": [
                    {
                        "id": "https://e.org/1",
                        "url": "https://e.org/1",
                        "title": "Launch",
                        "content_html": "<p>Body</p>",
                        "date_published": "2026-03-01T09:00:00+09:00",
                        "authors": [{"name": "Kim"}],
                        "tags": ["a", 7],
                    }
                ],
            }
        ).encode(),
    ],
    ids=["rss091", "rss10", "atom10", "jsonfeed11"],
)
def test_every_format_gives_the_same_item(doc: bytes) -> None:
    feed = parse(doc)
    assert feed.title == "Old"
    (item,) = feed.items
    assert (item.guid, item.title, item.url) == ("https://e.org/1", "Launch", "https://e.org/1")


def test_json_feed_fields() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1",
        "title": "J",
        "feed_url": "https://j.example.org/feed.json",
        "items": [
            {
                "id": 42,
                "url": "/p/42",
                "content_text": "plain <b>text</b>",
                "author": {"name": "A"},
            },
            {"id": "x", "summary": "S", "content_html": "<p>ignored</p>", "date_modified": "bad"},
            "not an object",
        ],
    }
    first, second = parse(json.dumps(doc).encode()).items
    assert (first.guid, first.url, first.summary, first.author) == (
        "42",
        "https://j.example.org/p/42",
        "plain <b>text</b>",
        "A",
    )
    assert (second.summary, second.published_at) == ("S", None)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty document"),
        (b"  \n\t ", "empty document"),
        (b"<!DOCTYPE html><html><head><title>Home</title></head><body>hi</body></html>", "HTML"),
        (b"<html><body><p>hello</p></body></html>", "HTML"),
        (b"just some text", "not a feed"),
        (b'{"items": [1, 2]}', "not a JSON Feed"),
        (b"[1, 2, 3]", "not a JSON Feed"),
        (b'{"version": ', "invalid JSON"),
        (b"<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY a 'x'>", "unterminated"),
        (b"<!-- never closed <rss><channel><item><title>x", "unterminated"),
        (b"junk <!DOCTYPE rss [<!ENTITY a 'x'>]><rss version='2.0'/>", "outside the prolog"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_documents_without_a_feed_raise_parse_error(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        parse(body)
    assert "\n" not in caught.value.message


def test_an_empty_but_valid_feed_is_not_an_error() -> None:
    feed = parse(b"<rss version='2.0'><channel><title>Quiet</title></channel></rss>")
    assert (feed.title, feed.items) == ("Quiet", ())


def test_a_broken_feed_that_still_has_entries_parses_with_a_warning() -> None:
    doc = b"<rss version='2.0'><channel><title>T</title><item><title>A & B</title></item>"
    feed = parse(doc)
    assert [i.title for i in feed.items] == ["A & B"]
    assert feed.warning and "\n" not in feed.warning


def test_a_10k_character_title_is_capped() -> None:
    doc = RSS2.replace(b"No guid", b"Launch " * 1500)
    title = parse(doc).items[1].title
    assert len(title) <= 1000 and title.startswith("Launch Launch")


def test_control_characters_never_reach_titles() -> None:
    raw = "A\u0085B\x01C\u009bD\u202eE&#x85;F&#1;G".encode()
    doc = b"<rss version='2.0'><channel><item><title>" + raw + b"</title></item>"
    title = parse(doc).items[0].title
    # C1 controls are deleted, or read as windows-1252 (as HTML5 does: U+0085 is then "…").
    assert title.isprintable()
    assert "".join(c for c in title if c.isascii()) == "ABCDEFG"


# --- encodings --------------------------------------------------------------------------


def _rss(title: str, encoding: str, declare: bool = True) -> bytes:
    decl = f"<?xml version='1.0' encoding='{encoding}'?>" if declare else ""
    doc = f"{decl}<rss version='2.0'><channel><item><title>{title}</title></item></channel></rss>"
    return doc.encode(encoding)


@pytest.mark.parametrize(
    ("title", "encoding", "declare", "content_type"),
    [
        ("Ракетный удар по Киеву", "windows-1251", True, "text/xml; charset=utf-8"),
        ("Ракетный удар по Киеву", "windows-1251", True, "application/rss+xml; charset=iso-8859-1"),
        ("Ракетный удар по Киеву", "windows-1251", False, "text/xml; charset=windows-1251"),
        ("Ракетный удар", "koi8-r", True, None),
        ("북한 미사일 발사", "euc-kr", True, "text/xml"),
        ("북한 미사일 발사", "euc-kr", True, "text/html; charset=ISO-8859-1"),
        ("북한 미사일 발사", "euc-kr", False, "application/xml; charset=euc-kr"),
        ("北朝鮮がミサイル発射", "shift_jis", True, "text/xml; charset=utf-8"),
        ("朝鲜发射导弹", "gb2312", True, None),
        ("Ракетный удар", "utf-8", False, "text/xml; charset=iso-8859-1"),
        ("Ракетный удар", "utf-16", True, "text/xml"),
    ],
)
def test_wrong_or_missing_charset_still_decodes(
    title: str, encoding: str, declare: bool, content_type: str | None
) -> None:
    body = _rss(title, encoding, declare)
    assert parse(body, content_type=content_type).items[0].title == title


def test_wrong_charset_header_end_to_end_over_http() -> None:
    body = _rss("Ракетный удар по Киеву", "windows-1251")
    with LoopbackServer() as server:
        server.routes["/ru.xml"] = lambda h: send(
            h, 200, body, {"Content-Type": "text/xml; charset=utf-8"}
        )
        result = fetch(server.url("/ru.xml"), allow_private=True)
    feed = parse(result.body or b"", url=result.url, content_type=result.content_type)
    assert feed.items[0].title == "Ракетный удар по Киеву"


# --- hostile XML ----------------------------------------------------------------------------

LAUGHS = b"".join(
    b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1)) * 10) for i in range(1, 10)
)


@pytest.mark.parametrize("newline", [b"\n", b""])
def test_billion_laughs_is_parsed_in_bounded_time_and_memory(newline: bytes) -> None:
    doc = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol0 "lol">\n' + LAUGHS + b"]>\n"
        b"<rss version='2.0'><channel><item><title>&lol9;</title></item></channel></rss>"
    ).replace(b"\n", newline)
    tracemalloc.start()
    try:
        feed = parse(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert feed.items[0].title.count("lol") <= 1
    assert "ignored 9 entity declaration(s)" in (feed.warning or "")
    assert peak < 20 * MB


def test_quadratic_blowup_entity_is_not_expanded() -> None:
    doc = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + b"x" * 100_000 + b'">\n]>\n'
        b"<rss version='2.0'><channel><item><title>" + b"&a;" * 20_000 + b"</title>"
        b"<description>" + b"&a;" * 20_000 + b"</description></item></channel></rss>"
    )
    tracemalloc.start()
    try:  # no time limit: tracemalloc slows parsing several times, and cores are shared
        item = parse(doc, time_limit=0).items[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "xxxxxxxxxx" not in item.title + item.summary
    assert peak < 50 * MB


def test_tiny_entities_from_a_dtd_are_expanded() -> None:
    doc = (
        b"<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY nbsp '&#160;'><!ENTITY co \"Co.\">"
        b"<!-- a ] comment > --><!ENTITY % pe 'x'>]>"
        b"<rss version='2.0'><channel><item><title>Acme&nbsp;&co;</title></item></channel></rss>"
    )
    feed = parse(doc)
    assert feed.items[0].title == "Acme Co."
    assert "ignored 1 entity declaration(s)" in (feed.warning or "")


def test_external_entities_and_dtds_are_never_read_or_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-XXE-MARKER")
    with LoopbackServer() as stub:
        stub.routes["/evil.dtd"] = lambda h: send(h, 200, b'<!ENTITY ext "PWNED-BY-DTD">')
        base = stub.url("")
        docs = [
            f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
            "<rss version='2.0'><channel><item><title>a&xxe;b</title></item></channel></rss>",
            f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{base}/entity">]>'
            "<rss version='2.0'><channel><item><title>a&xxe;b</title></item></channel></rss>",
            f'<!DOCTYPE rss SYSTEM "{base}/evil.dtd">'
            "<rss version='2.0'><channel><item><title>a&ext;b</title></item></channel></rss>",
            f'<!DOCTYPE rss [<!ENTITY % pe SYSTEM "{base}/evil.dtd"> %pe;]>'
            "<rss version='2.0'><channel><item><title>a&ext;b</title></item></channel></rss>",
        ]
        for doc in docs:
            for item in parse(doc.encode()).items:
                text = " ".join([item.title, item.summary, item.url, item.guid])
                assert "TOP-SECRET" not in text and "PWNED" not in text
        assert stub.paths() == []
        fetch(f"{base}/evil.dtd", allow_private=True)  # the stub does record a real request
        assert stub.paths() == ["/evil.dtd"]


def test_a_body_that_looks_like_a_path_or_url_is_never_opened() -> None:
    with LoopbackServer() as stub:
        stub.routes["/feed.xml"] = lambda h: send(h, 200, RSS)
        for body in (stub.url("/feed.xml").encode(), b"/etc/passwd", RSS.replace(b"<", b"")):
            with pytest.raises(ParseError):
                parse(body)
        assert stub.paths() == []


# --- time limit -----------------------------------------------------------------------------

BIG_ITEM = b"<item><title>t</title><description>&lt;p&gt;x&lt;/p&gt;</description></item>"
BIG = b"<rss version='2.0'><channel>" + BIG_ITEM * MAX_ITEMS + b"</channel></rss>"  # all read


def test_a_parse_over_its_time_limit_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="parse took longer than"):
        parse(BIG, time_limit=1e-6)
    assert len(parse(BIG).items) == MAX_ITEMS


def test_the_time_limit_restores_an_outer_alarm() -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    previous_timer = signal.setitimer(signal.ITIMER_REAL, 100)
    try:
        parse(RSS)
        handler = signal.getsignal(signal.SIGALRM)
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        handler(signal.SIGALRM, None)  # type: ignore[operator,misc]
    finally:
        signal.setitimer(signal.ITIMER_REAL, *previous_timer)
        signal.signal(signal.SIGALRM, previous)
    assert fired == [signal.SIGALRM]
    assert 0 < remaining <= 100


def test_off_the_main_thread_a_parse_keeps_its_time_limit() -> None:
    """Pushes are parsed in the web server's threads and polls in ``-P threads`` workers,
    where no signal reaches: the watchdog cuts the parse there too, and a parse within
    its limit is untouched, with no timeout left pending after it."""
    results: list[object] = []

    def run(limit: float) -> None:
        try:
            results.append(len(parse(BIG, time_limit=limit).items))
        except ParseError as exc:
            results.append(exc.message)
        sum(range(200_000))  # any timeout still pending would be raised here, in the thread

    for limit in (1e-6, 60.0):
        thread = threading.Thread(target=run, args=(limit,))
        thread.start()
        thread.join(60)
    assert results == ["parse took longer than 1e-06s", MAX_ITEMS]


def test_the_watchdog_never_fires_after_its_block() -> None:
    """Blocks that end right at their deadline: the timeout is raised inside or withdrawn."""
    from feeds.deadline import ParseTimeout, bounded_time

    outcomes: list[str] = []

    def run() -> None:
        for _ in range(300):
            try:
                with bounded_time(0.0005):
                    sum(range(3_000))
                outcomes.append("done")
            except ParseTimeout:
                outcomes.append("cut")
        try:
            sum(range(2_000_000))
        except ParseTimeout:
            outcomes.append("late")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert len(outcomes) == 300 and "late" not in outcomes


def test_a_watchdog_that_fires_while_starting_raises_in_the_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The timer can shoot before ``timer.start()`` returns (a tiny deadline on a busy
    machine). It must not raise inside ``threading``'s own code, which broke its locks
    ("release unlocked lock"): the block raises ``ParseTimeout`` cleanly instead."""
    import time

    from feeds import deadline

    outcomes: list[str] = []

    class FiresWhileStarting(threading.Timer):
        def start(self) -> None:
            time.sleep(0.01)  # past the deadline before start() returns
            try:
                self.function()  # the shot, from inside start()
                super().start()  # threading's own code: no timeout may land here
            except deadline.ParseTimeout:
                outcomes.append("raised inside threading")
                raise

    monkeypatch.setattr(deadline.threading, "Timer", FiresWhileStarting)

    def run() -> None:
        try:
            with deadline.bounded_time(0.001):
                outcomes.append("entered")
        except deadline.ParseTimeout:
            outcomes.append("cut")
        sum(range(200_000))  # a timeout still pending would surface here
        outcomes.append("after")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert outcomes == ["cut", "after"]


# A zone offset whose minutes overflow a timedelta: email.utils raises OverflowError.
OVERFLOWING_DATE = "Mon, 01 Jan 2020 00:00:00 +99999999999999999999"


def test_a_date_that_overflows_is_no_date_and_the_item_is_read() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [{"id": "x1", "title": "Harbour closed", "date_published": OVERFLOWING_DATE}],
    }
    [item] = parse(json.dumps(doc).encode()).items
    assert (item.title, item.published_at) == ("Harbour closed", None)
    rss = (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>W</title>"
        + "".join(
            f"<item><guid>g{n}</guid><title>t{n}</title><pubDate>{OVERFLOWING_DATE}</pubDate></item>"
            for n in range(MAX_ITEMS + 1)  # over the cap: items are ranked by date
        )
        + "</channel></rss>"
    )
    assert len(parse(rss.encode()).items) == MAX_ITEMS


def test_any_failure_reading_a_document_is_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile document that finds a library's unexpected exception fails as that feed's
    ParseError, so the poll batch it came in goes on (tests/worker/test_poll_hostile.py)."""
    import feedparser

    def broken(*_: object, **__: object) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(feedparser, "parse", broken)
    with pytest.raises(ParseError, match="unreadable: OverflowError: date value out of range"):
        parse(b"<rss version='2.0'><channel><title>W</title></channel></rss>")
