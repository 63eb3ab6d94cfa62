"""Hostile config files: refused with FILE:LINE, in bounded memory, and a running service
keeps alerting on its last good config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, sqlite_url
from tests.helpers.configdir import write_config
from tests.helpers.feedserver import FeedEntry, FeedServer
from tests.helpers.http import WebhookReceiver
from tests.helpers.processes import celery_worker, tracebacks, wait_until
from tests.worker.guarantees import WATCHLIST, hook_stack_env
from tests.worker.test_config import run_cli
from worker.config import ConfigCache, ConfigError, load_config
from worker.db import make_engine, upgrade
from worker.yamlsource import MAX_YAML_DEPTH, load_yaml

# Nine levels of nine aliases: 387 million strings when expanded, 600 bytes as written.
ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "",
    ]
)
DEEP_PARENS = "(" * 200 + "missile" + ")" * 200
# 4,000 NOTs fit the 20,000-character cap on a query, so the nesting cap is what refuses them
MANY_NOTS = "missile AND " + "NOT " * 4000 + "football"

PEAK_SCRIPT = """
import sys, tracemalloc
tracemalloc.start()
from worker.config import ConfigError, load_config
try:
    load_config(sys.argv[1])
    print("loaded")
except ConfigError as exc:
    print("\\n".join(map(str, exc.issues)))
print("PEAK", tracemalloc.get_traced_memory()[1])
"""


def _bomb_in(config_dir: Path, name: str) -> Path:
    path = config_dir / name
    body = ALIAS_BOMB + path.read_text()
    path.write_text(body)
    return path


@pytest.mark.parametrize("name", ["feeds.yaml", "watchlists.yaml", "channels.yaml"])
def test_an_alias_bomb_is_refused_with_its_line_and_never_expanded(
    config_dir: Path, name: str
) -> None:
    path = _bomb_in(config_dir, name)
    # a subprocess, so that the unfixed loader (which expands the bomb) fails by its timeout
    # instead of eating this test worker's memory
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(config_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    *issues, peak = result.stdout.splitlines()
    assert issues == [
        f"{path}:6: (yaml): aliases expand this to more than 100,000 values (an alias bomb?)"
    ]
    assert int(peak.split()[1]) < 100 * 1024 * 1024


def test_a_large_file_without_aliases_is_not_taken_for_a_bomb() -> None:
    """20,000 feeds are 180,000 values: the alias guard counts what aliases add, not size."""
    entries = "".join(
        f"  - {{id: f{n}, url: 'http://h{n % 50}.example/{n}', interval: 1h, min_interval: 5m}}\n"
        for n in range(20_000)
    )
    doc = load_yaml(f"feeds:\n{entries}", "feeds.yaml")
    assert doc.issues == []
    assert len(doc.data["feeds"]) == 20_000
    assert doc.lines[("feeds", 19_999, "url")] == 20_001


def test_a_bomb_inside_a_large_file_is_still_refused() -> None:
    entries = "".join(f"  - {{id: f{n}, url: 'http://h/{n}'}}\n" for n in range(20_000))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcde", "bcdef", strict=True)
    )
    doc = load_yaml(f"{bomb}feeds:\n{entries}", "feeds.yaml")
    assert [i.problem for i in doc.issues] == [
        "aliases expand this to more than 100,000 values (an alias bomb?)"
    ]
    assert doc.data is None


def test_shared_anchors_still_load_and_report_lines() -> None:
    text = "base: &base {url: 'http://x/', interval: 5m}\ncopy: *base\nother: [*base, *base]\n"
    doc = load_yaml(text, "f.yaml")
    assert doc.issues == []
    assert doc.data["copy"] == doc.data["base"] == {"url": "http://x/", "interval": "5m"}
    assert doc.lines[("other",)] == 3


def test_yaml_nested_deeper_than_the_cap_is_refused_not_a_recursion_error() -> None:
    for text in (
        "[" * 10_000 + "]" * 10_000,
        "a:\n" + "".join(f"{' ' * i}b:\n" for i in range(1, 200)),
    ):
        doc = load_yaml(text, "f.yaml")
        assert doc.data is None
        [issue] = doc.issues
        # ours past MAX_YAML_DEPTH, or libyaml's own flow-nesting limit, which comes first
        assert f"nested more than {MAX_YAML_DEPTH} levels deep" in issue.problem or (
            "exceeded maximum nesting depth" in issue.problem
        )


@pytest.mark.parametrize(
    ("field", "query", "column"),
    [("query", DEEP_PARENS, 33), ("query", MANY_NOTS, 141), ("exclude", DEEP_PARENS, 33)],
)
def test_deeply_nested_queries_are_refused_with_their_column(
    config_dir: Path, field: str, query: str, column: int
) -> None:
    watchlist = {**WATCHLIST, "channels": ["console"], field: query}
    if field == "exclude":
        watchlist["query"] = "missile"
    write_config(config_dir, watchlists={"watchlists": [watchlist]})
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    [issue] = err.value.issues
    assert issue.field == f"watchlists[0].{field}"
    assert "query nested too deeply: at most 32 levels" in issue.problem
    assert issue.problem.endswith(f"(column {column})")


@pytest.mark.parametrize("query", [DEEP_PARENS, MANY_NOTS])
def test_check_match_and_run_say_so_in_one_line(config_dir: Path, query: str) -> None:
    write_config(config_dir, watchlists={"watchlists": [{**WATCHLIST, "query": query}]})
    items = config_dir / "items.jsonl"
    items.write_text(json.dumps({"id": "1", "title": "missile", "summary": ""}) + "\n")
    env = {"WATCHFLOOR_CONFIG_DIR": str(config_dir), "WATCHFLOOR_VAR_DIR": str(config_dir)}
    for args in (["check"], ["match", str(items)], ["run", "--no-migrate"]):
        result = run_cli(*args, env=env)
        assert result.returncode in (1, 2), (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout, args
        assert "query nested too deeply" in result.stderr, (args, result.stderr)


def test_a_query_longer_than_20000_characters_is_refused(config_dir: Path) -> None:
    watchlist = {**WATCHLIST, "channels": ["console"], "query": "missile AND " + "NOT " * 5000}
    write_config(config_dir, watchlists={"watchlists": [watchlist]})
    issues = _issues_of(config_dir)
    assert issues[0].endswith("watchlists[0].query: string should have at most 20000 characters")


def test_any_exception_while_reloading_keeps_the_last_good_config(config_dir: Path) -> None:
    calls = []

    def loader(path: Path):  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) > 1:
            raise RecursionError("maximum recursion depth exceeded")
        return load_config(path)

    cache = ConfigCache(config_dir, loader=loader)
    good = cache.current()
    (config_dir / "feeds.yaml").write_text("feeds: []\n# edited\n")
    assert cache.current() is good
    assert cache.current() is good
    assert len(calls) == 2, "a failed file is not reloaded again until it changes"


# (file, hostile query or None for the alias bomb, what the log says, a new story's title)
HOSTILE_EDITS = {
    "alias bomb": (
        "feeds.yaml",
        None,
        "an alias bomb",
        "North Korea fires ballistic missile toward the East Sea",
    ),
    "deep parentheses": (
        "watchlists.yaml",
        DEEP_PARENS,
        "query nested too deeply",
        "Pyongyang test-launches a ballistic missile over the Yellow Sea, Tokyo says",
    ),
    "4000 NOTs": (
        "watchlists.yaml",
        MANY_NOTS,
        "query nested too deeply",
        "Seoul condemns North Korea's dawn ballistic missile launch from Sunan airfield",
    ),
}


def test_a_process_that_slept_through_a_valid_edit_takes_the_newer_last_good_one(
    config_dir: Path, tmp_path: Path
) -> None:
    """Two pool children on one config: A sees a valid edit, B sees only the broken edit
    after it. B runs on A's newer last good config, not on its own older one."""
    snapshot = tmp_path / "var" / "last-good-config.json"
    a, b = (ConfigCache(config_dir, snapshot=snapshot) for _ in range(2))
    first = b.current()
    time.sleep(0.05)  # a later mtime than B's load, on any filesystem's clock
    channels = config_dir / "channels.yaml"
    channels.write_text(
        "channels:\n  - id: console\n    type: log\n  - id: second\n    type: log\n"
    )
    assert set(a.current().channels) == {"console", "second"}  # A saves it as last good
    channels.write_text("chanels: []\n")
    assert set(first.channels) == {"console"}
    assert set(b.current().channels) == {"console", "second"}
    assert set(a.current().channels) == {"console", "second"}


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_running_service_logs_each_hostile_edit_and_keeps_alerting(
    tmp_path: Path, redis_url: str
) -> None:
    with FeedServer() as feeds, WebhookReceiver() as hook:
        feeds.publish("wire", FeedEntry("g0", "Seoul stocks close higher on chip exports"))
        db_url = sqlite_url(tmp_path)
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        config_dir = Path(env["WATCHFLOOR_CONFIG_DIR"])
        engine = make_engine(db_url)
        upgrade(engine)
        engine.dispose()
        good = {name: (config_dir / name).read_text() for name in ("feeds.yaml", "watchlists.yaml")}
        with celery_worker(env, tmp_path / "w.log") as worker:
            assert wait_until(lambda: len(feeds.statuses("wire")) >= 2, 90), worker.log()
            for n, (label, (name, query, logged, title)) in enumerate(HOSTILE_EDITS.items(), 1):
                if query is None:
                    _bomb_in(config_dir, name)
                else:
                    hostile = {"watchlists": [WATCHLIST, {**WATCHLIST, "id": "x", "query": query}]}
                    (config_dir / name).write_text(yaml.safe_dump(hostile))
                feeds.publish("wire", FeedEntry(f"g{n}", title))
                assert wait_until(lambda n=n: len(hook.requests) == n, 90), (label, worker.log())
                assert wait_until(lambda logged=logged: logged in worker.log(), 30), label
                assert worker.alive(), label
                (config_dir / name).write_text(good[name])
            log = worker.log()
    assert tracebacks(log) == []
    assert all(
        json.loads(r.body)["data"]["watchlist"]["id"] == "missile-tests" for r in hook.requests
    )
    assert log.count("config invalid; keeping the last good one") >= len(HOSTILE_EDITS)


def _issues_of(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    return [str(issue) for issue in err.value.issues]


def test_an_alias_bomb_of_text_is_refused_by_its_expanded_size(config_dir: Path) -> None:
    """Few values, much text: one 200 kB query aliased as 50 watch-lists."""
    entries = "\n".join(
        f"  - {{id: w{n}, title: T, query: *q, channels: [console]}}" for n in range(50)
    )
    big = "x " * 100_000
    (config_dir / "watchlists.yaml").write_text(f"big: &q '{big}'\nwatchlists:\n{entries}\n")
    [issue] = _issues_of(config_dir)
    assert issue.endswith("(yaml): holds more than 4,000,000 characters of text, aliases expanded")


def test_hostile_files_are_refused_with_a_reason_never_a_traceback_or_a_hang(
    config_dir: Path,
) -> None:
    feeds = config_dir / "feeds.yaml"
    feeds.write_text("? [a, b]\n: value\nfeeds: []\n")  # a list as a mapping key
    assert _issues_of(config_dir) == [
        f"{feeds}:1: (yaml): a key must be plain text, not a list or mapping"
    ]
    feeds.write_bytes(b"\xff\xfefeeds: []\n")
    assert _issues_of(config_dir) == [f"{feeds}:1: (file): not UTF-8 text (byte 0 is 0xff)"]
    feeds.write_bytes(b"feeds: []\n#" + b"x" * (4 * 1024 * 1024))
    assert _issues_of(config_dir) == [
        f"{feeds}:1: (file): larger than the 4 MB cap for a config file"
    ]
    feeds.unlink()
    os.mkfifo(feeds)  # reading it would block forever
    assert _issues_of(config_dir) == [f"{feeds}:1: (file): cannot read: not a regular file"]


def test_a_process_starting_on_broken_files_runs_on_the_last_good_config(
    config_dir: Path, tmp_path: Path
) -> None:
    snapshot = tmp_path / "var" / "last-good-config.json"
    good = ConfigCache(config_dir, snapshot=snapshot).current()
    assert (
        json.loads(snapshot.read_text())["watchlists.yaml"]
        == (config_dir / "watchlists.yaml").read_text()
    )
    (config_dir / "channels.yaml").write_text("chanels: []\n")
    restarted = ConfigCache(config_dir, snapshot=snapshot).current()  # a new pool child
    assert restarted.watchlists == good.watchlists and set(restarted.channels) == {"console"}
    with pytest.raises(ConfigError):  # with nothing kept there is nothing to run on
        ConfigCache(config_dir, snapshot=tmp_path / "none.json").current()


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_worker_started_or_restarted_on_a_broken_edit_keeps_alerting(
    tmp_path: Path, redis_url: str
) -> None:
    """The edit lands before any pool child loaded the config, then the worker restarts."""
    with FeedServer() as feeds, WebhookReceiver() as hook:
        feeds.publish("wire", FeedEntry("g0", "Seoul stocks close higher on chip exports"))
        db_url = sqlite_url(tmp_path)
        env = hook_stack_env(tmp_path, feeds.url("wire"), hook.url, db_url, redis_url)
        engine = make_engine(db_url)
        upgrade(engine)
        engine.dispose()
        channels = Path(env["WATCHFLOOR_CONFIG_DIR"]) / "channels.yaml"
        snapshot = tmp_path / "var" / "last-good-config.json"
        with celery_worker(env, tmp_path / "w1.log") as worker:
            assert wait_until(snapshot.exists, 60), worker.log()  # kept at worker start
            channels.write_text(channels.read_text() + "chanels: []\n")
            feeds.publish("wire", FeedEntry("g1", HOSTILE_EDITS["alias bomb"][3]))
            assert wait_until(lambda: len(hook.requests) == 1, 90), worker.log()
            first = worker.log()
        with celery_worker(env, tmp_path / "w2.log") as worker:  # a restart, files still broken
            feeds.publish("wire", FeedEntry("g2", HOSTILE_EDITS["4000 NOTs"][3]))
            assert wait_until(lambda: len(hook.requests) == 2, 90), worker.log()
            second = worker.log()
    for log in (first, second):
        assert "unknown key 'chanels'" in log
        assert tracebacks(log) == []
