# One image for the user-code server, the webserver, the daemon and every run's container
# (docker-compose.yml). Any Debian-like base with Python 3.11+ works; where Docker Hub is
# unreachable pass a local one: --build-arg BASE_IMAGE=fc-debian:bookworm.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# Behind a TLS-intercepting proxy put its CA certificates (*.crt / *.pem) into deploy/extra-ca/:
# they are appended to the system bundle that pip, uv and git trust.
COPY deploy/extra-ca/ /etc/formulacode/extra-ca/
RUN set -eu; \
    if ! command -v git >/dev/null || [ ! -f /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi; \
    cat /etc/ssl/certs/ca-certificates.crt > /etc/formulacode/ca-bundle.pem; \
    for cert in /etc/formulacode/extra-ca/*.crt /etc/formulacode/extra-ca/*.pem; do \
      [ -f "$cert" ] && cat "$cert" >> /etc/formulacode/ca-bundle.pem; \
    done; \
    true
ENV SSL_CERT_FILE=/etc/formulacode/ca-bundle.pem \
    PIP_CERT=/etc/formulacode/ca-bundle.pem \
    REQUESTS_CA_BUNDLE=/etc/formulacode/ca-bundle.pem \
    GIT_SSL_CAINFO=/etc/formulacode/ca-bundle.pem \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy
ARG PIP_INDEX_URL
ARG UV_INDEX_URL
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir --quiet uv

WORKDIR /opt/formulacode
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3 --no-cache
COPY formulacode_assets ./formulacode_assets
RUN /opt/uv/bin/uv sync --frozen --no-dev --python python3 --no-cache

ENV PATH=/opt/formulacode/.venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home \
    FORMULACODE_DATA_DIR=/srv/formulacode/data \
    FORMULACODE_CACHE_DIR=/srv/formulacode/cache
COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
