# syntax=docker/dockerfile:1
# Watchfloor image: one image for every role (migrate, worker-poll, worker-deliver, beat).
#   docker build -t watchfloor .          (or: docker compose build)
# The builder stage turns the dependencies and the app into wheels; the final stage installs
# them from a bind mount, so neither the wheels, pip's cache nor a compiler reach the image.
# Layers are ordered for the cache: dependencies depend on pyproject.toml only, so a code
# change rebuilds just the small app wheel.
# tests/ops/test_dockerfile.py runs these pip steps in a fresh virtualenv and starts the
# services docker-compose.yml names from it, so keep each install step a plain pip command.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# A compiler for any dependency without a wheel for this platform; it stays in this stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml ./
# The [project] dependencies, read from pyproject.toml, as wheels (re-run only when it changes).
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip wheel --wheel-dir /wheels/deps -r requirements.txt \
    && cp requirements.txt /wheels/deps/requirements.txt
COPY worker ./worker
COPY feeds ./feeds
COPY alerts ./alerts
COPY common ./common
COPY web ./web
RUN pip wheel --no-deps --wheel-dir /wheels/app .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    WATCHFLOOR_CONFIG_DIR=/app/config \
    WATCHFLOOR_VAR_DIR=/var/lib/watchfloor \
    WATCHFLOOR_LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/watchfloor-metrics
RUN groupadd --system --gid 10001 watchfloor \
    && useradd --system --uid 10001 --gid watchfloor --home-dir /var/lib/watchfloor \
       --shell /usr/sbin/nologin watchfloor \
    && mkdir -p /var/lib/watchfloor /tmp/watchfloor-metrics \
    && chown watchfloor:watchfloor /var/lib/watchfloor /tmp/watchfloor-metrics
RUN --mount=type=bind,from=builder,source=/wheels/deps,target=/wheels/deps \
    pip install --no-index --find-links /wheels/deps -r /wheels/deps/requirements.txt
RUN --mount=type=bind,from=builder,source=/wheels/app,target=/wheels/app \
    pip install --no-index --no-deps /wheels/app/watchfloor-*.whl
WORKDIR /app
# A default config; docker-compose.yml mounts ./config over it read-only.
COPY config ./config
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["watchfloor", "health"]
CMD ["watchfloor", "run"]
