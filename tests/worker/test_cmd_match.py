"""``watchfloor match``: JSON lines in, one JSON line per match out."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.configdir import write_config
from worker.commands import match as cmd

REPO = Path(__file__).resolve().parents[2]

WATCHLISTS = """
aliases:
  dprk: ["North Korea*", "북한", "КНДР"]
watchlists:
  - id: missiles
    title: Missiles
    query: '@dprk AND (missile* OR 미사일 OR ракет*)'
    exclude: football
    channels: [console]
  - id: drafts
    title: Draft
    query: 'satellite*'
    enabled: false
  - id: official-only
    title: Official
    query: 'missile*'
    sources: [tag:official, kcna]
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[Any], str]:
    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers())
    args = parser.parse_args(["match", *argv])
    status = args.func(args)
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "watchlists.yaml").write_text(WATCHLISTS, encoding="utf-8")
    return tmp_path


def write_items(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_prints_one_line_per_match(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = write_items(
        tmp_path,
        json.dumps({"id": "a", "title": "North Korea fires missiles", "summary": "", "x": 1}),
        json.dumps({"id": "b", "title": "북한, 미사일 발사", "summary": "КНДР"}),
        json.dumps({"id": "c", "title": "Football: a missile from North Korea", "summary": ""}),
        "",
        json.dumps({"id": "d", "title": "Nothing here", "summary": "satellite"}),
    )
    status, rows, err = run(["--config-dir", str(config_dir), items], capsys)
    assert (status, err) == (0, "")
    assert rows == [
        {
            "id": "a",
            "watchlist": "missiles",
            "terms": ["North Korea", "missiles"],
            "snippet": "North Korea fires missiles",
        },
        {
            "id": "b",
            "watchlist": "missiles",
            "terms": ["북한", "미사일", "КНДР"],
            "snippet": "КНДР",
        },
    ]


def test_text_is_cleaned_as_feed_text_so_hostile_input_cannot_break_the_output(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    title = "North\tKorea \ud800fires\x1b[31m  missiles"  # lone surrogate, escape, tab
    items = write_items(tmp_path, json.dumps({"id": "s", "title": title, "summary": ""}))
    status, rows, err = run(["--config-dir", str(config_dir), items], capsys)
    assert (status, err) == (0, "")
    assert rows == [
        {
            "id": "s",
            "watchlist": "missiles",
            "terms": ["North Korea", "missiles"],
            "snippet": "North Korea fires[31m missiles",
        }
    ]


def test_guid_stands_in_for_a_missing_id(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = write_items(
        tmp_path,
        json.dumps({"guid": "g", "title": "North Korea missile", "summary": ""}),
        json.dumps({"id": "i", "guid": "g", "title": "North Korea missile", "summary": ""}),
        json.dumps({"id": None, "guid": "g2", "title": "North Korea missile", "summary": ""}),
        json.dumps({"title": "North Korea missile", "summary": ""}),
    )
    status, rows, _ = run(
        ["--config-dir", str(config_dir), "--watchlist", "missiles", items], capsys
    )
    assert status == 0
    assert [row["id"] for row in rows] == ["g", "i", "g2", None]


def test_bad_lines_are_reported_and_skipped(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = write_items(
        tmp_path,
        "{not json",
        json.dumps({"id": 2, "title": "North Korea missile"}),
        "[1, 2]",
        json.dumps({"id": 4, "title": 5}),
        json.dumps({"id": 5, "title": "x", "feed_tags": "official"}),
        json.dumps({"id": 6, "title": "North Korea missile", "summary": ""}),
    )
    status, rows, err = run(["--config-dir", str(config_dir), items], capsys)
    assert status == 1
    assert [row["id"] for row in rows] == [2, 6]
    lines = err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "line 1",
        "line 3",
        "line 4",
        "line 5",
    ]
    assert "not JSON" in lines[0]
    assert "feed_tags must be a list of strings" in lines[3]


def test_one_watchlist_even_if_disabled(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = write_items(
        tmp_path, json.dumps({"id": 1, "title": "North Korea satellite missile", "summary": ""})
    )
    status, rows, _ = run(["--config-dir", str(config_dir), "--watchlist", "drafts", items], capsys)
    assert status == 0
    assert [row["watchlist"] for row in rows] == ["drafts"]
    status, rows, _ = run(["--config-dir", str(config_dir), items], capsys)
    assert [row["watchlist"] for row in rows] == ["missiles"]


def test_unknown_watchlist(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = write_items(tmp_path, "{}")
    status, rows, err = run(["--config-dir", str(config_dir), "--watchlist", "nope", items], capsys)
    assert (status, rows) == (2, [])
    assert "unknown watch-list 'nope' (known: missiles, drafts, official-only)" in err


def test_sources_from_item_keys(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = write_items(
        tmp_path,
        json.dumps({"id": 1, "title": "missile", "feed_id": "kcna"}),
        json.dumps({"id": 2, "title": "missile", "feed_tags": ["official"]}),
        json.dumps({"id": 3, "title": "missile", "feed_id": "other"}),
    )
    status, rows, _ = run(["--config-dir", str(config_dir), items], capsys)
    assert status == 0
    assert [(row["id"], row["watchlist"]) for row in rows] == [
        (1, "official-only"),
        (2, "official-only"),
    ]


def test_reads_stdin_and_config_dir_from_environment(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WATCHFLOOR_CONFIG_DIR", str(config_dir))
    line = json.dumps({"id": "s", "title": "North Korea missile", "summary": ""})
    monkeypatch.setattr("sys.stdin", io.StringIO(line + "\n"))
    status, rows, _ = run(["-"], capsys)
    assert status == 0
    assert [row["id"] for row in rows] == ["s"]


def test_invalid_query_names_watchlist_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "watchlists.yaml").write_text(
        "watchlists:\n"
        "  - {id: a, title: A, query: '(missile'}\n"
        "  - {id: b, title: B, query: 'x', exclude: 'y AND'}\n",
        encoding="utf-8",
    )
    items = write_items(tmp_path, "{}")
    status, _, err = run(["--config-dir", str(tmp_path), items], capsys)
    assert status == 2
    wl = tmp_path / "watchlists.yaml"  # the FILE:LINE form of `watchfloor check`
    assert (
        f"{wl}:2: watchlists[0].query: unbalanced parenthesis: '(' is never closed (column 1)"
        in err
    )
    assert f"{wl}:3: watchlists[1].exclude: dangling operator AND (column 3)" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("watchlists: [{id: a}]", "watchlists[0].title: missing required key 'title'"),
        ("a: [", "while"),
    ],
)
def test_unloadable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "watchlists.yaml").write_text(content, encoding="utf-8")
    items = write_items(tmp_path, "{}")
    status, _, err = run(["--config-dir", str(tmp_path), items], capsys)
    assert status == 2
    assert message in err


def test_missing_input_file(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["--config-dir", str(config_dir), str(config_dir / "none")], capsys)
    assert status == 2
    assert "No such file" in err


def test_shipped_config_on_the_eval_set(capsys: pytest.CaptureFixture[str]) -> None:
    items = str(REPO / "tests" / "data" / "eval_watchlists.jsonl")
    argv = ["--config-dir", str(REPO / "config"), "--watchlist", "missile-tests", items]
    status, rows, _ = run(argv, capsys)
    assert status == 0
    assert {row["watchlist"] for row in rows} == {"missile-tests"}
    assert "mt-ko-01" in {row["id"] for row in rows}
    assert "neg-en-01" not in {row["id"] for row in rows}


def test_registered_with_the_watchfloor_command() -> None:
    from worker.cli import build_parser

    args = build_parser().parse_args(["match", "-", "--watchlist", "x"])
    assert args.func is cmd.run
    assert (args.file, args.watchlist, args.config_dir) == ("-", "x", None)


FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<item><guid>dprk-1</guid><title>North Korea fires a ballistic missile</title></item>
<item><guid>weather-1</guid><title>Sunny in Seoul</title></item>
</channel></rss>"""


@pytest.mark.timeout(120)
def test_parse_output_pipes_into_match(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(FEED)
    config = write_config(tmp_path / "config")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
    worker = [sys.executable, "-m", "worker"]
    parsed = subprocess.run(
        [*worker, "parse", str(feed)], cwd=REPO, env=env, capture_output=True, check=True
    )
    matched = subprocess.run(
        [*worker, "match", "--config-dir", str(config), "-"],
        cwd=REPO,
        env=env,
        input=parsed.stdout,
        capture_output=True,
        check=True,
    )
    rows = [json.loads(line) for line in matched.stdout.splitlines()]
    assert [(row["id"], row["watchlist"]) for row in rows] == [("dprk-1", "missile-tests")]


def test_a_match_says_which_spelling_of_an_alias_member_fired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "watchlists.yaml").write_text(
        "aliases:\n  leaders: [Kim Jong Un, Шойгу]\n"
        "watchlists:\n  - {id: leaders, title: Leaders, query: '@leaders', channels: [console]}\n",
        encoding="utf-8",
    )
    items = write_items(
        tmp_path,
        json.dumps({"id": "a", "title": "Kim Chong-un meets Shoygu", "summary": ""}),
        json.dumps({"id": "b", "title": "Kim Jong Un meets Putin", "summary": ""}),
    )
    status, rows, _ = run(["--config-dir", str(tmp_path), items], capsys)
    assert status == 0
    assert rows[0]["spellings"] == [
        {"matched": "Kim Chong-un", "alias": "@leaders", "member": "Kim Jong Un"},
        {"matched": "Shoygu", "alias": "@leaders", "member": "Шойгу"},
    ]
    assert "spellings" not in rows[1]  # the member as written fired


def test_a_match_names_the_form_of_a_marked_term_that_fired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "watchlists.yaml").write_text(
        "aliases:\n  dprk: [КНДР, Северная Корея, Пхеньян]\n"
        "watchlists:\n  - id: ru\n    title: Launches\n"
        "    query: '@dprk~ AND (\"баллистическая ракета\"~ OR запуск)'\n",
        encoding="utf-8",
    )
    items = write_items(
        tmp_path,
        json.dumps({"id": "a", "title": "В Пхеньяне заявили о пуске баллистических ракет"}),
        json.dumps({"id": "b", "title": "Северная Корея объявила о запуске спутника"}),
    )
    status, rows, _ = run(["--config-dir", str(tmp_path), items], capsys)
    assert status == 0
    # the hits are the forms as the item has them; запуск was not marked: "b" does not match
    assert rows == [
        {
            "id": "a",
            "watchlist": "ru",
            "terms": ["Пхеньяне", "баллистических ракет"],
            "snippet": "В Пхеньяне заявили о пуске баллистических ракет",
        }
    ]
