"""docker-compose.yml: valid for a real compose parser, and shaped for operations.

There is no Docker engine here, so ``docker-compose config`` (Debian's Compose, installed by
``scripts/ensure-ops-tools``) is the proof that Compose accepts the file; the rest reads the
YAML itself. ``tests/ops/test_dockerfile.py`` runs the services' commands for real.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.processes import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
APP = ("migrate", "worker-poll", "worker-deliver", "beat")
LONG_RUNNING = ("redis", "postgres", "worker-poll", "worker-deliver", "beat", "flower", "mailpit")
WORKERS = {"worker-poll": "poll", "worker-deliver": "deliver"}


def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines())
    return {k: v for k, *rest in pairs if k and not k.startswith("#") for v in rest}


def compose_config(tmp_path: Path, env_text: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (scripts/ensure-ops-tools installs it)")
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text(env_text)
    cmd = [binary, "--project-directory", str(tmp_path), "-f", "docker-compose.yml", *args]
    return subprocess.run(
        [*cmd, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_docker_compose_accepts_the_file_with_the_example_env(tmp_path: Path) -> None:
    proc = compose_config(tmp_path, ENV_EXAMPLE.read_text())
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)["services"]
    env = resolved["worker-deliver"]["environment"]
    example = env_example()
    assert env["WATCHFLOOR_DATABASE_URL"] == (
        f"postgresql+psycopg://watchfloor:{example['POSTGRES_PASSWORD']}@postgres:5432/watchfloor"
    )
    assert env["WATCHFLOOR_BROKER_URL"] == f"redis://:{example['REDIS_PASSWORD']}@redis:6379/0"
    assert env["WATCHFLOOR_CONFIG_DIR"] == "/app/config"
    assert env["SMTP_PASSWORD"] == example["SMTP_PASSWORD"]  # .env reaches the app
    assert resolved["worker-poll"]["volumes"] == [f"{tmp_path / 'config'}:/app/config:ro"]
    assert resolved["redis"]["command"][-1] == example["REDIS_PASSWORD"]
    assert resolved["flower"]["profiles"] == ["monitoring"]
    assert resolved["mailpit"]["profiles"] == ["dev"]


def test_docker_compose_refuses_to_start_without_a_password(tmp_path: Path) -> None:
    env = re.sub(r"(?m)^REDIS_PASSWORD=.*\n", "", ENV_EXAMPLE.read_text())
    proc = compose_config(tmp_path, env)
    assert proc.returncode != 0
    assert "set REDIS_PASSWORD in .env" in proc.stderr


def test_workers_are_separate_by_queue_and_scalable() -> None:
    svc = services()
    for name, queue in WORKERS.items():
        command = svc[name]["command"]
        assert command[:4] == ["celery", "-A", "worker.app", "worker"]
        assert command[command.index("-Q") + 1] == queue
        assert "container_name" not in svc[name]  # compose cannot scale a fixed name
        assert "ports" not in svc[name]  # nor bind one host port twice
        assert svc[name]["expose"] == ["${WATCHFLOOR_METRICS_PORT:-9808}"]
        assert svc[name]["environment"]["WATCHFLOOR_METRICS_PORT"] == svc[name]["expose"][0]
        assert svc[name]["healthcheck"]["test"][1:] == [
            "watchfloor",
            "health",
            "--component",
            "worker",
        ]
    assert svc["beat"]["command"][:4] == ["celery", "-A", "worker.app", "beat"]
    assert svc["beat"]["healthcheck"]["test"][1:] == ["watchfloor", "health", "--component", "beat"]
    assert "deploy" not in svc["beat"]  # exactly one beat: nothing asks for replicas


def test_migrate_runs_once_before_the_app() -> None:
    svc = services()
    assert svc["migrate"]["command"] == ["watchfloor", "db", "upgrade"]
    assert svc["migrate"]["restart"] == "no"  # a one-shot job, not restarted when done
    for name in ("worker-poll", "worker-deliver", "beat"):
        migrate = svc[name]["depends_on"]["migrate"]
        assert migrate == {"condition": "service_completed_successfully"}
        assert svc[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert svc["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_every_app_service_shares_image_config_and_secrets() -> None:
    svc = services()
    for name in APP:
        assert svc[name]["image"] == svc["beat"]["image"]
        assert svc[name]["env_file"] == ".env"
        assert svc[name]["volumes"] == ["./config:/app/config:ro"]
        assert svc[name]["environment"]["WATCHFLOOR_CONFIG_DIR"] == "/app/config"
    for name in LONG_RUNNING:
        assert svc[name]["restart"] == "unless-stopped", name
        assert all(str(p).startswith("127.0.0.1:") for p in svc[name].get("ports", ())), name


def test_redis_keeps_tasks_and_postgres_keeps_data() -> None:
    svc = services()
    redis_cmd = svc["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert redis_cmd[redis_cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis_cmd[redis_cmd.index("--requirepass") + 1].startswith("${REDIS_PASSWORD")
    assert "redis-cli ping" in svc["redis"]["healthcheck"]["test"][1]
    assert svc["redis"]["volumes"] == ["redis-data:/data"]
    assert "pg_isready" in svc["postgres"]["healthcheck"]["test"][1]
    assert svc["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert set(yaml.safe_load(COMPOSE.read_text())["volumes"]) == {"redis-data", "postgres-data"}


def test_env_example_documents_every_variable() -> None:
    text = ENV_EXAMPLE.read_text()
    documented = env_example()
    required = set(re.findall(r"\$\{([A-Z0-9_]+)(?::\?[^}]*)?\}", COMPOSE.read_text()))
    assert required <= documented.keys(), required - documented.keys()
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "SMTP_PASSWORD", "WEBHOOK_SECRET"):
        assert name in documented
    lines = text.splitlines()
    for i, line in enumerate(lines):  # each variable under a comment that explains it
        if line and not line.startswith("#"):
            above = next(lines[j] for j in range(i - 1, -1, -1) if not _is_var(lines[j]))
            assert above.startswith("#"), line


def test_every_setting_the_code_reads_is_set_or_documented() -> None:
    read = set()
    for package in ("worker", "feeds", "alerts", "common", "web"):
        for path in (REPO / package).rglob("*.py"):
            read |= set(re.findall(r"\"(WATCHFLOOR_[A-Z0-9_]+)\"", path.read_text()))
    compose_set = {k for s in services().values() for k in (s.get("environment") or {})}
    dockerfile_set = set(
        re.findall(r"\b(WATCHFLOOR_[A-Z0-9_]+)=", (REPO / "Dockerfile").read_text())
    )
    missing = read - env_example().keys() - compose_set - dockerfile_set
    assert not missing, f"add to .env.example with a comment: {sorted(missing)}"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # ignore everything (.env, .git, .venv, var/), then allow:
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {"pyproject.toml", "worker", "feeds", "alerts", "common", "web", "config"}
    assert "**/__pycache__" in patterns


def _is_var(line: str) -> bool:
    return bool(line) and not line.startswith("#")
