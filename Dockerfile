# The model image: esrunner (rslp), one project under /opt/project, and that project's
# locked dependencies. Built by `esbuild build data/<project>` (BuildKit); see the README.
#
#   deps     the base image + a venv with requirements.lock installed (--require-hashes),
#            a layer of its own, cached across config changes; wheels come from
#            .esbuild/wheelhouse (offline builds: --network=none) or the index (PIP_SOURCE="").
#   runtime  deps + rslp + the project; non-root; ENTRYPOINT esrunner.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS deps
ARG PIP_SOURCE="--no-index --find-links=/tmp/esbuild/wheelhouse"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1
# .esbuild/ holds the project's requirements.lock and the wheelhouse (staged by esbuild
# build); bind-mounted, so neither lands in a layer, and the layer's cache key is exactly
# the lock and the wheels.
RUN --mount=type=bind,source=.esbuild,target=/tmp/esbuild \
    python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: ${PIP_SOURCE} \
        -r /tmp/esbuild/requirements.lock

FROM deps AS runtime
ARG PROJECT
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/esrunner \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/tmp \
    HOME=/home/esrunner
RUN echo "esrunner:x:10001:10001:esrunner:/home/esrunner:/usr/sbin/nologin" >> /etc/passwd \
    && echo "esrunner:x:10001:" >> /etc/group \
    && mkdir -p /home/esrunner /work \
    && chown 10001:10001 /home/esrunner /work
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
LABEL org.opencontainers.image.title="${PROJECT}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      io.esrunner.project="${PROJECT}" \
      io.esrunner.variant="${VARIANT}" \
      io.esrunner.config-digest="${CONFIG_DIGEST}" \
      io.esrunner.checkpoint-sha256="${CHECKPOINT_SHA256}" \
      io.esrunner.val-accuracy="${VAL_ACCURACY}"
