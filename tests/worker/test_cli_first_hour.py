"""A new user's first hour: every documented command, on a fresh clone's empty ``var/`` and on
a broken config, says what it promises (JSON where ``--json``) and never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.helpers.configdir import write_config
from tests.helpers.processes import tracebacks
from worker import runtime as runtime_module
from worker.cli import build_parser, main
from worker.db import head_revision

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<item><guid>w1</guid><title>North Korea fires ballistic missile</title>
<link>http://127.0.0.1:9/w1</link><description>Pyongyang launched it.</description></item>
</channel></rss>"""

# (arguments, what stdout must be). {feed} and {items} are files the test writes, {out} one
# a command may write, {labels} the shipped labelled set; "json" means every stdout line is
# a JSON object, "text" any output that is not a traceback.
COMMANDS: list[tuple[str, str]] = [
    ("--version", "version"),
    ("--help", "text"),
    ("check", "text"),
    ("poll", "json"),
    ("poll wire", "json"),
    ("poll wire --deliver", "json"),
    ("parse {feed}", "json"),
    ("match {items}", "json"),
    ("match --watchlist missile-tests {items}", "json"),
    ("backtest", "text"),
    ("backtest --json", "json"),
    ("backtest --since 30m --watchlist missile-tests", "text"),
    ("backtest --since banana", "text"),
    ("backtest --since 99999999d", "text"),
    ("backtest --watchlist nope", "text"),
    ("backtest --labels {labels}", "text"),
    ("backtest --labels {labels} --json", "json"),
    ("backtest --labels {items}", "text"),
    ("backtest --labels {labels} --since 1d", "text"),
    ("eval export", "json"),
    ("eval export --since 1d --out {out}", "text"),
    ("eval export --since banana", "text"),
    ("feeds", "text"),
    ("feeds --json", "json"),
    ("deliveries", "text"),
    ("deliveries --json", "json"),
    ("deliveries --status dead", "text"),
    ("deliveries retry --all-dead", "text"),
    ("deliveries retry msg_nope", "text"),
    ("silence add --watchlist missile-tests --for 2h --reason drill", "text"),
    ("silence add --watchlist missile-tests --for 0m", "text"),
    ("silence add --watchlist missile-tests --for 99999999d", "text"),
    ("silence list", "text"),
    ("silence remove 1", "text"),
    ("send-test console", "text"),
    ("health", "text"),
    ("status", "text"),
    ("status --limit -5", "text"),
    ("parse /dev/null", "text"),
    ("db current", "text"),
    ("db upgrade", "text"),
    ("run --no-migrate --help", "text"),
    ("web --help", "text"),
    ("user list", "text"),
    ("user add viewer1 --role viewer", "text"),
    ("token list", "text"),
    ("token add t1 --user nobody", "text"),
]


# refused, each in one line: a bad argument or what the command cannot do
FAILING = {
    "backtest --since banana",
    "backtest --since 99999999d",
    "deliveries retry msg_nope",
    "silence remove 1",
    "backtest --watchlist nope",
    "backtest --labels {items}",  # items without labels are no labelled set
    "backtest --labels {labels} --since 1d",
    "eval export --since banana",
    "silence add --watchlist missile-tests --for 0m",
    "silence add --watchlist missile-tests --for 99999999d",
    "status --limit -5",
    "parse /dev/null",
    "user add viewer1 --role viewer",  # no --password-stdin: refused, never prompted
    "token add t1 --user nobody",
}


def _env(tmp_path: Path, config_dir: Path) -> dict[str, str]:
    return {
        "WATCHFLOOR_CONFIG_DIR": str(config_dir),
        "WATCHFLOOR_VAR_DIR": str(tmp_path / "var"),  # empty: the embedded database is new
        "WATCHFLOOR_ALLOW_PRIVATE_URLS": "1",
        "WATCHFLOOR_BROKER_URL": "memory://",
    }


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def _run(
    tmp_path: Path,
    config_dir: Path,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    database_url: str | None = None,
) -> Outcome:
    """``watchfloor COMMAND`` in this process (a subprocess each would cost 2 s of imports;
    test_entry_point_in_a_subprocess covers the real entry point), with a fresh runtime."""
    feed, items = tmp_path / "feed.xml", tmp_path / "items.jsonl"
    feed.write_text(FEED)
    items.write_text(json.dumps({"id": "1", "title": "North Korea ballistic missile"}) + "\n")
    for name in [k for k in os.environ if k.startswith("WATCHFLOOR_")]:
        monkeypatch.delenv(name)
    database = {"WATCHFLOOR_DATABASE_URL": database_url} if database_url else {}
    for name, value in (_env(tmp_path, config_dir) | database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runtime_module, "_runtime", None)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        out, labels = tmp_path / "labels.jsonl", REPO / "tests" / "data" / "eval_watchlists.jsonl"
        returncode = main(command.format(feed=feed, items=items, out=out, labels=labels).split())
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        returncode = exc.code if isinstance(exc.code, int) else 1
    finally:
        if runtime_module._runtime is not None:
            runtime_module._runtime[1].engine.dispose()
        root.handlers[:], root.level = handlers, level
    out, err = capsys.readouterr()
    return Outcome(returncode, out, err)


def _good_config(path: Path) -> Path:
    feeds = [{"id": "wire", "url": "http://127.0.0.1:9/closed.xml", "interval": "1m"}]
    return write_config(path, feeds=feeds)


def _broken_config(path: Path) -> Path:
    _good_config(path)
    (path / "watchlists.yaml").write_text("watchlists:\n  - id: x\n    query: '(unbalanced'\n")
    return path


def _assert_promised(result: Outcome | subprocess.CompletedProcess[str], promise: str) -> None:
    output = result.stdout + result.stderr
    assert tracebacks(output) == [], output
    assert "Traceback" not in output
    if promise == "json":
        for line in result.stdout.splitlines():
            assert isinstance(json.loads(line), dict), line
    if promise == "version":
        assert re.fullmatch(r"watchfloor \d+\.\d+\.\S+\n", result.stdout)


@pytest.mark.parametrize(("command", "promise"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_on_a_fresh_var_dir(
    tmp_path: Path, command: str, promise: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    result = _run(tmp_path, _good_config(tmp_path / "config"), command, monkeypatch, capsys)
    _assert_promised(result, promise)
    expected_failure = command.startswith(("poll", "health"))
    expected_failure |= command in FAILING
    assert (result.returncode != 0) == expected_failure, (result.stdout, result.stderr)
    if command.startswith("poll"):
        assert json.loads(result.stdout.splitlines()[-1])["status"] == "error"


@pytest.mark.parametrize(("command", "promise"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_on_a_broken_config(
    tmp_path: Path, command: str, promise: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    result = _run(tmp_path, _broken_config(tmp_path / "config"), command, monkeypatch, capsys)
    _assert_promised(result, promise)
    reads_no_config = ("--", "parse", "db", "deliveries", "status", "run", "silence list", "web")
    reads_no_config += ("user", "token", "eval")
    refused_first = ("silence remove", "backtest --since b", "backtest --since 9", "silence add")
    needs_config = not command.startswith((*reads_no_config, *refused_first))
    if needs_config:
        assert result.returncode != 0, (command, result.stdout, result.stderr)
        assert "unbalanced parenthesis" in result.stderr or "health" in command, result.stderr


@pytest.mark.parametrize("command", ["feeds --json", "deliveries", "--version"])
def test_entry_point_in_a_subprocess(tmp_path: Path, command: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
    env |= _env(tmp_path, _good_config(tmp_path / "config"))
    result = subprocess.run(
        [sys.executable, "-m", "worker", *command.split()],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    _assert_promised(result, "json" if "json" in command else "text")
    assert result.stderr == "", (
        "at the default level, a command's log says nothing when all is well"
    )


def test_every_command_and_option_is_covered_and_has_help() -> None:
    parser = build_parser()
    commands = {c.split()[0] for c, _ in COMMANDS if not c.startswith("--")}
    assert set(_subparsers(parser)) == commands
    assert _without_help(parser, "watchfloor") == []


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: sub for group in groups for name, sub in group.choices.items()}


def _without_help(parser: argparse.ArgumentParser, name: str) -> list[str]:
    """Every argument, option and subcommand, at any depth, that has no help text."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            missing += [f"{name} {sub}" for sub in action.choices if sub not in helped]
            for sub_name, sub in action.choices.items():
                missing += _without_help(sub, f"{name} {sub_name}")
        elif action.dest != "help" and not action.help:
            missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_the_readme_documents_every_command() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## CLI", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`watchfloor ([a-z-]+)", table))
    assert documented == set(_subparsers(build_parser()))


@pytest.mark.parametrize("command", ["db current", "db upgrade", "feeds", "silence list"])
def test_an_unreachable_database_is_one_line(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    url = "postgresql+psycopg://wf:secret@127.0.0.1:1/wf"
    result = _run(tmp_path, _good_config(tmp_path / "config"), command, monkeypatch, capsys, url)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: database postgresql+psycopg://wf:***@127.0.0.1:1/wf: ")
    assert "secret" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["feeds", "deliveries", "silence list", "backtest", "status"])
def test_an_external_database_is_not_migrated_behind_its_operators_back(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    external = tmp_path / "external.db"
    url = f"sqlite:///{external}"
    result = _run(tmp_path, _good_config(tmp_path / "config"), command, monkeypatch, capsys, url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: database schema is at nothing, code needs "
        f"{head_revision()}: run 'watchfloor db upgrade'"
    ]
