# syntax=docker/dockerfile:1
#
# The spot-optimizer operator image.
#
#   docker build -t <registry>/spot-optimizer:<tag> .
#   docker push <registry>/spot-optimizer:<tag>
#
# Two stages: "builder" turns the lock file (requirements/operator.txt) and the project into wheels;
# the final stage installs exactly those wheels, offline and without resolving anything, on a clean
# slim base with no compilers, and runs as the non-root user 10001.
#
# The base is pinned by tag. For byte-for-byte rebuilds pin the digest too, e.g.
#   docker buildx imagetools inspect python:3.11.13-slim-bookworm
# and use python:3.11.13-slim-bookworm@sha256:<digest> below (or pass --build-arg PYTHON_IMAGE=...).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Build backend pinned, so that the project wheel does not depend on whatever setuptools is newest.
RUN pip install --no-cache-dir setuptools==80.9.0 wheel==0.45.1

WORKDIR /src

# 1. Every pinned runtime dependency as a wheel (binary wheels are taken as they are; a package that
#    ships only an sdist is built here, where build tools may live, never in the final image).
COPY requirements/operator.txt requirements/operator.txt
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels -r requirements/operator.txt

# 2. The project itself, without its dependencies (they are the lock's, above).
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY agent/ agent/
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist .


FROM ${PYTHON_IMAGE}

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="spot-optimizer" \
      org.opencontainers.image.description="Kubernetes operator that keeps EC2 workloads on the cheapest safe AWS Spot capacity" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib

RUN groupadd --system --gid 10001 spot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin spot

# The lock, then the project wheel, both with --no-deps and --no-index: pip installs exactly the pinned
# set and nothing else; `pip check` fails the build if the lock misses a dependency. The wheels are
# bind-mounted from the builder, so they take no space in the image.
COPY requirements/operator.txt /opt/spot-optimizer/requirements.txt
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,from=builder,source=/dist,target=/dist \
    pip install --no-cache-dir --no-index --no-deps --find-links=/wheels \
        -r /opt/spot-optimizer/requirements.txt \
    && pip install --no-cache-dir --no-index --no-deps /dist/spot_optimizer-*.whl \
    && pip check

USER 10001:10001
WORKDIR /tmp

# health (/healthz, /readyz), agent API, Prometheus metrics
EXPOSE 8081 8443 9090

# No Docker HEALTHCHECK: the image runs on Kubernetes, which ignores it and uses the chart's liveness
# (/healthz) and readiness (/readyz) probes on port 8081 instead; a second check here would only
# duplicate them (and the slim image has no curl to run one).
HEALTHCHECK NONE

ENTRYPOINT ["spot-operator"]
