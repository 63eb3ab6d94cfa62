"""``render: browser`` on real parts: Debian's headless Chromium renders a list page that
builds its rows with JavaScript, on a loopback site, through the real poll path.

The page is served as ``localhost``; a second site on 127.0.0.1 (another host and port) plays
every address the page must not reach. Its log shows what the browser was kept from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from common.errors import BlockedURLError, FetchError
from feeds.fetch import FetchLimits
from feeds.render import CHROMIUM, render_page
from tests.helpers.configdir import write_config
from tests.helpers.site import Site
from tests.worker.test_page_sources import WATCHLISTS, article, page_runtime, today
from worker import pipeline
from worker.models import Feed, MatchRow
from worker.runtime import Runtime, build_runtime

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True)
def _chromium() -> None:
    if not Path(CHROMIUM).is_file():
        pytest.fail("no /usr/bin/chromium: run scripts/ensure-browser (make test does)")


def as_localhost(site: Site, path: str) -> str:
    return site.url(path).replace("127.0.0.1", "localhost", 1)


def scripted_list(rows: list[tuple[str, str, str]], elsewhere: str) -> str:
    """A board whose rows exist only after its script ran; the script also tries to reach
    another address (a fetch, an image, a frame), as a hostile page would."""
    return (
        "<html><head><title>Releases</title></head><body><ul class='board-list'></ul>"
        f"<img src='{elsewhere}/pixel.gif'><iframe src='{elsewhere}/frame'></iframe><script>"
        f"const rows = {json.dumps(rows)};"
        "const list = document.querySelector('ul.board-list');"
        "for (const [href, title, date] of rows) {"
        "  const li = document.createElement('li');"
        "  li.innerHTML = `<a href='${href}'>${title}</a><span class='date'>${date}</span>`;"
        "  list.appendChild(li);"
        "}"
        f"fetch('{elsewhere}/secret').then(r => r.text())"
        ".then(t => document.body.insertAdjacentHTML('beforeend', `<p id='leak'>${t}</p>`))"
        ".catch(() => {});"
        "</script></body></html>"
    )


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    with Site() as page, Site() as other:
        other.put("/secret", "SECRET-TOKEN", content_type="text/plain")
        yield page, other


@pytest.fixture
def rt(
    tmp_path: Path, engine: sa.Engine, db_url: str, sites: tuple[Site, Site]
) -> Iterator[Runtime]:
    page, _ = sites
    feed = {
        "id": "jcs-press",
        "type": "page",
        "render": "browser",
        "url": as_localhost(page, "/releases"),
        "select": {"item": "ul.board-list > li", "link": "a@href", "title": "a", "date": ".date"},
        "follow": True,
        "follow_delay": "10ms",
    }
    with page_runtime(tmp_path, db_url, feed) as runtime:
        yield runtime


def test_a_scripted_row_alerts_once_and_the_page_reaches_nothing_else(
    rt: Runtime, sites: tuple[Site, Site]
) -> None:
    page, other = sites
    elsewhere = other.url("")
    page.put("/releases", scripted_list([("/news/1", "Old notice", "2025.01.02")], elsewhere))
    first = pipeline.poll_feed(rt, "jcs-press")
    assert first.status == "ok", first.error
    assert [item.title for _, item in first.new_items] == ["Old notice"]
    page.put("/news/2", article("Press release 2", "North Korea fired an ICBM from Pyongyang."))
    rows = [("/news/2", "Press release 2", today()), ("/news/1", "Old notice", "2025.01.02")]
    page.put("/releases", scripted_list(rows, elsewhere))
    second = pipeline.poll_feed(rt, "jcs-press")
    assert [item.title for _, item in second.new_items] == ["Press release 2"]
    [(_, match)] = second.matches
    assert {hit.field for hit in match.hits} == {"summary"}  # from the followed article
    assert all("SECRET" not in item.summary for _, item in second.new_items)
    third = pipeline.poll_feed(rt, "jcs-press")
    assert third.new_items == [] and third.matches == []
    with rt.sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(MatchRow)) == 1
    assert other.requests() == []  # no fetch, image or frame got out
    assert len(page.requests("/releases")) == 3


def test_without_render_the_scripted_page_is_a_selector_error(
    rt: Runtime, sites: tuple[Site, Site], tmp_path: Path
) -> None:
    """The reason the option exists: the HTML as served has no rows."""
    page, other = sites
    page.put("/releases", scripted_list([("/news/1", "Notice", today())], other.url("")))
    feed = {
        "id": "plain",
        "type": "page",
        "url": as_localhost(page, "/releases"),
        "select": {"item": "ul.board-list > li", "link": "a@href", "title": "a"},
    }
    config_dir = write_config(tmp_path / "plain", feeds=[feed], watchlists=WATCHLISTS)
    plain = build_runtime(replace(rt.settings, config_dir=config_dir))
    try:
        outcome = pipeline.poll_feed(plain, "plain")
        with plain.sessions() as s:
            error = s.get(Feed, "plain").last_error  # type: ignore[union-attr]
    finally:
        plain.engine.dispose()
    assert outcome.status == "error" and "SelectorError" in (error or "")


def test_a_redirect_to_another_address_is_not_followed(sites: tuple[Site, Site]) -> None:
    page, other = sites
    page.put("/moved", b"", status=302, headers=(("Location", other.url("/secret")),))
    try:
        result = render_page(as_localhost(page, "/moved"), allow_private=True)
    except FetchError:
        result = None
    assert result is None or b"SECRET" not in (result.body or b"")
    assert other.requests() == []


def test_private_addresses_are_refused_before_the_browser_starts(
    sites: tuple[Site, Site],
) -> None:
    page, _ = sites
    with pytest.raises(BlockedURLError, match="loopback"):
        render_page(as_localhost(page, "/releases"), allow_private=False)
    with pytest.raises(BlockedURLError):
        render_page("file:///etc/passwd", allow_private=True)
    assert page.requests() == []


def test_a_huge_rendered_page_is_capped(sites: tuple[Site, Site]) -> None:
    page, _ = sites
    page.put("/huge", "<html><body>" + "<p>row</p>" * 50_000 + "</body></html>")
    with pytest.raises(FetchError, match="larger than the 100,000-byte cap"):
        render_page(
            as_localhost(page, "/huge"), allow_private=True, limits=FetchLimits(max_bytes=100_000)
        )


def test_a_missing_browser_is_a_recorded_error(sites: tuple[Site, Site], tmp_path: Path) -> None:
    page, _ = sites
    with pytest.raises(FetchError, match="needs Chromium"):
        render_page(
            as_localhost(page, "/releases"), allow_private=True, chromium=str(tmp_path / "none")
        )


def test_render_is_for_page_sources_only() -> None:
    from pydantic import ValidationError

    from feeds.sources import FeedSource

    with pytest.raises(ValidationError, match="render: browser is for type: page"):
        FeedSource(id="f", url="https://example.org/feed", render="browser")
    select = {"item": "li", "link": "a@href", "title": "a"}
    source = FeedSource(id="p", url="https://example.org/", type="page", select=select)
    assert source.render == "none"
