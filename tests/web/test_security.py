"""The console's security, shown against a real server (issue 12, "What must be shown" 2).

Each database gets one ``watchfloor web`` subprocess for the module, seeded with users
(the CLI and ``worker.store.users``), API tokens (the CLI) and an alert filed into a
story (the store), and is talked to with httpx over loopback. A second server, whose
public URL is https, shows the Secure cookie and takes the login throttling, which would
lock every other test out of the first one. The in-browser XSS check is a browser test.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from alerts.types import Hit, Match
from feeds.sources import FeedSource
from feeds.types import FeedItem
from tests.conftest import pg_schema, sqlite_url
from tests.helpers.configdir import write_config
from tests.helpers.processes import (
    REPO,
    Service,
    free_port,
    service_env,
    wait_until,
    watchfloor,
)
from worker.db import make_engine, session_factory, upgrade
from worker.models import ApiToken, MissedItem, TriageEvent, User, utcnow
from worker.outbox import store as outbox
from worker.store import feeds, items
from worker.store import users as users_store
from worker.stories import file_items

WATCHLIST = "missile-tests"  # tests/helpers/configdir.py DEFAULT_WATCHLISTS
FEED = {"id": "wire", "url": "http://127.0.0.1:9/feed.xml"}  # never polled: web only
SESSION_COOKIE = "watchfloor_session"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EVIL_NEXT = ("//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example")


def _secret(label: str) -> str:
    """A password or marker no page, log or row could hold by chance."""
    return f"{label}-{secrets.token_urlsafe(16)}"


@dataclass
class Console:
    """A running server, its database and what was seeded into it."""

    url: str
    database_url: str
    env: dict[str, str]
    server: Service
    engine: sa.Engine
    sessions: sessionmaker[Session]
    ids: dict[str, Any]
    passwords: dict[str, str]
    tokens: dict[str, str]
    secrets: list[str] = field(default_factory=list)  # must never appear in clear
    cli_output: list[str] = field(default_factory=list)  # all of it, but `token add`'s print

    def client(self) -> httpx.Client:
        """A browser of its own (closed after the test). It keeps Secure cookies over plain
        HTTP too: the test stands where the TLS proxy would."""
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

        def keep_secure_cookies(_response: httpx.Response) -> None:
            for cookie in client.cookies.jar:
                cookie.secure = False

        client.event_hooks["response"] = [keep_secure_cookies]
        _OPEN.append(client)
        return client

    def csrf(self, client: httpx.Client) -> str:
        """A CSRF token of this client's session, from the login page (a public one)."""
        page = client.get("/login")
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, page.text
        return found.group(1)

    def login(self, name: str, password: str | None = None) -> tuple[httpx.Client, str]:
        """A signed-in client and its session's CSRF token (a new one: login renews it)."""
        client = self.client()
        token = self.csrf(client)
        response = post_login(client, token, name, password or self.passwords[name])
        assert response.status_code == 302, response.text
        return client, self.signed_in_csrf(client)

    def signed_in_csrf(self, client: httpx.Client) -> str:
        page = client.get("/feeds")  # every page has the logout form
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, page.text
        return found.group(1)

    def cli(self, *commands: tuple[str, ...], stdin: str = "") -> list[str]:
        """Run CLI commands side by side (each is a fresh interpreter); their stdouts."""
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "worker", *argv],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for argv in commands
        ]
        outs = []
        for argv, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(stdin, timeout=120)
            assert proc.returncode == 0, (argv, out, err)
            self.cli_output.append(err)
            if argv[:2] != ("token", "add"):
                self.cli_output.append(out)
            outs.append(out)
        return outs

    def user_id(self, name: str) -> int:
        with self.sessions() as session:
            found = users_store.by_name(session, name)
        assert found is not None
        return found.id

    def add_user(self, role: str) -> str:
        """A user of its own for one test (in the store, no CLI round trip)."""
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        self.passwords[name] = password = _secret(f"pw-{name}")
        self.secrets.append(password)
        with self.sessions.begin() as session:
            users_store.add_user(session, name, role, password, utcnow())
        return name


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def post_login(
    client: httpx.Client, csrf: str | None, name: str, password: str, **form: str
) -> httpx.Response:
    data = {"name": name, "password": password, **form}
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post("/login", data=data)


# --- the servers ----------------------------------------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """``db_url`` of tests/conftest.py, for the module: a SQLite file or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path_factory.mktemp("sqlite"))
        return
    with pg_schema() as url:
        yield url


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _serve(tmp: Path, database_url: str, **extra: str) -> tuple[Service, str, dict[str, str]]:
    config_dir = write_config(tmp / "config", feeds=[FEED])
    env = service_env(tmp, config_dir, database_url, None, **extra)
    port = free_port()
    server = watchfloor(env, tmp / "web.log", "web", "--bind", f"127.0.0.1:{port}")
    Service.started.remove(server)  # the module's server: its fixture stops it, not each test
    return server, f"http://127.0.0.1:{port}", env


def _wait_healthy(console: Console) -> None:
    up = wait_until(lambda: not console.server.alive() or _healthy(console.url))
    assert up and console.server.alive(), console.server.log()


def _seed_alert(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """One item, filed into a story, that fired the watch-list: what triage works on."""
    now = utcnow()
    title = "Pyongyang fires ballistic missile into the sea"
    item = FeedItem(
        guid="wire-1",
        title=title,
        url="https://news.example.org/2026/missile",
        summary="North Korea launched a ballistic missile, officials said.",
        published_at=now,
        fingerprint="f" * 64,
    )
    start = title.index("ballistic missile")
    hit = Hit("ballistic missile", "title", start, start + 17, title)
    with sessions.begin() as session:
        feeds.sync(session, [FeedSource(**FEED)], now)
        [(item_id, stored)] = items.insert_new(session, FEED["id"], [item], now)
        story_id = file_items(session, [(item_id, stored)], now)[item_id]
        match = Match(WATCHLIST, (hit,), title)
        match_id = outbox.insert_alert(session, item_id, story_id, "", "high", match, now)
    return {"item_id": item_id, "story_id": story_id, "match_id": match_id}


def _console(tmp: Path, database_url: str, seed: bool, **extra: str) -> Console:
    """The server starts (it reads the database only when asked) while the test migrates
    and seeds the database in this process."""
    server, url, env = _serve(tmp, database_url, **extra)
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        ids = _seed_alert(sessions) if seed else {}
    except BaseException:
        server.stop()
        raise
    return Console(url, database_url, env, server, engine, sessions, ids, {}, {})


@pytest.fixture(scope="module")
def console(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The server on each database, with a viewer and an analyst, a live token and a
    revoked one (the store: the CLI's own users and token are the leak test's), and an
    alert in a story."""
    console = _console(tmp_path_factory.mktemp("console"), database_url, seed=True)
    try:
        now = utcnow()
        with console.sessions.begin() as session:
            for role in ("viewer", "analyst"):
                console.passwords[role] = _secret(f"pw-{role}")
                users_store.add_user(session, role, role, console.passwords[role], now)
            good = users_store.add_token(session, "reader", "viewer", now)
            revoked = users_store.add_token(session, "doomed", "viewer", now)
            users_store.revoke_token(session, "doomed", now)
        console.tokens = {"good": good, "revoked": revoked}
        console.secrets += [*console.passwords.values(), good, revoked]
        _wait_healthy(console)
        yield console
    finally:
        console.server.stop()
        console.engine.dispose()


def _bare_console(tmp: Path, **extra: str) -> Iterator[Console]:
    console = _console(tmp, sqlite_url(tmp), seed=False, **extra)
    try:
        _wait_healthy(console)
        yield console
    finally:
        console.server.stop()
        console.engine.dispose()


@pytest.fixture(scope="module")
def https_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A second server (SQLite) whose public URL is https."""
    public = {"WATCHFLOOR_PUBLIC_URL": "https://console.example"}
    yield from _bare_console(tmp_path_factory.mktemp("https"), **public)


@pytest.fixture(scope="module")
def throttled_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A server of its own for the throttling test: its failed logins from 127.0.0.1 would
    lock any other test that shares the server out of it."""
    yield from _bare_console(tmp_path_factory.mktemp("throttle"))


# --- no session, no access --------------------------------------------------------------------

PUBLIC = {
    "static": 200,
    "auth.healthz": 200,
    "auth.login": 200,
    "auth.login_post": 401,
    # the WebSub callback: a hub has no login; an unknown token reads nothing (410: go away)
    "websub.verify": 404,
    "websub.push": 410,
}


def _routes(console: Console) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) for every rule of the app's url_map, ids substituted."""
    from web.app import create_app
    from worker.runtime import build_runtime
    from worker.settings import load_settings

    rt = build_runtime(load_settings(console.env))
    try:
        app = create_app(rt)
    finally:
        rt.engine.dispose()
    values = {
        **console.ids,
        "watchlist_id": WATCHLIST,
        "filename": "style.css",
        "token": "no-such-subscription",
    }
    adapter = app.url_map.bind("127.0.0.1")
    routes = []
    for rule in app.url_map.iter_rules():
        assert rule.arguments <= values.keys(), f"no test value for {rule.rule}"
        path = adapter.build(rule.endpoint, {k: values[k] for k in rule.arguments})
        # OPTIONS is Flask's automatic answer: the allowed methods, no data
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            routes.append((rule.endpoint, method, path))
    return routes


def test_every_route_refuses_a_request_without_a_session(console: Console) -> None:
    client = console.client()
    csrf = console.csrf(client)  # an anonymous session's: the refusal is the login check's
    wrong: list[str] = []
    answered = set()
    routes = _routes(console)
    extra = [("unknown", "GET", "/no-such-page"), ("unknown", "GET", "/api/v1/no-such")]
    for endpoint, method, path in routes + extra:
        data = {"csrf_token": csrf} if method == "POST" else None  # no name: a failed login
        response = client.request(method, path, data=data)
        got = (response.status_code, urlsplit(response.headers.get("location", "")).path)
        if endpoint in PUBLIC:
            expected = (PUBLIC[endpoint], "")
            answered.add(endpoint)
        elif path.startswith("/api/") or endpoint == "api.watchlist_feed":
            expected = (401, "")
        else:
            expected = (302, "/login")
        if got != expected:
            wrong.append(f"{method} {path} ({endpoint}): {got}, expected {expected}")
    assert not wrong, "\n".join(wrong)
    assert answered == PUBLIC.keys()
    assert {"api.alerts", "api.watchlist_feed", "triage.alert"} <= {e for e, _, _ in routes}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_and_atom_feed_take_a_live_token_only(console: Console) -> None:
    client = console.client()
    api, atom = "/api/v1/alerts", f"/watchlists/{WATCHLIST}/feed.atom"
    good, revoked = console.tokens["good"], console.tokens["revoked"]
    wrong = "wft_" + secrets.token_urlsafe(32)
    refused = [
        (api, {}, {}),
        (atom, {}, {}),
        (api, _bearer(wrong), {}),
        (atom, _bearer(wrong), {}),
        (api, _bearer(revoked), {}),
        (atom, _bearer(revoked), {}),
        (api, _bearer(good[:-1]), {}),
        (atom, {}, {"token": wrong}),
        (atom, {}, {"token": revoked}),
        (api, {}, {"token": good}),  # ?token= is for feed readers: the Atom feed only
        (api, {"Authorization": good}, {}),  # not a Bearer header
    ]
    for path, headers, params in refused:
        response = client.get(path, headers=headers, params=params)
        assert response.status_code == 401, (path, headers, params)

    listed = client.get(api, headers=_bearer(good))
    assert listed.status_code == 200
    assert len(listed.json()["alerts"]) == 1
    for headers, params in ((_bearer(good), {}), ({}, {"token": good})):
        feed = client.get(atom, headers=headers, params=params)
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("application/atom+xml")
        root = ElementTree.fromstring(feed.content)
        assert len(root.findall("{http://www.w3.org/2005/Atom}entry")) == 1


# --- CSRF and roles -----------------------------------------------------------------------------


def _posts(console: Console) -> list[tuple[str, dict[str, str]]]:
    ids = console.ids
    return [
        (f"/alerts/{ids['match_id']}/triage", {"action": "acknowledge"}),
        (f"/stories/{ids['story_id']}/triage", {"action": "comment", "detail": "seen it"}),
        (f"/items/{ids['item_id']}/missed", {"watchlist": WATCHLIST, "note": "should fire"}),
        (f"/watchlists/{WATCHLIST}/backtest", {"query": "missile", "since": "7d"}),
    ]


def _recorded(console: Console, user_id: int) -> tuple[list[Any], list[Any]]:
    """The triage events and missed-item flags of one user."""
    with console.sessions() as session:
        events = session.execute(
            sa.select(TriageEvent.match_id, TriageEvent.action, TriageEvent.created_at)
            .where(TriageEvent.user_id == user_id)
            .order_by(TriageEvent.id)
        ).all()
        missed = session.execute(
            sa.select(MissedItem.item_id, MissedItem.watchlist_id, MissedItem.created_at).where(
                MissedItem.user_id == user_id
            )
        ).all()
    return list(events), list(missed)


def test_state_changing_requests_need_the_sessions_csrf_token(console: Console) -> None:
    name = console.add_user("analyst")
    client = console.client()
    before_login = console.csrf(client)  # this session's, but from before the login
    assert post_login(client, before_login, name, console.passwords[name]).status_code == 302
    assert console.signed_in_csrf(client) != before_login
    other_sessions = console.csrf(console.client())
    for path, form in [*_posts(console), ("/logout", {})]:
        for token in (None, "not-a-token", other_sessions, before_login):
            data = form if token is None else {**form, "csrf_token": token}
            response = client.post(path, data=data)
            assert response.status_code == 403, (path, token, response.text)
        response = client.post(path, data=form, headers={"X-CSRFToken": other_sessions})
        assert response.status_code == 403, (path, "header")
    assert _recorded(console, console.user_id(name)) == ([], [])
    assert client.get("/login").status_code == 302  # the refused logout left it signed in

    anonymous = console.client()
    console.csrf(anonymous)  # a session of its own, whose token is not sent
    for token in (None, "not-a-token", other_sessions):  # the right password, even
        response = post_login(anonymous, token, name, console.passwords[name])
        assert response.status_code == 403, token
    assert anonymous.get("/login").status_code == 200  # not signed in


def test_viewer_is_refused_on_the_server_and_analyst_is_recorded(console: Console) -> None:
    viewer, analyst = console.add_user("viewer"), console.add_user("analyst")
    client, csrf = console.login(viewer)
    for path, form in _posts(console):
        response = client.post(path, data={**form, "csrf_token": csrf})
        assert response.status_code == 403, (path, response.text)
    assert _recorded(console, console.user_id(viewer)) == ([], [])

    client, csrf = console.login(analyst)
    before = utcnow()
    for path, form in _posts(console):
        response = client.post(path, data={**form, "csrf_token": csrf})
        assert response.status_code in (200, 302), (path, response.text)
    after = utcnow()
    events, missed = _recorded(console, console.user_id(analyst))
    ids = console.ids
    assert [(e.match_id, e.action) for e in events] == [
        (ids["match_id"], "acknowledge"),
        (ids["match_id"], "comment"),
    ]
    assert [(m.item_id, m.watchlist_id) for m in missed] == [(ids["item_id"], WATCHLIST)]
    assert all(before <= row.created_at <= after for row in [*events, *missed])
    story = client.get(f"/stories/{ids['story_id']}")
    assert story.status_code == 200 and analyst in story.text  # shown as history


# --- logins and sessions -----------------------------------------------------------------------


def test_login_is_throttled_after_failures_not_after_successes(throttled_console: Console) -> None:
    from web.auth import LOGIN_LIMIT

    failures = int(LOGIN_LIMIT.split()[0])  # "5 per minute;...": failed logins per address
    name = throttled_console.add_user("analyst")
    right = throttled_console.passwords[name]

    def attempt(password: str) -> int:
        client = throttled_console.client()  # from the login page, as a browser would
        return post_login(client, throttled_console.csrf(client), name, password).status_code

    assert [attempt(right) for _ in range(failures + 1)] == [302] * (failures + 1)
    assert [attempt("wrong-password") for _ in range(failures - 1)] == [401] * (failures - 1)
    assert attempt(right) == 302  # fewer failures than the limit block nothing
    assert attempt("wrong-password") == 401  # the last one allowed
    client = throttled_console.client()
    throttled = post_login(client, throttled_console.csrf(client), name, "wrong-password")
    assert throttled.status_code == 429
    assert "Retry-After" in throttled.headers
    assert attempt(right) == 429  # until the window ends, even the right password waits
    assert client.get("/login").status_code in (200, 302)  # the page itself still answers


def _cookie_flags(response: httpx.Response) -> set[str]:
    """The attributes of the session cookie a response sets, lower-cased."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            return {part.strip().lower() for part in rest.split(";")[1:]}
    raise AssertionError(f"no {SESSION_COOKIE} cookie in {response.headers}")


def test_session_cookie_is_httponly_and_samesite_lax(console: Console) -> None:
    client = console.client()
    csrf = console.csrf(client)
    response = post_login(client, csrf, "viewer", console.passwords["viewer"])
    assert response.status_code == 302
    flags = _cookie_flags(response)
    assert {"httponly", "samesite=lax"} <= flags
    assert "secure" not in flags  # the public URL is http: a Secure cookie would never return


def test_session_cookie_is_secure_when_the_public_url_is_https(https_console: Console) -> None:
    name = https_console.add_user("viewer")
    client = https_console.client()
    first = client.get("/login")
    assert {"secure", "httponly", "samesite=lax"} <= _cookie_flags(first)
    csrf = CSRF.search(first.text)
    assert csrf is not None
    response = post_login(client, csrf.group(1), name, https_console.passwords[name])
    assert response.status_code == 302
    assert {"secure", "httponly", "samesite=lax"} <= _cookie_flags(response)


def test_password_change_ends_existing_sessions(console: Console) -> None:
    name = console.add_user("analyst")
    client, _ = console.login(name)
    assert client.get("/login").status_code == 302  # signed in
    new = _secret(f"pw-new-{name}")
    console.secrets.append(new)
    console.cli(("user", "passwd", name, "--password-stdin"), stdin=new + "\n")
    refused = client.get("/feeds")
    assert refused.status_code == 302
    assert urlsplit(refused.headers["location"]).path == "/login"
    assert client.get("/login").status_code == 200
    again, _ = console.login(name, new)
    assert again.get("/login").status_code == 302


def test_removing_a_user_ends_their_sessions_even_when_the_id_comes_back(
    console: Console,
) -> None:
    leaver = console.add_user("admin")
    client, _ = console.login(leaver)
    leaver_id = console.user_id(leaver)
    with console.sessions.begin() as session:
        users_store.remove_user(session, leaver)
    arrival = console.add_user("admin")
    if console.database_url.startswith("sqlite"):
        assert console.user_id(arrival) == leaver_id  # SQLite reuses the highest rowid
    assert client.get("/login").status_code == 200  # no longer signed in, as anyone
    assert client.get("/feeds").status_code == 302


# --- nothing in clear ---------------------------------------------------------------------------


def _dump(engine: sa.Engine) -> str:
    """Every row of every table, reflected (not only the tables the models declare)."""
    meta = sa.MetaData()
    meta.reflect(engine)
    lines = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            lines += [f"{table.name} {tuple(row)!r}" for row in conn.execute(sa.select(table))]
    return "\n".join(lines)


def test_no_password_or_token_in_clear_in_the_database_or_any_log(console: Console) -> None:
    password = _secret("pw-cli")
    console.secrets.append(password)
    _, printed = console.cli(
        ("user", "add", "cli-analyst", "--role", "analyst", "--password-stdin"),
        ("token", "add", "cli-reader", "--user", "viewer"),
        stdin=password + "\n",
    )
    token = printed.strip()
    assert token.startswith("wft_"), printed
    console.secrets.append(token)
    client, _ = console.login("cli-analyst", password)
    assert client.get("/login").status_code == 302  # signed in
    reader = console.client()
    assert reader.get("/api/v1/alerts", headers=_bearer(token)).status_code == 200
    atom = f"/watchlists/{WATCHLIST}/feed.atom"
    assert reader.get(atom, params={"token": token}).status_code == 200
    assert reader.get(atom, params={"token": console.tokens["revoked"]}).status_code == 401
    mistyped = _secret("pw-mistyped")  # a failed login's password is not logged either
    assert post_login(reader, console.csrf(reader), "cli-analyst", mistyped).status_code == 401
    hidden = [*console.secrets, mistyped]

    dump = _dump(console.engine)
    with console.engine.connect() as conn:
        hashes = list(conn.execute(sa.select(User.name, User.password_hash)))
        stored = set(conn.scalars(sa.select(ApiToken.token_hash)))
    assert "cli-analyst" in dump and "cli-reader" in dump  # the dump holds them
    assert hashes and all(h.startswith("$argon2id$") for _, h in hashes), hashes
    made = [token, *console.tokens.values()]
    assert {hashlib.sha256(t.encode()).hexdigest() for t in made} <= stored
    places = {"database": dump, "web log": console.server.log()}
    places["cli output"] = "\n".join(console.cli_output)
    if console.database_url.startswith("sqlite"):  # the file itself, free pages and WAL too
        path = Path(console.database_url.removeprefix("sqlite:///"))
        files = [path, *path.parent.glob(path.name + "-*")]
        places["database file"] = b"".join(f.read_bytes() for f in files).decode("latin-1")
    assert "console on http://" in places["web log"]  # the right log
    for place, text in places.items():
        leaked = [s for s in hidden if s in text]
        assert not leaked, f"in clear in the {place}: {leaked}"


def test_login_never_redirects_off_site(console: Console) -> None:
    password = console.passwords["viewer"]
    for target in EVIL_NEXT:
        client = console.client()
        page = client.get("/login", params={"next": target})
        assert 'name="next"' not in page.text, target
        csrf = CSRF.search(page.text)
        assert csrf is not None
        response = post_login(client, csrf.group(1), "viewer", password, next=target)
        assert response.status_code == 302
        assert response.headers["location"] == "/", target
    client = console.client()
    page = client.get("/login", params={"next": "/search?q=missile"})
    assert 'name="next" value="/search?q=missile"' in page.text
    response = post_login(client, console.csrf(client), "viewer", password, next="/search?q=m")
    assert response.headers["location"] == "/search?q=m"  # a path on this site is kept
