# syntax=docker/dockerfile:1
#
# streamrec worker image.
#   docker build -t streamrec .
#   docker run --rm -e STREAMREC_BROKER_URL=kafka://broker:9092 streamrec            # worker
#   docker run --rm -e STREAMREC_BROKER_URL=kafka://broker:9092 streamrec topics create
# The image runs as an unprivileged user (uid 10001), keeps its RocksDB state under
# STREAMREC_DATA_DIR=/var/lib/streamrec (mount a volume there) and serves /metrics, /healthz and
# /readyz on port 6066. Every setting is a STREAMREC_* environment variable (streams/settings.py).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the package and its dependencies into a virtual environment -----------
FROM ${PYTHON_IMAGE} AS build

# pyproject.toml pins torch; PyPI's default Linux torch wheel pulls in several GB of CUDA
# libraries, so torch alone is installed first from PyTorch's CPU wheel index, at the version
# pyproject.toml pins (its +cpu build satisfies the pin); everything else comes from PyPI.
# Build with --build-arg TORCH_INDEX_URL= to take torch from PyPI too.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY models ./models
COPY schemas ./schemas
# DL3013 (unpinned pip install): torch's pin is read from pyproject.toml, "." is this project.
# hadolint ignore=DL3013
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        torch_pin="$(sed -nE 's/.*"(torch==[^"]+)".*/\1/p' pyproject.toml)" \
        && test -n "$torch_pin" \
        && pip install --index-url "$TORCH_INDEX_URL" "$torch_pin"; \
    fi \
    && pip install .

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

RUN groupadd --system --gid 10001 streamrec \
    && useradd --system --uid 10001 --gid streamrec --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin streamrec \
    && mkdir -p /var/lib/streamrec /models \
    && chown streamrec:streamrec /var/lib/streamrec

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    STREAMREC_DATA_DIR=/var/lib/streamrec \
    STREAMREC_WEB_HOST=0.0.0.0 \
    STREAMREC_WEB_PORT=6066

USER 10001:10001
WORKDIR /var/lib/streamrec
EXPOSE 6066

# Liveness of the worker's web server (the image has no curl: use Python's urllib).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STREAMREC_WEB_PORT', '6066'), timeout=4)"]

ENTRYPOINT ["streamrec"]
CMD ["worker"]
