"""List pages read by selectors: items, links, dates in three languages, hostile markup."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from common.errors import ParseError, SelectorError
from feeds.follow import Follower, extract_text, with_article
from feeds.jsonapi import parse_json_api
from feeds.page import MAX_FIELD_CHARS, PageSelect, parse_date, parse_page, parse_page_body
from feeds.sources import FeedSource

BASE = "https://www.unikorea.go.kr/eng/releases/"
BOARD = """<html><head><title>Press releases</title></head><body><ul class="board-list">
<li><a href="/eng/news/101">Minister meets <b>envoy</b><script>alert(1)</script></a>
    <span class="date">2026.11.30</span><p class="summary">The minister met the envoy.</p></li>
<li><a href="news/102?x=1#top">북한 미사일 발사 관련 입장</a>
    <span class="date">2026년 11월 29일</span></li>
<li><a href="javascript:void(0)">a script link</a></li>
<li><a href="mailto:press@example.org">mail us</a></li>
<li><a href="/eng/news/101">Minister meets envoy (again)</a></li>
<li><a href="https://mid.ru/x">МИД России о санкциях</a>
    <span class="date">28 ноября 2026</span></li>
</ul></body></html>"""
SELECT = PageSelect(item="ul.board-list > li", date=".date", summary=".summary")


def test_items_are_the_selected_elements_with_links_resolved_and_dates_read() -> None:
    page = parse_page(BOARD, SELECT, url=BASE)
    assert page.title == "Press releases"
    got = [(i.guid, i.title, i.summary, i.published_at) for i in page.items]
    assert got == [
        (
            "https://www.unikorea.go.kr/eng/news/101",
            "Minister meets envoy",  # the script's text is not the title's
            "The minister met the envoy.",
            datetime(2026, 11, 30, tzinfo=UTC),
        ),
        (
            "https://www.unikorea.go.kr/eng/releases/news/102?x=1",
            "북한 미사일 발사 관련 입장",
            "",
            datetime(2026, 11, 29, tzinfo=UTC),
        ),
        ("https://mid.ru/x", "МИД России о санкциях", "", datetime(2026, 11, 28, tzinfo=UTC)),
    ]  # javascript: and mailto: links are no items; a repeated link is one item


def test_xpath_selectors_read_the_same_page() -> None:
    select = PageSelect(item="xpath://ul/li", link="xpath:./a/@href", title="xpath:./a")
    titles = [i.title for i in parse_page(BOARD, select, url=BASE).items]
    assert titles == ["Minister meets envoy", "북한 미사일 발사 관련 입장", "МИД России о санкциях"]


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026.11.30", datetime(2026, 11, 30, tzinfo=UTC)),
        ("30 ноября 2026", datetime(2026, 11, 30, tzinfo=UTC)),
        ("2026년 11월 30일", datetime(2026, 11, 30, tzinfo=UTC)),
        ("Nov 30, 2026 14:05", datetime(2026, 11, 30, 14, 5, tzinfo=UTC)),
        ("30.11.2026", datetime(2026, 11, 30, tzinfo=UTC)),
        ("no date here", None),
        ("", None),
    ],
)
def test_dates_in_english_korean_and_russian(text: str, day: datetime | None) -> None:
    assert parse_date(text) == day


def test_a_redesign_is_a_selector_error_never_silence() -> None:
    with pytest.raises(SelectorError, match=r"item selector matched nothing: div\.news"):
        parse_page(BOARD, PageSelect(item="div.news"), url=BASE)
    links_gone = BOARD.replace("href=", "data-href=")
    with pytest.raises(SelectorError, match="link selector matched nothing in 6 items"):
        parse_page(links_gone, SELECT, url=BASE)


def test_a_bad_selector_is_a_config_error() -> None:
    page = {"id": "p", "url": BASE, "type": "page"}
    with pytest.raises(ValidationError, match="not a valid CSS selector"):
        FeedSource(**page, select={"item": "ul >> li["})
    with pytest.raises(ValidationError, match="not a valid XPATH selector"):
        FeedSource(**page, select={"item": "xpath://ul["})
    api = {"id": "j", "url": BASE, "type": "json"}
    with pytest.raises(ValidationError, match="not a valid JMESPath expression"):
        FeedSource(**api, select={"item": "data[", "link": "url", "title": "t"})
    with pytest.raises(ValidationError, match="select needs link, title"):
        FeedSource(**api, select={"item": "data"})
    with pytest.raises(ValidationError, match="needs select"):
        FeedSource(**api)


API = {
    "data": {
        "releases": [
            {"url": "/press/1", "headline": "Статья о ракетах", "date": "2026-11-30T10:00:00Z",
             "body": "<p>КНДР запустила ракету.</p>"},
            {"url": "/press/2", "headline": {"nested": "not text"}, "date": "30 ноября 2026"},
            {"url": None, "headline": "no link"},
        ]
    }
}  # fmt: skip
API_SELECT = PageSelect(
    item="data.releases", link="url", title="headline", date="date", summary="body"
)


def test_a_json_api_is_read_by_jmespath() -> None:
    page = parse_json_api(json.dumps(API).encode(), API_SELECT, url="https://mid.ru/api/")
    got = [(i.guid, i.title, i.summary, i.published_at) for i in page.items]
    assert got == [
        ("https://mid.ru/press/1", "Статья о ракетах", "КНДР запустила ракету.",
         datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("https://mid.ru/press/2", "", "", datetime(2026, 11, 30, tzinfo=UTC)),
    ]  # fmt: skip
    with pytest.raises(SelectorError, match="item selector matched nothing"):
        parse_json_api(b'{"data": {}}', API_SELECT, url="https://mid.ru/api/")
    with pytest.raises(ParseError, match="not a JSON document"):
        parse_json_api(b"<html>", API_SELECT, url="https://mid.ru/api/")
    with pytest.raises(ParseError):
        parse_json_api(b"[" * 100_000 + b"]" * 100_000, API_SELECT, url="https://mid.ru/api/")


def test_hostile_markup_is_bounded() -> None:
    deep = "<div>" * 100_000 + '<ul class="board-list"><li><a href="/x">deep</a></li></ul>'
    try:
        items = parse_page_body(deep.encode(), SELECT, url=BASE, time_limit=10).items
    except ParseError:
        items = ()  # refused in bounded time is as good as read
    assert len(items) <= 1
    attribute, text = "x" * 5_000_000, "T" * 50_000
    huge = f'<ul class="board-list"><li><a href="/y" title="{attribute}">{text}</a></li></ul>'
    [item] = parse_page_body(huge.encode(), SELECT, url=BASE).items
    assert len(item.title) <= MAX_FIELD_CHARS
    many = '<ul class="board-list">' + "".join(
        f'<li><a href="/{n}">{n}</a></li>' for n in range(5000)
    )
    page = parse_page_body(many.encode(), SELECT, url=BASE)
    assert len(page.items) == 1000 and page.warning == "read the first 1,000 of 5,000 items"
    with pytest.raises(ParseError, match="empty"):
        parse_page_body(b"  ", SELECT, url=BASE)


def test_follow_refuses_private_addresses_and_keeps_the_item() -> None:
    from feeds.fetch import FetchLimits

    follower = Follower(limits=FetchLimits(timeout=5), allow_private=False, obey_robots=False)
    [blocked] = follower.follow(
        [
            "http://10.0.0.1/article",
        ]
    )
    assert blocked.text == "" and blocked.error and "BlockedURLError" in blocked.error
    assert not blocked.retry  # refused for good: the item keeps the list's text


def test_the_main_text_of_an_article_without_its_menus() -> None:
    html = (
        "<html><body><nav>Home | News | Contact</nav><article><h1>Launch</h1>"
        "<p>North Korea fired an intercontinental ballistic missile on Monday, the Joint "
        "Chiefs of Staff said, the first such launch this year.</p></article>"
        "<footer>Copyright</footer></body></html>"
    )
    text = extract_text(html)
    assert "intercontinental ballistic missile" in text and "Contact" not in text
    page = parse_page(BOARD, SELECT, url=BASE)
    joined = with_article(page.items[0], text)
    assert joined.summary.startswith("The minister met the envoy.")
    assert "intercontinental" in joined.summary and joined.fingerprint != page.items[0].fingerprint
