# The model image: esrunner (rslp), one project under /opt/project, and that project's
# locked dependencies. Built by `esbuild build data/<project>` (BuildKit); see docs/build.md.
#
#   base     the base image + a venv with the base lock installed (--require-hashes) in
#            three layers every project image shares, each cached by its own pins alone
#   deps     base + what the project's lock adds (often nothing: an empty layer)
#   runtime  deps + rslp + the project; non-root; ENTRYPOINT esrunner.
# Wheels come from .esbuild/<part>/wheelhouse (offline builds: --network=none) or the index
# (PIP_SOURCE="").
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG PIP_SOURCE="--no-index --find-links=/tmp/esbuild/wheelhouse"
# What deps builds on: the base stage below, or the esrunner-env:<digest> image esbuild
# found in the engine or the registry, or built once with --target base.
ARG DEPS_FROM=base

FROM ${BASE_IMAGE} AS base
ARG PIP_SOURCE
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1
# The base lock in three layers, most stable first (esbuild's BASE_PARTS): .esbuild/cuda/
# (the CUDA runtime wheels), .esbuild/torch/ (torch, torchvision, triton), .esbuild/base/
# (every other base pin), each with its pins and wheels (staged by esbuild build) and
# bind-mounted, so neither lands in a layer and each layer's cache key is exactly those.
# With the earlier layers in the build cache, a bump of an ordinary pin rebuilds and
# re-pushes the last layer only; an engine pushes or pulls the three side by side. The lock
# holds every dependency: --no-deps.
RUN --mount=type=bind,source=.esbuild/cuda,target=/tmp/esbuild \
    python3 -m venv /opt/venv \
    && if [ -s /tmp/esbuild/requirements.lock ]; then \
        /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: ${PIP_SOURCE} \
            -r /tmp/esbuild/requirements.lock; \
    fi
RUN --mount=type=bind,source=.esbuild/torch,target=/tmp/esbuild \
    if [ -s /tmp/esbuild/requirements.lock ]; then \
        /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: ${PIP_SOURCE} \
            -r /tmp/esbuild/requirements.lock; \
    fi
RUN --mount=type=bind,source=.esbuild/base,target=/tmp/esbuild \
    /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: ${PIP_SOURCE} \
        -r /tmp/esbuild/requirements.lock \
    && /opt/venv/bin/pip check

FROM ${DEPS_FROM} AS deps
ARG PIP_SOURCE
# .esbuild/project/: the pins the project's lock adds to the base's (their dependencies
# included, so --no-deps), and their wheels.
RUN --mount=type=bind,source=.esbuild/project,target=/tmp/esbuild \
    if [ -s /tmp/esbuild/requirements.lock ]; then \
        /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: ${PIP_SOURCE} \
            -r /tmp/esbuild/requirements.lock; \
    fi

FROM deps AS runtime
ARG PROJECT
# Any uid runs it (docker run --user "$(id -u):$(id -g)", Kubernetes' runAsUser): every
# place a run writes besides its scratch is under /tmp (HOME and the caches of torch,
# matplotlib and the bucket's node copy), and /work is open to all (sticky, like /tmp).
# With --read-only, give a tmpfs /tmp and a writable scratch mount (docs/build.md).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/esrunner \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/tmp \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/.config/matplotlib \
    ESRUNNER_NODE_DIR=/tmp/esrunner
RUN echo "esrunner:x:10001:10001:esrunner:/tmp:/usr/sbin/nologin" >> /etc/passwd \
    && echo "esrunner:x:10001:" >> /etc/group \
    && mkdir -p /work \
    && chmod 1777 /work
COPY rslp /opt/esrunner/rslp
RUN printf '#!/bin/sh\nexec /opt/venv/bin/python -m rslp.cli "$@"\n' > /usr/local/bin/esrunner \
    && chmod 0755 /usr/local/bin/esrunner
COPY data/${PROJECT} /opt/project
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["esrunner"]
CMD ["run", "/opt/project", "--scratch", "/work/scratch"]

# A model variant's image runs that variant by default (esrunner reads these; empty: none).
ARG RUN_CONFIG=""
ARG MODEL_CONFIG=""
ENV ESRUNNER_RUN_CONFIG=${RUN_CONFIG} ESRUNNER_MODEL_CONFIG=${MODEL_CONFIG}

# Labels last: they change every build and must not invalidate the layers above.
ARG VARIANT=""
ARG VERSION=""
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
ARG CONFIG_DIGEST=""
ARG CHECKPOINT_SHA256=""
ARG VAL_ACCURACY=""
ARG BASE_ENV=""
LABEL org.opencontainers.image.title="${PROJECT}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      io.esrunner.project="${PROJECT}" \
      io.esrunner.variant="${VARIANT}" \
      io.esrunner.config-digest="${CONFIG_DIGEST}" \
      io.esrunner.checkpoint-sha256="${CHECKPOINT_SHA256}" \
      io.esrunner.val-accuracy="${VAL_ACCURACY}" \
      io.esrunner.base-env="${BASE_ENV}"
