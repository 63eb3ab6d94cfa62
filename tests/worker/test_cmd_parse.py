"""``watchfloor parse PATH|URL``: JSON lines out, one-line errors, exit codes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from feeds.fetch import FetchLimits
from tests.feeds.loopback import RSS, LoopbackServer, send
from worker.commands.parse import register, run

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
CAP = FetchLimits().max_bytes
TOO_LARGE = f"error: body larger than the {CAP:,}-byte cap"  # as for a fetched body
CP1251 = (
    "<?xml version='1.0' encoding='windows-1251'?><rss version='2.0'><channel>"
    "<item><guid>n1</guid><title>Ракетный удар</title><link>/n/1?utm_source=x</link>"
    "<description>&lt;p&gt;Текст&lt;/p&gt;</description>"
    "<pubDate>Sun, 01 Mar 2026 09:00:00 +0300</pubDate></item></channel></rss>"
).encode("cp1251")


def args(source: str, allow_private: bool = False) -> argparse.Namespace:
    return argparse.Namespace(source=source, allow_private=allow_private, feed=None)


def test_register_adds_the_subcommand() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    parsed = parser.parse_args(["parse", "feed.xml", "--allow-private"])
    assert (parsed.source, parsed.allow_private, parsed.func) == ("feed.xml", True, run)


def test_a_file_prints_one_json_line_per_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(CP1251)
    assert run(args(str(path))) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {
        "id": "n1",  # what `watchfloor match` reads
        "guid": "n1",
        "title": "Ракетный удар",
        "url": "",  # a relative link with no feed URL to resolve it against
        "summary": "Текст",
        "published_at": "2026-03-01T06:00:00+00:00",
    }


def test_a_url_is_fetched_when_private_addresses_are_allowed_by_env(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WATCHFLOOR_ALLOW_PRIVATE_URLS", "yes")
    with LoopbackServer() as server:
        server.routes["/ru.xml"] = lambda h: send(h, 200, CP1251, {"Content-Type": "text/xml"})
        assert run(args(server.url("/ru.xml"))) == 0
        expected_url = server.url("/n/1")
    row = json.loads(capsys.readouterr().out)
    assert (row["title"], row["url"]) == ("Ракетный удар", expected_url)


def test_a_loopback_url_is_refused_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WATCHFLOOR_ALLOW_PRIVATE_URLS", raising=False)
    with LoopbackServer() as server:
        server.routes["/feed.xml"] = lambda h: send(h, 200, RSS)
        assert run(args(server.url("/feed.xml"))) == 1
        assert server.paths() == []
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: 127.0.0.1 is a loopback address\n"


@pytest.mark.parametrize(
    ("source", "body", "message"),
    [
        ("file:///etc/passwd", None, "error: scheme 'file' is not allowed, only http/https\n"),
        ("missing.xml", None, "error: cannot read missing.xml: No such file or directory\n"),
        ("page.html", b"<html><body>hi</body></html>", "error: not a feed: an HTML page\n"),
        ("empty.xml", b"", "error: empty document\n"),
    ],
)
def test_failures_print_one_line_and_return_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
    body: bytes | None,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if body is not None:
        (tmp_path / source).write_bytes(body)
    assert run(args(source)) == 1
    assert capsys.readouterr().err == message


@pytest.mark.skipif(not (REPO / "worker" / "__main__.py").exists(), reason="no worker/__main__.py")
@pytest.mark.timeout(60)
def test_python_m_worker_parse_end_to_end() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY")}
    env.pop("WATCHFLOOR_ALLOW_PRIVATE_URLS", None)
    with LoopbackServer() as server:
        server.routes["/feed.xml"] = lambda h: send(h, 200, RSS)
        command = [sys.executable, "-m", "worker", "parse", server.url("/feed.xml")]
        refused = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        allowed = subprocess.run(
            [*command, "--allow-private"], cwd=REPO, env=env, capture_output=True, text=True
        )
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.strip().splitlines()[-1] == "error: 127.0.0.1 is a loopback address"
    assert "Traceback" not in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["title"] == "First"


def test_a_file_at_the_fetch_cap_is_read_and_one_byte_more_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS + b" " * (CAP - len(RSS)))
    assert run(args(str(path))) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["title"] == "First"
    with path.open("ab") as f:
        f.write(b" ")
    assert run(args(str(path))) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", TOO_LARGE + "\n")


# Runs a command and prints its peak RSS (kB) and exit status. A child started straight from
# pytest would report pytest's own peak: Linux carries the RSS high-water mark of the
# (v)forked parent's memory into the child across exec. This small process starts fresh.
PEAK_RSS = (
    "import resource, subprocess, sys; status = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, status)"
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kB on Linux only")
@pytest.mark.timeout(120)
def test_a_200_mb_file_is_refused_without_reading_it_into_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.xml"
    with path.open("wb") as f:
        f.truncate(200 * MB)  # sparse: no disk used
    command = [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "worker", "parse", str(path)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    peak_kb, status = map(int, result.stdout.split())  # the command itself printed nothing
    assert (status, result.stderr) == (1, TOO_LARGE + "\n")
    assert peak_kb * 1024 < 150 * MB
