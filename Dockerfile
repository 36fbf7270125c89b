# One image for the user-code server, the webserver and the daemon (docker-compose.yml).
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir uv

WORKDIR /opt/formulacode
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY formulacode_assets ./formulacode_assets
RUN uv sync --frozen --no-dev

ENV PATH=/opt/formulacode/.venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home \
    FORMULACODE_DATA_DIR=/srv/formulacode/data \
    FORMULACODE_CACHE_DIR=/srv/formulacode/cache
COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
