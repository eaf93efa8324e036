# The ci-perf GitHub Action: `ci-perf action` on a small Python image.
#
# BASE_IMAGE may be any Debian-like image with python3 (3.11+, with its venv module) on PATH and
# apt-get: /usr/local/bin/python3 in the official image, /usr/bin/python3 on Debian's own. Every
# stage starts from that base, so the venv's link to its interpreter stays valid in the final image,
# which is the slimmed base copied whole, plus the venv. docker/slim.py makes it small (448 → 284 MB;
# docs/CONTAINER.md). The container test (tests/container) builds this file on a Debian base made
# with mmdebstrap.
#
# Default: python:3.12.15-slim-bookworm, pinned to the multi-platform index digest that several
# public Dockerfiles give for that tag (observed 2026-10-03). Docker Hub cannot be reached from
# our machines, so the digest is not verified here; refresh tag and digest together with
# `docker buildx imagetools inspect python:3.12-slim-bookworm`.
ARG BASE_IMAGE=python:3.12.15-slim-bookworm@sha256:54c85f3c47607a77f32adec749d3c81d1348bf25833671f512b26a9b6d778cb3

FROM ${BASE_IMAGE} AS build
# the Makefile's uv (tests/container/test_container.py checks that the two agree)
ARG UV_VERSION=0.13.9
# UV_SYSTEM_CERTS: trust the base's CA store, so a base that adds a proxy's CA builds too.
# No bytecode here: docker/slim.py compiles what ci-perf imports, in the runtime stage.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=0 \
    UV_LINK_MODE=copy \
    UV_SYSTEM_CERTS=1 \
    UV_PROJECT_ENVIRONMENT=/opt/ci-perf \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# binutils for strip (docker/slim.py), in the build stage only: any version strips alike, and a
# pinned one would break the build on the base's next point release (hence DL3008's ignore)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# the locked dependencies first, slimmed (docker/slim.py): these layers are rebuilt only when
# pyproject.toml or uv.lock change, and strip runs on the dependencies only
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3
RUN --mount=type=bind,source=docker/slim.py,target=/tmp/slim.py python3 /tmp/slim.py venv /opt/ci-perf
# then ci-perf itself, as a wheel (templates/ goes in as ci_perf/templates), not editable
COPY README.md ./
COPY templates templates
COPY ci_perf ci_perf
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python python3

# the base without what the action never uses (Debian's package management, Perl, docs...)
FROM ${BASE_IMAGE} AS slim-base
RUN --mount=type=bind,source=docker/slim.py,target=/tmp/slim.py python3 /tmp/slim.py base

# The slimmed base copied whole, so that what its stage deleted is gone rather than hidden under a
# later layer (the base's own layers would keep it): copying the whole filesystem is the point here
# (hence DL3067's ignore). Then the venv, and bytecode for the modules ci-perf imports.
# No uv, pip, sources or build cache.
FROM scratch
# hadolint ignore=DL3067
COPY --from=slim-base / /
COPY --from=build /opt/ci-perf /opt/ci-perf
# the base's own ENV does not come through a copy: PATH and LANG as the official image sets them
ENV PATH=/opt/ci-perf/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN --mount=type=bind,source=docker/slim.py,target=/tmp/slim.py ["python", "/tmp/slim.py", "bytecode", "/opt/ci-perf"]
# GitHub runs Docker actions as root with its own working directory: no USER, no WORKDIR
ENTRYPOINT ["ci-perf", "action"]
