"""WebSub's pure parts: hub discovery and push signatures."""

from __future__ import annotations

import pytest

from feeds.parse import parse_feed
from feeds.websub import HubLink, discover, parse_link_header, sign, signature_problem

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Wire</title>
<link rel="hub" href="https://pubsubhubbub.appspot.com/"/>
<link rel="self" href="https://wire.example/atom.xml"/>
<entry><id>1</id><title>One</title><updated>2026-11-30T00:00:00Z</updated></entry></feed>"""
JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "Wire",
"feed_url": "https://wire.example/feed.json",
"hubs": [{"type": "rssCloud", "url": "https://cloud.example/"},
         {"type": "WebSub", "url": "https://hub.example/"}],
"items": [{"id": "1", "title": "One"}]}"""


def test_the_link_header_is_read_with_its_rels() -> None:
    value = (
        '<https://hub.example/>; rel="hub", <https://wire.example/feed>; rel="self alternate",'
        ' <https://other.example/>; title="a, b"; rel=next'
    )
    assert parse_link_header(value) == [
        ("https://hub.example/", frozenset({"hub"})),
        ("https://wire.example/feed", frozenset({"self", "alternate"})),
        ("https://other.example/", frozenset({"next"})),
    ]
    assert parse_link_header("garbage, <>") == [("", frozenset())]


def test_a_feed_names_its_hub_in_the_document() -> None:
    atom = parse_feed(ATOM)
    assert atom.hubs == ("https://pubsubhubbub.appspot.com/",)
    assert atom.self_url == "https://wire.example/atom.xml"
    json_feed = parse_feed(JSON_FEED)
    assert json_feed.hubs == ("https://hub.example/",)  # only the WebSub one
    assert json_feed.self_url == "https://wire.example/feed.json"


def test_the_header_wins_and_the_fetched_url_is_the_fallback_topic() -> None:
    header = '<https://hub.example/>; rel="hub", <https://wire.example/self>; rel="self"'
    doc_hubs = ("https://doc-hub.example/",)
    fetched = "https://wire.example/feed.xml"
    assert discover(header, doc_hubs, "https://wire.example/doc-self", fetched) == HubLink(
        "https://hub.example/", "https://wire.example/self"
    )
    assert discover(None, doc_hubs, None, fetched) == HubLink(doc_hubs[0], fetched)
    assert discover(None, (), None, fetched) is None
    # a hub that is no http(s) URL is no hub
    assert (
        discover('<javascript:alert(1)>; rel="hub"', ("file:///etc/passwd",), None, fetched) is None
    )


def test_a_push_is_taken_only_under_its_secret() -> None:
    body = b"<rss/>"
    assert signature_problem(sign("s3cret", body), "s3cret", body) is None
    assert signature_problem(sign("s3cret", body, "sha512"), "s3cret", body) is None
    assert signature_problem(sign("s3cret", body), "other", body) == "bad signature"
    assert signature_problem(sign("s3cret", body), "s3cret", body + b" ") == "bad signature"
    assert signature_problem(None, "s3cret", body) == "no X-Hub-Signature"
    assert signature_problem("garbage", "s3cret", body) is not None
    sha1 = "sha1=" + "0" * 40
    assert "not accepted" in (signature_problem(sha1, "s3cret", body) or "")


@pytest.mark.parametrize("header", ["sha256=", "sha256", "=abc", "SHA256=" + "z" * 64])
def test_malformed_signatures_are_refused(header: str) -> None:
    assert signature_problem(header, "s3cret", b"x") is not None
