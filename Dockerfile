# syntax=docker/dockerfile:1
# The mlgov image: the code location (dagster code-server), the webserver, the daemon, the Celery
# workers and the MLflow server are all this image with another command (compose.yaml), so every
# process runs the exact dependency set of the committed uv.lock.
FROM python:3.11.7-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9.7 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    DVC_NO_ANALYTICS=1 DO_NOT_TRACK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# dependencies first (cached while only the code changes): exactly uv.lock, no dev tools
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev \
    && git init -q && git add -A && git -c user.email=build@mlgov.invalid -c user.name=build commit -qm image \
    && .venv/bin/mlgov data pull
# (the image's git commit is what provenance records; mount a real checkout to record yours)

FROM python:3.11.7-slim-bookworm
# git: provenance and DVC read the project repository; tini reaps the processes Dagster spawns
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.* tini=0.19.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 mlgov \
    && mkdir -p /state && chown mlgov /state
COPY --from=build --chown=mlgov:mlgov /app /app
WORKDIR /app
USER 10001
ENV PATH=/app/.venv/bin:$PATH \
    MLGOV_PROFILE=prod MLGOV_HOME=/state MLGOV_PROJECT_DIR=/app \
    DVC_NO_ANALYTICS=1 DO_NOT_TRACK=1 DAGSTER_DISABLE_TELEMETRY=1 MLFLOW_DISABLE_TELEMETRY=true
ENTRYPOINT ["tini", "--", "python", "-m", "mlgov_assets.deploy.entrypoint"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4266", "-m", "mlgov_assets.definitions", "--location-name", "mlgov"]
