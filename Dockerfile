# The ci-perf GitHub Action: `ci-perf action` on a small Python image.
#
# BASE_IMAGE may be any Debian-like image with python3 (3.11+, with its venv module) on PATH:
# /usr/local/bin/python3 in the official image, /usr/bin/python3 on Debian's own. Both stages
# use the same base, so the venv's link to its interpreter stays valid in the final image.
# The container test (tests/container) builds this file on a Debian base made with mmdebstrap.
#
# Default: python:3.12.15-slim-bookworm, pinned to the multi-platform index digest that several
# public Dockerfiles give for that tag (observed 2026-10-03). Docker Hub cannot be reached from
# our machines, so the digest is not verified here; refresh tag and digest together with
# `docker buildx imagetools inspect python:3.12-slim-bookworm`.
ARG BASE_IMAGE=python:3.12.15-slim-bookworm@sha256:54c85f3c47607a77f32adec749d3c81d1348bf25833671f512b26a9b6d778cb3

FROM ${BASE_IMAGE} AS build
# the Makefile's uv (tests/container/test_container.py checks that the two agree)
ARG UV_VERSION=0.13.9
# UV_SYSTEM_CERTS: trust the base's CA store, so a base that adds a proxy's CA builds too
ENV UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_SYSTEM_CERTS=1 \
    UV_PROJECT_ENVIRONMENT=/opt/ci-perf \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# the locked dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3
# then ci-perf itself, as a wheel (templates/ goes in as ci_perf/templates), not editable
COPY README.md ./
COPY templates templates
COPY ci_perf ci_perf
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python python3

# the final stage: the base and the venv; no uv, pip, sources or build cache
FROM ${BASE_IMAGE}
COPY --from=build /opt/ci-perf /opt/ci-perf
ENV PATH=/opt/ci-perf/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# GitHub runs Docker actions as root with its own working directory: no USER, no WORKDIR
ENTRYPOINT ["ci-perf", "action"]
