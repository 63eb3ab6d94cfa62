"""The console in a real headless Chromium (Debian's, driven by Playwright) against a real
``watchfloor run`` on the embedded defaults, fed by three loopback feeds.

One stack serves the whole module: the feeds carry items in English, Korean and Russian and
one wire story in all three feeds before it starts, and the tests publish more while pages
are open. Every wait is for a condition (Playwright's ``expect``, ``wait_until``), never a
sleep. Each main page is saved as ``<page>.png``: to the run's temporary folder, or to
``docs/screenshots/`` for the README with ``make screenshots``
(``WATCHFLOOR_SCREENSHOTS=docs/screenshots``), so a test run leaves the tree clean.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.processes import (
    REPO,
    Service,
    free_port,
    service_env,
    tracebacks,
    wait_until,
    watchfloor,
)
from tests.worker.test_stories import COPIES

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS_ENV = "WATCHFLOOR_SCREENSHOTS"
_RUN_FOLDER = tempfile.mkdtemp(prefix="watchfloor-screens-")
VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 30_000  # bounds a hung wait (a poll, a page); no performance claim
FEEDS = ("yonhap", "reuters", "nknews")
USERS = {"ana": ("analyst", "correct horse battery staple"), "vic": ("viewer", "viewer pass 42")}
WATCHLISTS = {
    "aliases": {"dprk": ["North Korea", "Pyongyang", "북한", "КНДР"]},
    "watchlists": [
        {
            "id": "missile-tests",
            "title": "Missile tests",
            "query": "@dprk AND (missile* OR 미사일 OR ракет*)",
            "severity": "high",
            "channels": ["console"],
        },
        {
            "id": "sanctions",
            "title": "Sanctions",
            "query": "sanction* OR санкци* OR 제재",
            "severity": "medium",
            "channels": ["console"],
        },
        {
            "id": "hostile",
            "title": "Hostile text canary",
            "query": "zircon",
            "severity": "low",
            "channels": ["console"],
        },
    ],
}
KO_MISSILE = "북한, 서해상으로 미사일 발사…합참 긴급회의"
KO_SANCTIONS = "정부, 북한 해운사 제재 확대"
RU_MISSILE = "КНДР запустила крылатые ракеты над Жёлтым морем"
RU_SANCTIONS = "Япония ввела санкции против российских банков"
EN_SANCTIONS = "EU widens sanctions on shipping firms"
SEEDED = {
    "yonhap": [
        (KO_MISSILE, "합참은 북한이 오늘 오전 서해상으로 순항미사일 여러 발을 쐈다고 밝혔다."),
        (KO_SANCTIONS, "정부는 북한 해운사 세 곳을 독자 제재 대상에 추가했다."),
    ],
    "nknews": [
        (RU_MISSILE, "Пхеньян провёл пуски над Жёлтым морем 12 октября, сообщил Сеул."),
        (RU_SANCTIONS, "Токио добавил в список ещё пять банков."),
    ],
    "reuters": [(EN_SANCTIONS, "The bloc added twelve tankers to its list on Monday.")],
}
SEEDED_ALERTS = 6  # the five above (five events) and the wire story, once for its copies
XSS_TITLE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@dataclass
class Stack:
    base: str
    feeds: FeedServer
    service: Service
    db: Path


def _scalar(db: Path, sql: str, **params: object) -> int:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar() or 0)
    except sa.exc.OperationalError:  # not migrated yet, or locked for a moment
        return -1
    finally:
        engine.dispose()


def _seeded(db: Path) -> bool:
    wire = next(iter(COPIES.values()))[0]
    sources = _scalar(
        db,
        "SELECT COUNT(DISTINCT feed_id) FROM items WHERE story_id ="
        " (SELECT story_id FROM items WHERE title = :title)",
        title=wire,
    )
    return sources == len(FEEDS) and _scalar(db, "SELECT COUNT(*) FROM matches") == SEEDED_ALERTS


def _env(tmp: Path, config_dir: Path, port: int) -> dict[str, str]:
    env = service_env(tmp, config_dir, database_url="", broker_url=None)
    del env["WATCHFLOOR_DATABASE_URL"]  # the embedded default: SQLite under WATCHFLOOR_VAR_DIR
    env["WATCHFLOOR_WEB_BIND"] = f"127.0.0.1:{port}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(var, None)  # everything is on loopback
    return env


def _add_users(env: dict[str, str]) -> None:
    for name, (role, password) in USERS.items():
        argv = [sys.executable, "-m", "worker", "user", "add", name, "--role", role]
        subprocess.run(
            [*argv, "--password-stdin"],
            input=password + "\n",
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )


# Works around a start-up race of the embedded broker (kombu's SQLAlchemy transport): beat and
# the worker, two processes, both insert the first ``kombu_queue`` row; the loser's
# IntegrityError is never rolled back, so beat never sends a task again and nothing is polled.
# Declaring the queues once before ``watchfloor run`` starts removes the race, not the poll.
DECLARE_QUEUES = """
from worker.app import app
with app.connection_for_write() as conn:
    for name in ("poll", "deliver"):
        conn.default_channel.queue_declare(queue=name)
"""


def _declare_broker_queues(env: dict[str, str]) -> None:
    argv = [sys.executable, "-c", DECLARE_QUEUES]
    subprocess.run(argv, env=env, cwd=REPO, check=True, capture_output=True, timeout=60)


def _publish_seed(feeds: FeedServer) -> None:
    for name in FEEDS:
        feeds.publish(name)  # the feed exists, empty until something is published
    for i, (name, (title, summary)) in enumerate(COPIES.items()):
        feeds.publish(name, FeedEntry(f"wire-{i}", title, summary))
    for name, entries in SEEDED.items():
        for i, (title, summary) in enumerate(entries):
            feeds.publish(name, FeedEntry(f"{name}-seed-{i}", title, summary))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run scripts/ensure-browser (make test does)")
    tmp = tmp_path_factory.mktemp("console")
    with FeedServer() as feeds:
        _publish_seed(feeds)
        config_dir = write_config(
            tmp / "config",
            feeds=[{"id": name, "url": feeds.url(name), "interval": "1s"} for name in FEEDS],
            watchlists=WATCHLISTS,
        )
        port = free_port()
        env = _env(tmp, config_dir, port)
        _add_users(env)
        _declare_broker_queues(env)
        service = watchfloor(env, tmp / "run.log", "run")
        Service.started.remove(service)  # lives for the module, not one test (tests/conftest.py)
        base, db = f"http://127.0.0.1:{port}", tmp / "var" / "watchfloor.db"
        try:
            assert wait_until(lambda: _healthy(base), 60), service.log()
            assert wait_until(lambda: _seeded(db), 90), service.log()
            yield Stack(base, feeds, service, db)
        finally:
            service.stop()
        assert tracebacks(service.log()) == [], service.log()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        expect.set_options(timeout=WAIT_MS)  # a poll, a page load under a busy machine
        yield chromium
        chromium.close()


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(WAIT_MS)
    return context


def log_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(USERS[name][1])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("header.top .who")).to_contain_text(f"{name} ({USERS[name][0]})")


@pytest.fixture(scope="module")
def analyst_context(stack: Stack, browser: Browser) -> Iterator[BrowserContext]:
    context = new_context(browser)
    log_in(context.new_page(), stack.base, "ana")
    yield context
    context.close()


@pytest.fixture
def page(analyst_context: BrowserContext) -> Iterator[Page]:
    """A fresh tab of the analyst's signed-in session; its console must stay free of errors
    (a Content-Security-Policy violation is one)."""
    tab = analyst_context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    tab.close()
    assert errors == []


def shoot(page: Page, name: str) -> None:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or _RUN_FOLDER)
    folder = folder if folder.is_absolute() else REPO / folder
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=False)
    assert "built-in method" not in page.inner_text("body")  # a dict's method shown as a field


def titles(page: Page) -> list[str]:
    return page.locator("#alerts article.alert h2").all_inner_texts()


def filter_alerts(page: Page, base: str, **fields: str) -> list[str]:
    """Fill the alerts page's filter form as an analyst does, submit it, read the titles."""
    page.goto(f"{base}/")
    form = page.locator("form.filters")
    labels = {"q": "Search", "watchlist": "Watch-list", "language": "Language", "triage": "Triage"}
    for field, value in fields.items():
        control = form.get_by_label(labels[field])
        if field == "q":
            control.fill(value)
        else:
            control.select_option(label=value)
    with page.expect_navigation():
        form.get_by_role("button", name="Filter").click()
    return titles(page)


def open_wire_story(page: Page, base: str) -> None:
    filter_alerts(page, base, watchlist="Missile tests", language="English")
    link = page.locator("#alerts article.alert h2 a")
    expect(link).to_have_count(1)
    with page.expect_navigation():
        link.click()
    expect(page).to_have_url(re.compile(r"/stories/\d+"))


def test_login_refuses_a_wrong_password_and_lands_on_the_alerts_page(
    stack: Stack, browser: Browser
) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{stack.base}/login")
        page.get_by_label("Name").fill("ana")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
        expect(page.locator("header.top")).to_have_count(0)
        page.goto(f"{stack.base}/feeds")
        expect(page).to_have_url(re.compile(r"/login\?next=/feeds"))
        shoot(page, "login")
        page.get_by_label("Name").fill("ana")
        page.get_by_label("Password").fill(USERS["ana"][1])
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{stack.base}/feeds")  # back where the login was asked for
        page.get_by_role("link", name="Alerts", exact=True).click()
        expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
        expect(page.locator("header.top .who")).to_contain_text("ana (analyst)")
        shown = set(titles(page))
        assert {KO_MISSILE, RU_MISSILE, KO_SANCTIONS, RU_SANCTIONS, EN_SANCTIONS} <= shown
    finally:
        context.close()


def test_an_alert_from_a_real_poll_appears_without_a_reload(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.base}/")
    expect(page.locator("#alerts article.alert").first).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded
    title = "UN panel finds sanctions evasion by a tanker fleet off Nakhodka"
    stack.feeds.publish("reuters", FeedEntry("live-1", title, "Ship-to-ship transfers."))
    card = page.locator("#alerts article.alert.live-new", has_text=title)
    expect(card).to_be_visible()
    expect(card.locator(".watchlist")).to_have_text("Sanctions")
    expect(card.locator(".source")).to_have_text("reuters")
    expect(page.locator("#live-status")).to_have_text("New alerts arrived while you were reading.")
    assert page.evaluate("window.__sameDocument") is True
    assert titles(page)[0] == title  # newest first
    shoot(page, "alerts")


def test_filter_and_search_in_english_korean_and_russian(stack: Stack, page: Page) -> None:
    base = stack.base
    assert sorted(filter_alerts(page, base, language="Korean")) == sorted(
        [KO_MISSILE, KO_SANCTIONS]
    )
    assert sorted(filter_alerts(page, base, language="Russian")) == sorted(
        [RU_MISSILE, RU_SANCTIONS]
    )
    # a Korean noun found with its particle attached (북한 in 북한의), a Russian stem inflected
    assert sorted(filter_alerts(page, base, q="북한")) == sorted([KO_MISSILE, KO_SANCTIONS])
    assert filter_alerts(page, base, q="ракет") == [RU_MISSILE]
    wire = filter_alerts(page, base, q="ballistic missile")
    assert len(wire) == 1 and wire[0] in {title for title, _ in COPIES.values()}
    sanctions = filter_alerts(page, base, watchlist="Sanctions", language="English")
    assert EN_SANCTIONS in sanctions
    assert set(page.locator("#alerts .watchlist").all_inner_texts()) == {"Sanctions"}
    assert not [t for t in sanctions if re.search("[\uac00-\ud7a3\u0400-\u04ff]", t)]

    def search(words: str) -> list[str]:
        page.goto(f"{base}/search")
        page.get_by_label("Words").fill(words)
        with page.expect_navigation():
            page.get_by_role("button", name="Search").click()
        return page.locator("article.item h2").all_inner_texts()

    assert sorted(search("ракет")) == [RU_MISSILE]
    assert sorted(search("санкции")) == [RU_SANCTIONS]
    assert sorted(search("missile")) == sorted(title for title, _ in COPIES.values())
    assert sorted(search("북한")) == sorted([KO_MISSILE, KO_SANCTIONS])
    expect(page.locator("p.meta").first).to_have_text("2 item(s)")
    shoot(page, "search")


def test_a_story_carried_by_three_feeds_lists_three_sources(stack: Stack, page: Page) -> None:
    open_wire_story(page, stack.base)
    expect(page.locator("p.meta").first).to_contain_text("3 reports")
    rows = page.locator("table.sources tr.source-row")
    expect(rows).to_have_count(3)
    assert sorted(rows.locator("td:nth-child(2)").all_inner_texts()) == sorted(FEEDS)
    seen = rows.locator("td:nth-child(1)").all_inner_texts()
    assert seen == sorted(seen)  # in time order
    assert sorted(rows.locator("td:nth-child(4)").all_inner_texts()) == sorted(
        title for title, _ in COPIES.values()
    )
    fired = page.locator("article.alert")
    expect(fired).to_have_count(1)  # one alert for the story, not one per copy
    expect(fired.locator(".watchlist")).to_have_text("Missile tests")
    expect(fired.locator(".snippet mark").first).to_be_visible()
    expect(page.locator("table.deliveries tbody tr td:nth-child(2)")).to_have_text("console")


def test_triage_acknowledge_assign_false_positive_and_history(
    stack: Stack, page: Page, browser: Browser
) -> None:
    open_wire_story(page, stack.base)
    story_url = page.url
    alert = page.locator("article.alert")
    with page.expect_navigation():
        alert.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(alert.locator(".badge.ack")).to_have_text("acknowledged by ana")
    alert.get_by_label("Assignee").select_option("ana")
    with page.expect_navigation():
        alert.get_by_role("button", name="Assign").click()
    expect(alert.locator(".badge.assigned")).to_have_text("assigned to ana")
    alert.get_by_label("False positive reason").fill("an announced drill, not a launch")
    with page.expect_navigation():
        alert.get_by_role("button", name="Mark false positive").click()
    expect(alert.locator(".badge.fp")).to_have_text("false positive")
    expect(alert.get_by_role("button", name="Not a false positive")).to_be_visible()
    history = page.locator("ol.history li")
    expect(history).to_have_count(3)
    expect(history.nth(0)).to_contain_text("ana acknowledge")
    expect(history.nth(1)).to_contain_text("ana assign: ana")
    expect(history.nth(2)).to_contain_text("ana false positive: an announced drill, not a launch")
    shoot(page, "story")

    marked = filter_alerts(page, stack.base, triage="false positive")
    assert marked and set(marked) <= {title for title, _ in COPIES.values()}

    viewer = new_context(browser)
    try:
        tab = viewer.new_page()
        log_in(tab, stack.base, "vic")
        tab.goto(story_url)
        expect(tab.locator("ol.history li")).to_have_count(3)  # a viewer reads the history
        expect(tab.locator(".triage, form.story-triage")).to_have_count(0)  # and cannot triage
    finally:
        viewer.close()


def test_the_playground_explains_a_match(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.base}/playground")
    page.get_by_label("Title").fill("Seoul stocks close higher on chip exports")
    with page.expect_navigation():
        page.get_by_role("button", name="Try").click()
    expect(page.locator("#no-match")).to_have_text("No watch-list fires on this text.")

    page.get_by_label("Title").fill("북한의 미사일 발사")
    page.get_by_label("Text").fill("")
    with page.expect_navigation():
        page.get_by_role("button", name="Try").click()
    explain = page.locator("article.explain")
    expect(explain).to_have_count(1)
    expect(explain.get_by_role("heading")).to_have_text("missile-tests fires")
    marks = explain.locator(".snippet mark").all_inner_texts()
    assert "북한" in marks and "미사일" in marks  # the terms, highlighted inside 북한의
    expect(explain.locator(".snippet")).to_contain_text("북한의 미사일 발사")
    expect(explain.locator("ul.hits")).to_contain_text("북한 in title")
    shoot(page, "playground")

    page.get_by_label("Draft query (optional)").fill("ракет* AND NOT учени*")
    page.get_by_label("Title").fill("КНДР запустила ракеты")
    page.get_by_label("Text").fill("")
    with page.expect_navigation():
        page.get_by_role("button", name="Try").click()
    expect(explain.get_by_role("heading")).to_have_text("draft fires")
    expect(explain.locator(".snippet mark")).to_have_text("ракеты")


def test_feeds_and_watchlist_pages(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.base}/feeds")
    rows = page.locator("table.feeds tbody tr")
    expect(rows).to_have_count(3)
    assert sorted(rows.locator("td:nth-child(1)").all_inner_texts()) == sorted(FEEDS)
    assert set(rows.locator("td:nth-child(2)").all_inner_texts()) == {"ok"}
    shoot(page, "feeds")

    page.goto(f"{stack.base}/watchlists")
    expect(page.locator("table.watchlists tbody tr")).to_have_count(3)
    shoot(page, "watchlists")
    page.get_by_role("link", name="Missile tests").click()
    expect(page.get_by_role("heading", name="Missile tests", exact=True)).to_be_visible()
    query = page.locator("dl.query")
    expect(query).to_contain_text("@dprk AND (missile* OR 미사일 OR ракет*)")
    expect(query).to_contain_text("North Korea · Pyongyang · 북한 · КНДР")  # the alias expanded
    expect(page.locator("article.alert", has_text=KO_MISSILE)).to_be_visible()
    shoot(page, "watchlist")


def _assert_inert(page: Page) -> None:
    """The hostile title is on the page as text; none of it ran or became an element."""
    expect(page.get_by_text(XSS_TITLE, exact=True).first).to_be_visible()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("main script").count() == 0


def test_a_hostile_feed_title_renders_as_text_and_runs_nothing(stack: Stack, page: Page) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto(f"{stack.base}/")
    assert response is not None
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    summary = "A zircon canary: <b>bold</b> text &lt;script&gt;alert(1)&lt;/script&gt;"
    stack.feeds.publish("reuters", FeedEntry("hostile-1", XSS_TITLE, summary))
    card = page.locator("#alerts article.alert.live-new", has_text="zircon")
    expect(card).to_be_visible()  # as the live stream renders it (app.js, textContent)
    _assert_inert(page)

    page.reload()  # as the server renders it (Jinja2, autoescaped)
    card = page.locator("#alerts article.alert", has_text="zircon")
    expect(card.locator("h2")).to_have_text(XSS_TITLE)
    _assert_inert(page)

    with page.expect_response(re.compile(r"/stories/\d+$")) as story:
        card.locator("h2 a").click()
    assert "script-src 'self'" in story.value.headers.get("content-security-policy", "")
    expect(page.get_by_role("heading", level=1)).to_have_text(XSS_TITLE)
    _assert_inert(page)
    assert not [url for url in requested if url.endswith("/x")]  # no <img src=x> was loaded
    assert {url.split("/")[2] for url in requested} == {stack.base.split("/")[2]}
