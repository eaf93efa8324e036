# The ci-perf GitHub Action: `ci-perf action` on a small Python image.
#
# BASE_IMAGE may be any Debian-like image with python3 (3.11+, with its venv module) on PATH and
# apt-get: /usr/local/bin/python3 in the official image, /usr/bin/python3 on Debian's own. The build
# and runtime stages use the same base, so the venv's link to its interpreter stays valid in the
# final image, which is the runtime stage flattened. docker/slim.py makes it small (448 → 284 MB;
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
# the locked dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3
# then ci-perf itself, as a wheel (templates/ goes in as ci_perf/templates), not editable
COPY README.md ./
COPY templates templates
COPY ci_perf ci_perf
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python python3
# the dependencies' tests, headers and stubs out, shared objects stripped, duplicates linked
COPY docker/slim.py /opt/slim.py
RUN python3 /opt/slim.py venv /opt/ci-perf

# the base and the venv; what the action never uses leaves the base, bytecode for what it imports
FROM ${BASE_IMAGE} AS runtime
COPY --from=build /opt/ci-perf /opt/ci-perf
COPY docker/slim.py /opt/slim.py
RUN /opt/ci-perf/bin/python /opt/slim.py runtime /opt/ci-perf \
    && rm /opt/slim.py

# One layer: what the runtime stage deleted is gone, not hidden under a later layer (the base's own
# layers would keep it). No uv, pip, sources or build cache. Copying the whole filesystem is the point
# here (hence DL3067's ignore): the runtime stage is the image, slimmed.
FROM scratch
# hadolint ignore=DL3067
COPY --from=runtime / /
# the base's own ENV does not come through a copy: PATH and LANG as the official image sets them
ENV PATH=/opt/ci-perf/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# GitHub runs Docker actions as root with its own working directory: no USER, no WORKDIR
ENTRYPOINT ["ci-perf", "action"]
