"""parse_feed(skip=...): items seen in an earlier poll are not read again, and nothing else
changes. The property is checked on real documents from ../shared/corpus."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import pytest

import feeds.parse
from common.errors import ParseError
from feeds.parse import MAX_ITEMS, item_digest, parse_feed
from feeds.types import ParsedFeed

NOW = datetime(2026, 3, 1, tzinfo=UTC)
# The parse deadline is not what these tests show: give it room on a loaded machine.
SLACK = 120.0
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
WELLFORMED = CORPUS / "feedparser-tests" / "wellformed"
ATOM_NS = "http://www.w3.org/2005/Atom"


def parse(body: bytes, skip: frozenset[str] | set[str] = frozenset()) -> ParsedFeed:
    return parse_feed(
        body, url="https://feeds.example.org/feed", now=NOW, skip=skip, time_limit=SLACK
    )


def rss(*items: str, extra: str = "") -> bytes:
    channel = f"<channel><title>Wire</title><ttl>5</ttl>{extra}{''.join(items)}</channel>"
    return f"<?xml version='1.0'?>\n<rss version='2.0'>{channel}</rss>".encode()


def item(n: int, summary: str = "") -> str:
    guid = f"<guid isPermaLink='false'>g{n}</guid>"
    return f"<item>{guid}<title>t{n}</title><description>{summary}</description></item>"


def feed_level(feed: ParsedFeed) -> tuple[object, ...]:
    return (feed.title, feed.ttl_seconds, feed.hubs, feed.self_url)


def assert_skips_only(body: bytes, skip: set[str]) -> ParsedFeed:
    """Parsed with ``skip``: the full parse minus the items skipped, and nothing else lost."""
    full, part = parse(body), parse(body, skip)
    assert feed_level(part) == feed_level(full)
    assert part.digests == full.digests and part.total_items == full.total_items
    if not full.digests:  # nothing delimited: nothing skipped
        assert part == full
    else:
        assert len(full.digests) == len(full.items) == full.total_items
        pairs = zip(full.items, full.digests, strict=True)
        assert part.items == tuple(i for i, d in pairs if d not in skip)
    return part


def warning_notes(warning: str | None) -> tuple[set[str], bool]:
    """(our own notes: entities dropped, items capped; whether the XML parser complained)."""
    notes = set((warning or "").split("; ")) - {""}
    own = {n for n in notes if n.startswith(("ignored ", "read the newest "))}
    return own, notes != own


# --- the property on real documents ----------------------------------------------------------


def corpus_groups() -> list[str]:
    if not WELLFORMED.is_dir():
        return ["real"]
    return ["real", *sorted(p.name for p in WELLFORMED.iterdir() if p.is_dir())]


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")
@pytest.mark.parametrize("group", corpus_groups())
def test_skipping_any_subset_of_real_items_reads_exactly_the_others(group: str) -> None:
    """For each feed: the full parse, then a seeded random subset of its digests skipped, all of
    them, and digests it does not have: the items are the full parse's minus the skipped
    ones, and the feed-level fields are the same."""
    folder = CORPUS / "real" if group == "real" else WELLFORMED / group
    paths = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".tsv", ".json")
    )
    undelimited, failures = [], []
    for path in paths:
        body = path.read_bytes()
        try:
            full = parse(body)
        except ParseError:
            continue  # not a feed: nothing to skip
        assert parse(body, {"0" * 24}) == full  # digests of other items change nothing
        if not full.digests:
            assert full.total_items == len(full.items)
            undelimited += [path.name] if full.items else []
            continue
        rng = random.Random(path.name)
        subset = {d for d in full.digests if rng.random() < 0.5}
        for skip in (subset, set(full.digests)):
            part = parse(body, skip)
            expected = [i for i, d in zip(full.items, full.digests, strict=True) if d not in skip]
            same = list(part.items) == expected and feed_level(part) == feed_level(full)
            same = same and (part.digests, part.total_items) == (full.digests, full.total_items)
            # the parser's complaint may have been about a skipped item; none is ever added
            (own, complained), (full_own, full_complained) = map(
                warning_notes, (part.warning, full.warning)
            )
            same = same and own == full_own and complained <= full_complained
            if not same:
                failures.append(f"{path.relative_to(CORPUS)} skipping {len(skip)}")
    assert failures == []
    # every feed with items has digests, but CDF's <ITEM>: the scan looks for <item> only
    assert [name for name in undelimited if group != "cdf" and "cdf_" not in name] == []


@pytest.mark.skipif(not (CORPUS / "real").is_dir(), reason=f"no corpus at {CORPUS}")
def test_real_feeds_in_every_format_and_encoding_get_digests() -> None:
    with_digests = []
    for path in sorted((CORPUS / "real").iterdir()):
        try:
            with_digests += [path.name] if parse(path.read_bytes()).digests else []
        except ParseError:
            assert path.suffix in (".tsv", ".json")
    assert len(with_digests) >= 50  # RSS 0.9x-2.0, RDF, Atom, JSON Feed; legacy encodings
    assert {"slashdot-2024.rdf", "bbc-chinese-2013.atom", "daringfireball-2017.json"} <= set(
        with_digests
    )


# --- what a digest is ------------------------------------------------------------------------


def test_a_digest_is_of_the_item_text_and_pinned_across_releases() -> None:
    text = item(1)
    assert parse(rss(item(1))).digests == (item_digest(text),)
    assert item_digest(text) == "f3d5b96021bc896ccf91f395"  # callers store these between polls


def test_an_edited_item_is_read_again() -> None:
    seen = parse(rss(item(2), item(1, "first draft"))).digests
    feed = parse(rss(item(3), item(2), item(1, "first draft, corrected")), set(seen))
    assert [i.guid for i in feed.items] == ["g3", "g1"]  # same guid, new text: read again
    assert feed.items[1].summary == "first draft, corrected"
    assert feed.total_items == 3


def test_a_moved_item_keeps_its_digest() -> None:
    before = parse(rss(item(1), item(2), item(3)))
    after = parse(rss(item(3), item(1), item(2), extra="<description>moved</description>"))
    assert after.digests == (before.digests[2], before.digests[0], before.digests[1])
    assert parse(rss(item(3), item(1), item(2)), set(before.digests)).items == ()


def test_an_empty_skip_is_the_full_parse_and_counts_every_item() -> None:
    body = rss(item(1), item(2))
    feed = parse(body)
    assert parse_feed(body, url="https://feeds.example.org/feed", now=NOW, time_limit=SLACK) == feed
    assert (len(feed.digests), feed.total_items, len(feed.items)) == (2, 2, 2)


def test_feed_elements_between_and_after_skipped_items_are_kept() -> None:
    hub = f"<atom:link xmlns:atom='{ATOM_NS}' rel='hub' href='https://hub.example.org/'/>"
    body = rss(item(1), hub, item(2)).replace(b"</channel>", b"<ttl>60</ttl></channel>")
    full = parse(body)
    feed = assert_skips_only(body, set(full.digests))
    assert (feed.items, feed.hubs, feed.ttl_seconds) == ((), ("https://hub.example.org/",), 3600)


def test_a_parser_complaint_keeps_its_line_in_the_document_as_fetched() -> None:
    body = rss(item(1, "\nline\nbreaks\n"), item(2), "\n<item><title>A & B</title></item>")
    full = parse(body)
    part = parse(body, set(full.digests[:2]))
    assert [i.title for i in part.items] == ["A & B"]
    assert part.warning == full.warning and full.warning and "line 6" in full.warning


# --- skip and the cap ------------------------------------------------------------------------


@pytest.fixture
def cap_of_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds.parse, "MAX_ITEMS", 3)


def dated(n: int) -> str:
    when = format_datetime(NOW - timedelta(hours=10 - n))
    return f"<item><guid isPermaLink='false'>g{n}</guid><pubDate>{when}</pubDate></item>"


@pytest.mark.usefixtures("cap_of_3")
def test_the_cap_applies_after_skipping_so_the_newest_unseen_items_are_read() -> None:
    body = rss(*(dated(n) for n in range(6)))  # oldest first: g5 is the newest
    full = parse(body)
    assert [i.guid for i in full.items] == ["g3", "g4", "g5"]
    assert full.warning == "read the newest 3 of 6 items"
    assert (len(full.digests), full.total_items) == (6, 6)  # the capped ones too
    assert full.capped == full.digests[:3]  # and which they are: the worker decides
    feed = parse(body, set(full.digests[4:]))
    assert [i.guid for i in feed.items] == ["g1", "g2", "g3"]
    assert feed.warning == "read the newest 3 of 4 unseen items"
    assert feed.total_items == 6
    assert feed.capped == (full.digests[0],)
    assert parse(body, set(full.digests)).capped == ()


@pytest.mark.usefixtures("cap_of_3")
def test_json_feed_skips_first_and_caps_the_same_way() -> None:
    items = [{"id": f"j{n}", "date_published": f"2026-02-0{n + 1}T00:00:00Z"} for n in range(6)]
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items}
    full = parse(json.dumps(doc).encode())
    feed = parse(json.dumps(doc).encode(), set(full.digests[4:]))
    assert [i.guid for i in feed.items] == ["j1", "j2", "j3"]
    assert (feed.warning, feed.total_items) == ("read the newest 3 of 4 unseen items", 6)
    assert (full.capped, feed.capped) == (full.digests[:3], (full.digests[0],))


def test_a_100k_item_feed_skips_and_still_reads_at_most_the_cap() -> None:
    count = 100_000
    when = [format_datetime(NOW - timedelta(minutes=count - i)) for i in range(count)]
    body = rss(
        *(f"<item><guid>{i}</guid><pubDate>{when[i]}</pubDate></item>" for i in range(count))
    )
    full = parse_feed(body, now=NOW, time_limit=SLACK)
    assert (len(full.items), len(full.digests), full.total_items) == (MAX_ITEMS, count, count)
    newest = set(full.digests[-MAX_ITEMS:])
    feed = parse_feed(body, now=NOW, time_limit=SLACK, skip=newest)
    assert [i.guid for i in feed.items] == [
        str(i) for i in range(count - 2 * MAX_ITEMS, count - MAX_ITEMS)
    ]
    assert feed.warning == f"read the newest {MAX_ITEMS:,} of {count - MAX_ITEMS:,} unseen items"
    assert parse_feed(body, now=NOW, time_limit=SLACK, skip=full.digests).items == ()


# --- JSON Feed -------------------------------------------------------------------------------


def test_json_feed_items_are_digested_as_canonical_json() -> None:
    items = [{"id": "a", "title": "A"}, {"title": "B", "id": "b"}, "not an item"]
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items}
    full = parse(json.dumps(doc).encode())
    assert full.digests == (
        item_digest('{"id":"a","title":"A"}'),
        item_digest('{"id":"b","title":"B"}'),
    )
    reordered = {**doc, "items": [{"title": "A", "id": "a"}, {"id": "b", "title": "B!"}]}
    feed = parse(json.dumps(reordered, indent=2).encode(), set(full.digests))
    assert [(i.guid, i.title) for i in feed.items] == [("b", "B!")]  # the edited one only


def test_json_items_nested_up_to_the_recursion_limit_parse_or_fail_cleanly() -> None:
    for depth in range(900, 1100, 7):
        deep = '{"d":' * depth + "1" + "}" * depth
        items = f'[{{"id":"a"}},{{"id":"b","_x":{deep}}}]'
        body = f'{{"version":"https://jsonfeed.org/version/1.1","title":"J","items":{items}}}'
        try:
            feed = parse(body.encode(), {item_digest('{"id":"a"}')})
        except ParseError as exc:
            assert exc.message == "document nested too deeply"
            continue
        assert [i.guid for i in feed.items] == (["b"] if feed.digests else ["a", "b"])


# --- hostile documents -----------------------------------------------------------------------


def test_cdata_holding_an_end_tag_stays_inside_its_item() -> None:
    fake = "<![CDATA[</item><item><guid>fake</guid></item>]]>"
    body = rss(item(1, fake), item(2))
    full = parse(body)
    assert [i.guid for i in full.items] == ["g1", "g2"] and len(full.digests) == 2
    assert [i.guid for i in assert_skips_only(body, {full.digests[0]}).items] == ["g2"]


def test_item_tags_in_comments_and_pis_are_not_items() -> None:
    body = rss(item(1), "<!-- <item><guid>no</guid></item> -->", "<?x <item>?>", item(2))
    full = parse(body)
    assert len(full.digests) == 2
    assert assert_skips_only(body, set(full.digests)).items == ()


@pytest.mark.parametrize(
    "channel",
    [
        "<link>x</link><image url='a<item>b'/>",  # not well-formed: an <item> in a value
        "<image url='a<item/>b'/>",
        "<image url='a</item>b'/>",
    ],
)
def test_an_item_tag_inside_an_attribute_value_skips_nothing(channel: str) -> None:
    body = rss(item(1), item(2), extra=channel)
    full = parse(body)
    for skip in ({item_digest("<item>")}, {item_digest("<item/>")}, set(full.digests)):
        assert_skips_only(body, skip)


def test_a_greater_than_sign_inside_an_item_attribute_is_still_one_item() -> None:
    guid = "<guid isPermaLink='false'>g{}</guid>"
    body = rss(
        f"<item about='a>b'>{guid.format(1)}</item>", f"<item about='/>'>{guid.format(2)}</item>"
    )
    full = parse(body)
    assert [i.guid for i in full.items] == ["g1", "g2"]
    assert full.digests == ()  # '/>' in a value looks like an empty item: not delimited
    assert_skips_only(body, {item_digest("<item about='/>")})


@pytest.mark.parametrize(
    ("nested", "inner"),
    [
        (
            "<entry><id>e1</id><x:w xmlns:x='urn:x'><entry><id>e0</id></entry></x:w></entry>",
            "<entry><id>e0</id></entry>",
        ),
        (
            "<entry><id>e1</id><x:entry xmlns:x='urn:x'><x:id>e0</x:id></x:entry></entry>",
            "<x:entry xmlns:x='urn:x'><x:id>e0</x:id></x:entry>",
        ),
        ("<entry><id>e1</id><entry/></entry>", "<entry/>"),
    ],
)
def test_nested_entries_in_atom_extensions_skip_nothing(nested: str, inner: str) -> None:
    body = f"<feed xmlns='{ATOM_NS}'><title>A</title>{nested}<entry><id>e2</id></entry></feed>"
    full = parse(body.encode())
    assert full.digests == ()
    for skip in (
        {item_digest(nested)},
        {item_digest("<entry><id>e2</id></entry>")},
        {item_digest(inner)},
    ):
        assert_skips_only(body.encode(), skip)


def test_prefixed_atom_entries_are_skipped() -> None:
    entries = "".join(
        f"<a:entry><a:id>urn:e{n}</a:id><a:title>t{n}</a:title></a:entry>" for n in range(3)
    )
    body = f"<a:feed xmlns:a='{ATOM_NS}'><a:title>A</a:title>{entries}</a:feed>".encode()
    full = parse(body)
    assert [i.guid for i in full.items] == ["urn:e0", "urn:e1", "urn:e2"] and len(full.digests) == 3
    assert [i.guid for i in assert_skips_only(body, {full.digests[1]}).items] == [
        "urn:e0",
        "urn:e2",
    ]


def test_an_extension_element_named_entry_is_never_taken_for_an_item() -> None:
    """feedparser reads ``<x:entry>`` of an unknown namespace as no entry, the scan as one:
    they disagree, so no digests; a skip that makes them disagree reads it all again."""
    x_entry = "<x:entry xmlns:x='urn:x'><x:v>1</x:v></x:entry>"
    body = rss(item(1), x_entry, item(2))
    full = parse(body)
    assert [i.guid for i in full.items] == ["g1", "g2"] and full.digests == ()
    feed = parse(body, {item_digest(item(1))})
    assert (feed.items, feed.digests) == (full.items, ())


def test_skipping_every_item_of_a_document_without_a_known_root_still_parses() -> None:
    body = b"<stuff><item><title>t1</title><link>https://e.org/1</link></item></stuff>"
    full = parse(body)
    assert [i.title for i in full.items] == ["t1"]
    assert_skips_only(body, set(full.digests))


@pytest.mark.parametrize(
    "cut", ["</item>", "<title>t2", "<![CDATA[ op", "<!-- op", "<?p", "<item about='x"]
)
def test_a_truncated_document_skips_only_whole_items(cut: str) -> None:
    second = "<item><title>t2</title><!-- open --><?p i?><description><![CDATA[ open ]]>"
    body = rss(
        item(1), second + "</description></item>", "<item about='x'><title>t3</title></item>"
    )
    body = body[: body.index(cut.encode()) + len(cut)]
    full = parse(body)
    assert full.items
    for skip in ({item_digest(item(1))}, set(full.digests)):
        assert_skips_only(body, skip)


def test_an_open_comment_at_the_end_leaves_no_digests_but_a_closed_one_does() -> None:
    assert parse(rss(item(1)) + b"<!-- generated").digests == ()
    assert len(parse(rss(item(1)) + b"<!-- generated -->").digests) == 1


# --- the scan and feedparser must agree item by item, not only in number -------------------


def doc_with_foreign_item(x_ns: str, extra: str) -> bytes:
    return (
        f"<?xml version='1.0'?><rss version='2.0' xmlns:x='{x_ns}'><channel><title>W</title>"
        "<item><guid isPermaLink='false'>g1</guid><title>Quiet day</title></item>"
        "<x:item><guid isPermaLink='false'>g9</guid><title>Harbour closed</title></x:item>"
        f"{extra}</channel></rss>"
    ).encode()


def test_an_item_feedparser_never_read_is_never_skipped() -> None:
    """The scan counts <x:item> of a namespace feedparser ignores; feedparser reads <ITEM>
    (it folds case), which the scan does not: the counts agree, the items do not. Such a
    document gets no digests, so nothing in it is skipped later."""
    first = parse(doc_with_foreign_item("urn:x", "<ITEM><title>u</title></ITEM>"))
    assert [i.title for i in first.items] == ["Quiet day", "u"]  # x:item is no item here
    assert first.digests == ()
    # x:item now names the RSS 1.0 namespace (feedparser reads it); a decoy keeps the count
    second_doc = doc_with_foreign_item(
        "http://purl.org/rss/1.0/", "<ITEM><title>u</title></ITEM><y:item xmlns:y='urn:y'/>"
    )
    second = parse(second_doc, skip=set(first.digests))
    assert "Harbour closed" in [i.title for i in second.items]


@pytest.mark.parametrize(
    ("tag", "namespace", "digested"),
    [
        ("item", "", True),
        ("Item", "", False),
        ("ENTRY", "", False),
        ("rss:item", "xmlns:rss='http://purl.org/rss/1.0/'", True),
        ("x:item", "xmlns:x='urn:x'", False),
        ("x:item", "", False),  # a prefix bound nowhere
    ],
)
def test_only_documents_whose_item_tags_feedparser_reads_alike_get_digests(
    tag: str, namespace: str, digested: bool
) -> None:
    body = (
        f"<?xml version='1.0'?><rss version='2.0' {namespace}><channel><title>W</title>"
        f"<{tag}><title>a</title></{tag}><{tag}><title>b</title></{tag}></channel></rss>"
    ).encode()
    assert bool(parse(body).digests) is digested


def test_the_feed_namespaces_are_feedparsers_own() -> None:
    """The namespaces whose items the scan trusts are those feedparser reads items of: an
    upgrade that changes its list fails here, not in production."""
    mixin = feedparser.mixin._FeedParserMixin  # private: read by this test only
    own = {uri.lower() for uri, prefix in mixin.namespaces.items() if prefix == ""}
    assert own == feeds.parse._FEED_NAMESPACES
