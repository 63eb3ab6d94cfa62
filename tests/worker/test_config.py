"""Config loading: every error names file, line and field; the last good config is kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alerts.explain_forms import NOT_INFLECTED
from tests.conftest import REPO
from tests.helpers.configdir import write_config
from worker.config import ConfigCache, ConfigError, load_config

FEEDS = [{"id": "wire", "url": "http://127.0.0.1:1/feed.xml", "interval": "2s", "tags": ["news"]}]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_valid_config_loads_with_defaults(config_dir: Path) -> None:
    write_config(config_dir, feeds=FEEDS)
    config = load_config(config_dir)
    assert config.feed("wire").interval.total_seconds() == 2
    assert config.watchlist("missile-tests").severity == "high"
    assert set(config.channels) == {"console"}


def test_env_substitution_and_default(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_FEED_HOST", "127.0.0.1:8")
    feeds = [
        {"id": "a", "url": "http://${WF_FEED_HOST}/a"},
        {"id": "b", "url": "${WF_NOPE:-http://x/b}"},
    ]
    write_config(config_dir, feeds=feeds)
    config = load_config(config_dir)
    assert [f.url for f in config.feeds] == ["http://127.0.0.1:8/a", "http://x/b"]


BROKEN_WATCHLISTS = """\
watchlists:
  - id: ok
    title: Fine
    query: missile
    channels: [console]
  - id: bad-channel
    title: Unknown channel
    query: missile
    channels: [console, nowhere]
  - id: bad-query
    title: Unbalanced
    query: '(missile OR rocket'
    channels: [console]
"""

BROKEN_CHANNELS = """\
channels:
  - id: console
    type: log
  - id: hook
    type: webhook
    url: http://127.0.0.1:9/hook
    secret: "${WF_TEST_SURELY_UNSET_SECRET}"
"""


def _broken_dir(config_dir: Path) -> Path:
    (config_dir / "watchlists.yaml").write_text(BROKEN_WATCHLISTS)
    (config_dir / "channels.yaml").write_text(BROKEN_CHANNELS)
    (config_dir / "feeds.yaml").write_text("feeds:\n  - id: x\n    url: [unclosed\n")
    return config_dir


def test_check_reports_every_error_with_file_and_line(config_dir: Path) -> None:
    result = run_cli("check", "--config-dir", str(_broken_dir(config_dir)))
    assert result.returncode == 1
    errors = result.stderr
    # libyaml's wording (PyYAML's own scanner says "expected ','")
    assert (
        f"{config_dir / 'feeds.yaml'}:4: (yaml): invalid YAML: did not find expected ','" in errors
    )
    assert "while parsing a flow sequence at line 3" in errors
    wl, ch = config_dir / "watchlists.yaml", config_dir / "channels.yaml"
    assert f"{wl}:9: watchlists[1].channels[1]: unknown channel id 'nowhere'" in errors
    assert f"{config_dir / 'watchlists.yaml'}:12: watchlists[2].query:" in errors
    assert "unbalanced parenthesis" in errors
    unset = "environment variable WF_TEST_SURELY_UNSET_SECRET is not set"
    assert f"{ch}:7: channels[1].secret: {unset}" in errors
    assert "Traceback" not in errors


def test_check_ok_prints_one_line_summary(config_dir: Path) -> None:
    write_config(config_dir, feeds=FEEDS)
    result = run_cli("check", "--config-dir", str(config_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "config OK: 1 feeds, 1 watch-lists, 1 channels"


def test_shipped_config_is_valid() -> None:
    result = run_cli("check", "--config-dir", str(REPO / "config"))
    assert result.returncode == 0, result.stderr


def test_schema_errors_name_field_and_line(config_dir: Path) -> None:
    (config_dir / "feeds.yaml").write_text(
        "feeds:\n  - id: ok\n    url: http://x/\n"
        "  - id: Bad Id\n    url: ftp://x/\n    interval: soon\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    lines = [str(i) for i in err.value.issues]
    feeds = config_dir / "feeds.yaml"
    assert any(line.startswith(f"{feeds}:4: feeds[1].id:") for line in lines), lines
    assert any(line.startswith(f"{feeds}:5: feeds[1].url:") for line in lines), lines
    assert any(line.startswith(f"{feeds}:6: feeds[1].interval:") for line in lines), lines


def test_cache_keeps_last_good_config_on_invalid_edit(config_dir: Path) -> None:
    write_config(config_dir, feeds=FEEDS)
    cache = ConfigCache(config_dir)
    good = cache.current()
    (config_dir / "watchlists.yaml").write_text(BROKEN_WATCHLISTS)
    assert cache.current() is good
    write_config(config_dir, feeds=[*FEEDS, {"id": "second", "url": "http://x/2"}])
    os.utime(config_dir / "feeds.yaml", ns=(1, 1))  # a change even within one mtime tick
    assert [f.id for f in cache.current().feeds] == ["wire", "second"]


def test_cache_with_no_good_config_raises(config_dir: Path) -> None:
    (config_dir / "watchlists.yaml").write_text(BROKEN_WATCHLISTS)
    with pytest.raises(ConfigError):
        ConfigCache(config_dir).current()


def test_the_example_page_sources_are_valid_config(tmp_path: Path) -> None:
    """config/examples/ is not loaded by `make run`, but an admin copies from it."""
    import shutil

    from worker.config import load_config

    shutil.copytree(REPO / "config", tmp_path / "config")
    example = REPO / "config" / "examples" / "official-pages.yaml"
    shutil.copy(example, tmp_path / "config" / "feeds.yaml")
    (tmp_path / "config" / "watchlists.yaml").write_text("watchlists: []\n")
    config = load_config(tmp_path / "config")
    assert {f.type for f in config.feeds} == {"page"} and all(f.select for f in config.feeds)
    feeds = REPO / "config" / "examples" / "official-feeds.yaml"
    shutil.copy(feeds, tmp_path / "config" / "feeds.yaml")
    config = load_config(tmp_path / "config")
    assert {f.type for f in config.feeds} == {"rss"}
    assert {"kremlin-en", "mid-en", "un-press", "iaea-press", "mofa-japan", "mod-japan"} <= {
        f.id for f in config.feeds
    }
    assert all("official" in f.tags for f in config.feeds)


def test_check_explain_lists_what_an_alias_group_stands_for(config_dir: Path) -> None:
    watchlists = {
        "aliases": {"dprk": ["North Korea", "КНДР", "Северная Корея"], "unused": ["x y"]},
        "watchlists": [
            {"id": "ru-press", "title": "Russian press", "query": "@dprk AND ракета",
             "russian_forms": True, "channels": ["console"]},
            {"id": "wires", "title": "Wires", "query": "@DPRK AND missile",
             "channels": ["console"]},
        ],
    }  # fmt: skip
    write_config(config_dir, watchlists=watchlists)
    done = run_cli("check", "--config-dir", str(config_dir), "--explain", "@dprk")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1:4] == ["@dprk: 3 members", "  North Korea", "  КНДР"]
    assert lines[4] == "  Северная Корея"
    assert (
        lines[5].startswith("    russian_forms: северной кореи, ") and "северную корею" in lines[5]
    )
    assert lines[-1] == "  used by: ru-press (russian_forms), wires"
    unused = run_cli("check", "--config-dir", str(config_dir), "--explain", "unused")
    assert unused.stdout.splitlines()[-1] == "  used by: no watch-list"
    typo = run_cli("check", "--config-dir", str(config_dir), "--explain", "@dprkk")
    assert typo.returncode == 1 and "no alias @dprkk (did you mean @dprk?)" in typo.stderr
    assert "Traceback" not in typo.stderr


def test_check_explain_lists_each_member_s_other_spellings(config_dir: Path) -> None:
    watchlists = {
        "aliases": {"officials": ["Kim Jong Un", "Шойгу", "Putin"]},
        "watchlists": [{"id": "w", "title": "W", "query": "@officials", "channels": ["console"]}],
    }
    write_config(config_dir, watchlists=watchlists)
    done = run_cli("check", "--config-dir", str(config_dir), "--explain", "@officials")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    kim = lines.index("  Kim Jong Un")
    assert lines[kim + 1].startswith("    spellings: Kim Jongun, Kim Jong Eun, ")
    assert "Kim Chong Un" in lines[kim + 1]
    shoigu = lines.index("  Шойгу")
    assert lines[shoigu + 1] == "    spellings: Shoygu, Shoigu"
    assert lines[lines.index("  Putin") + 1].startswith("  ")  # no spellings line for Latin
    assert not lines[lines.index("  Putin") + 1].startswith("    spellings")


def test_check_explain_lists_the_forms_the_marked_terms_of_a_watch_list_take(
    config_dir: Path,
) -> None:
    watchlists = {
        "aliases": {"dprk": ["КНДР", "Пхеньян", "North Korea"]},
        "watchlists": [
            {"id": "marked", "title": "Marked", "channels": ["console"],
             "query": '@dprk~ AND ("баллистическая ракета"~ OR КНДР~ OR запуск)',
             "exclude": "учения~"},
            {"id": "option", "title": "Option", "query": "ракета AND missile",
             "russian_forms": True, "channels": ["console"]},
            {"id": "plain", "title": "Plain", "query": "ракета", "channels": ["console"]},
        ],
    }  # fmt: skip
    write_config(config_dir, watchlists=watchlists)
    explain = ("--explain", "marked", "--explain", "option", "--explain", "plain")
    done = run_cli("check", "--config-dir", str(config_dir), *explain)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()[1:]
    assert lines[0] == "marked"
    assert lines[1:3] == ["  query: @dprk~ КНДР", f"    forms: {NOT_INFLECTED}"]
    assert lines[3] == "  query: @dprk~ Пхеньян" and "пхеньяне" in lines[4]
    assert lines[5] == '  query: "баллистическая ракета"~'
    assert "баллистических ракет" in lines[6].split(", ")
    assert lines[7:9] == ["  query: КНДР~", f"    forms: {NOT_INFLECTED}"]
    assert lines[9] == "  exclude: учения~" and "учениях" in lines[10]  # запуск: as written
    assert lines[11:13] == ["option (russian_forms: every Cyrillic term)", "  query: ракета"]
    assert lines[13].startswith("    forms: ракеты, ")  # missile has no Russian forms
    assert lines[14:] == ["plain", "  no term takes Russian forms (mark one with ~, e.g. ракета~)"]
    alias = run_cli("check", "--config-dir", str(config_dir), "--explain", "dprk")
    assert alias.stdout.splitlines()[-1] == "  used by: marked (@dprk~)"
    assert "    russian_forms: пхеньяна, " in alias.stdout
