"""The README's quick start is two commands, and CI runs exactly its test command."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the quick start has a sh code block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands_run_and_test() -> None:
    assert quick_start_commands() == ["make run", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    commands = [line.strip() for line in ci if line.strip() and not line.lstrip().startswith("#")]
    assert quick_start_commands()[1] in commands


def test_make_targets_exist_and_need_nothing_preinstalled() -> None:
    for target in ("run", "test"):
        dry = subprocess.run(
            ["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=30
        )
        assert dry.returncode == 0, dry.stderr
    makefile = (REPO / "Makefile").read_text()
    assert "-m venv" in makefile and "pip install" in makefile


def test_no_runtime_state_or_virtualenv_is_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert not [p for p in tracked if p.startswith(("var/", ".venv/")) or p == ".env"]


def test_the_quick_start_says_how_to_call_the_installed_command() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert ".venv/bin/watchfloor" in section and "source .venv/bin/activate" in section
    command = REPO / ".venv" / "bin" / "watchfloor"
    if command.exists():  # the venv that `make run` / `make test` create
        done = subprocess.run([str(command), "--version"], capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout.startswith("watchfloor ")


def test_the_environment_table_is_the_settings_table() -> None:
    from worker.settings import readme_rows

    readme = (REPO / "README.md").read_text()
    section = readme.split("### Environment", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows == readme_rows()
