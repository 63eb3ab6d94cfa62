"""Sources split over ``config/feeds.d/*.yaml``: more than one file's cap holds, one file per
desk or region; every error still names its file and line, and a bad file keeps the last
good config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers.configdir import write_config
from worker.config import MAX_FEED_FILES, MAX_FILE_BYTES, ConfigCache, ConfigError, load_config

FEEDS = [{"id": "wire", "url": "http://127.0.0.1:1/feed.xml", "tags": ["news"]}]


def feeds_file(path: Path, ids: list[str], extra: str = "") -> Path:
    """One feed a line, in the compact form an admin's script writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"  - {{id: {i}, url: 'http://h.example/{i}.xml'{extra}}}\n" for i in ids)
    path.write_text(f"feeds:\n{lines}")
    return path


def test_feeds_d_files_add_their_sources_after_feeds_yaml_in_name_order(
    config_dir: Path,
) -> None:
    write_config(config_dir, feeds=FEEDS)
    feeds_file(config_dir / "feeds.d" / "b-russia.yaml", ["tass", "ria"])
    feeds_file(config_dir / "feeds.d" / "a-korea.yml", ["yonhap"])
    (config_dir / "feeds.d" / "README.md").write_text("not a config file: ignored")
    config = load_config(config_dir)
    assert [f.id for f in config.feeds] == ["wire", "yonhap", "tass", "ria"]
    assert config.feed("ria") is not None and config.feed("ria").url == "http://h.example/ria.xml"
    assert set(config.texts) >= {"feeds.d/a-korea.yml", "feeds.d/b-russia.yaml"}


def test_a_watch_list_may_name_a_source_of_feeds_d(config_dir: Path) -> None:
    feeds_file(config_dir / "feeds.d" / "desk.yaml", ["kcna"])
    watchlists = {
        "watchlists": [
            {"id": "kcna-only", "title": "KCNA", "query": "missile", "sources": ["kcna"],
             "channels": ["console"]},
            {"id": "typo", "title": "Typo", "query": "missile", "sources": ["kcan"],
             "channels": ["console"]},
        ]
    }  # fmt: skip
    write_config(config_dir, feeds=FEEDS, watchlists=watchlists)
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    [issue] = err.value.issues
    assert issue.file == str(config_dir / "watchlists.yaml")
    assert "unknown feed id 'kcan'" in issue.problem and "'kcna'" in issue.problem


def test_an_id_used_in_two_files_is_reported_where_it_comes_again(config_dir: Path) -> None:
    write_config(config_dir, feeds=FEEDS)
    feeds_file(config_dir / "feeds.d" / "a.yaml", ["yonhap", "kcna"])
    feeds_file(config_dir / "feeds.d" / "b.yaml", ["tass", "kcna", "wire"])
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    first, second = config_dir / "feeds.d" / "a.yaml", config_dir / "feeds.d" / "b.yaml"
    assert [str(i) for i in err.value.issues] == [
        f"{second}:3: feeds[1].id: duplicate id 'kcna' (first in {first}:3)",
        f"{second}:4: feeds[2].id: duplicate id 'wire' (first in {config_dir / 'feeds.yaml'}:2)",
    ]


def test_a_bad_feeds_d_file_names_its_line_and_the_last_good_config_runs_on(
    config_dir: Path, tmp_path: Path
) -> None:
    write_config(config_dir, feeds=FEEDS)
    feeds_file(config_dir / "feeds.d" / "desk.yaml", ["yonhap"])
    snapshot = tmp_path / "var" / "last-good-config.json"
    cache = ConfigCache(config_dir, snapshot=snapshot)
    good = cache.current()
    assert "feeds.d/desk.yaml" in json.loads(snapshot.read_text())
    bad = config_dir / "feeds.d" / "desk.yaml"
    bad.write_text(
        "feeds:\n  - id: yonhap\n    url: 'http://h.example/y.xml'\n    interval: often\n"
    )
    os.utime(bad, ns=(1, 1))
    assert cache.current() is good  # the service goes on with what it had
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    [issue] = err.value.issues
    assert (issue.file, issue.line, issue.field) == (str(bad), 4, "feeds[0].interval")
    # a process that starts now comes up on the last good config, feeds.d included
    fresh = ConfigCache(config_dir, snapshot=snapshot).current()
    assert [f.id for f in fresh.feeds] == ["wire", "yonhap"]
    # a new file is noticed without a restart
    feeds_file(bad, ["yonhap"])
    feeds_file(config_dir / "feeds.d" / "more.yaml", ["nhk"])
    assert [f.id for f in cache.current().feeds] == ["wire", "yonhap", "nhk"]


def test_more_feeds_d_files_than_the_cap_is_an_error_not_a_partial_config(
    config_dir: Path,
) -> None:
    write_config(config_dir, feeds=FEEDS)
    for n in range(MAX_FEED_FILES + 1):
        feeds_file(config_dir / "feeds.d" / f"{n:03d}.yaml", [f"f{n}"])
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    [issue] = err.value.issues
    assert issue.file == str(config_dir / "feeds.d")
    assert issue.problem == f"{MAX_FEED_FILES + 1} files: at most {MAX_FEED_FILES} are read"


def test_more_sources_than_one_file_holds_load_from_feeds_d(config_dir: Path) -> None:
    """60,000 sources are over 4 MB written out: too much for feeds.yaml alone, fine as three
    files of a desk each (the CLI's check runs the same loader as the workers)."""
    write_config(config_dir, feeds=[])
    extra = ", interval: 10m, tags: [wire]"
    files = [
        feeds_file(
            config_dir / "feeds.d" / f"desk-{d}.yaml", [f"desk{d}-{n:05d}" for n in part], extra
        )
        for d, part in enumerate((range(20_000), range(20_000, 40_000), range(40_000, 60_000)))
    ]
    assert sum(f.stat().st_size for f in files) > MAX_FILE_BYTES
    done = subprocess.run(
        [sys.executable, "-m", "worker", "check", "--config-dir", str(config_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "60000 feeds" in done.stdout + done.stderr


def test_a_file_name_that_is_not_utf8_does_not_stop_the_snapshot(
    config_dir: Path, tmp_path: Path
) -> None:
    """A valid file named in Latin-1 (copied from an old share): it loads, and the last
    good config's snapshot still follows, so a process started while the files are broken
    comes up on it (the snapshot's JSON once failed to encode the name, silently)."""
    write_config(config_dir, feeds=FEEDS)
    desk = feeds_file(config_dir / "feeds.d" / "desk.yaml", ["yonhap"])
    snapshot = tmp_path / "var" / "last-good-config.json"
    cache = ConfigCache(config_dir, snapshot=snapshot)
    assert [f.id for f in cache.current().feeds] == ["wire", "yonhap"]
    odd = os.path.join(os.fsencode(config_dir), b"feeds.d", b"r\xe9gion.yaml")
    with open(odd, "w") as stream:
        stream.write("feeds:\n  - {id: nhk, url: 'http://h.example/nhk.xml'}\n")
    good = cache.current()
    assert [f.id for f in good.feeds] == ["wire", "yonhap", "nhk"]
    desk.write_text("feeds: [{id: yonhap, url: 'http://h.example/y.xml', interval: often}]\n")
    os.utime(desk, ns=(1, 1))
    assert cache.current() is good
    fresh = ConfigCache(config_dir, snapshot=snapshot).current()
    assert [f.id for f in fresh.feeds] == ["wire", "yonhap", "nhk"]
